"""PNG charts of prices, drawdowns and return distributions (matplotlib's Agg renderer, no display).

Figures are built as `matplotlib.figure.Figure` objects rather than through pyplot, so no global
figure state or interactive backend is involved; each function writes one PNG and returns its path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .analytics.risk import drawdown_series, historical_var_es
from .analytics.validation import require_prices, require_returns
from .errors import FinanceInputError

FIGURE_SIZE = (10.0, 6.0)
DPI = 100


def _save(figure: Figure, path: str | Path) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise FinanceInputError(f"charts are written as PNG: give a path ending in .png, got {target}")
    if not target.parent.is_dir():
        raise FinanceInputError(f"the folder {target.parent} does not exist")
    FigureCanvasAgg(figure)
    figure.savefig(target, format="png", dpi=DPI)
    return target


def price_chart(
    close,
    path: str | Path,
    overlays: dict[str, pd.Series] | None = None,
    oscillator: pd.Series | None = None,
    title: str = "Price",
) -> Path:
    """Closing prices with `overlays` on the same axis (moving averages, Bollinger bands) and, when
    given, an `oscillator` (RSI, MACD histogram) in a panel below."""
    prices = require_prices(close, "close")
    figure = Figure(figsize=FIGURE_SIZE)
    if oscillator is None:
        price_axis = figure.add_subplot(1, 1, 1)
    else:
        price_axis, lower_axis = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        lower_axis.plot(oscillator.index, oscillator.to_numpy(), color="tab:purple", linewidth=1.0)
        lower_axis.set_ylabel(str(oscillator.name or "oscillator"))
        lower_axis.grid(alpha=0.3)
    price_axis.plot(prices.index, prices.to_numpy(), color="black", linewidth=1.2, label="close")
    for name, series in (overlays or {}).items():
        price_axis.plot(series.index, series.to_numpy(), linewidth=1.0, label=name)
    price_axis.set_title(title)
    price_axis.set_ylabel("price")
    price_axis.grid(alpha=0.3)
    price_axis.legend(loc="best")
    figure.autofmt_xdate()
    return _save(figure, path)


def drawdown_chart(returns, path: str | Path, title: str = "Drawdown") -> Path:
    """The drawdown from the running peak of wealth (analytics.risk.drawdown_series), in percent."""
    drawdowns = drawdown_series(returns) * 100.0
    figure = Figure(figsize=FIGURE_SIZE)
    axis = figure.add_subplot(1, 1, 1)
    axis.fill_between(drawdowns.index, drawdowns.to_numpy(), 0.0, color="tab:red", alpha=0.4)
    axis.plot(drawdowns.index, drawdowns.to_numpy(), color="tab:red", linewidth=1.0)
    axis.set_title(f"{title} (max {drawdowns.min():.2f}%)")
    axis.set_ylabel("drawdown (%)")
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    return _save(figure, path)


def return_distribution_chart(
    returns, path: str | Path, confidence: float = 0.95, title: str = "Return distribution"
) -> Path:
    """Histogram of returns with the historical VaR and ES at `confidence` marked (as returns,
    i.e. at minus the loss)."""
    series = require_returns(returns, min_length=2)
    estimate = historical_var_es(series, confidence)
    figure = Figure(figsize=FIGURE_SIZE)
    axis = figure.add_subplot(1, 1, 1)
    bins = int(np.clip(np.sqrt(len(series)) * 2, 10, 100))
    axis.hist(series.to_numpy() * 100.0, bins=bins, color="tab:blue", alpha=0.7)
    level = f"{confidence:.0%}"
    axis.axvline(-estimate.value_at_risk * 100.0, color="tab:red", linewidth=2.0,
                 label=f"VaR {level}: {estimate.value_at_risk:.2%}")
    axis.axvline(-estimate.expected_shortfall * 100.0, color="darkred", linestyle="--", linewidth=2.0,
                 label=f"ES {level}: {estimate.expected_shortfall:.2%}")
    axis.set_title(title)
    axis.set_xlabel("return (%)")
    axis.set_ylabel("count")
    axis.grid(alpha=0.3)
    axis.legend(loc="best")
    return _save(figure, path)
