"""Backtests of long-or-flat indicator strategies with proportional transaction costs.

Timing: a signal computed from the close of bar t sets the position held from that close to the
next one, so position_t earns r_{t+1} = P_{t+1} / P_t - 1 and no bar uses information from its own
future. A change of position at the close of bar t costs cost_bps / 10,000 of equity per unit of
position traded (entering or leaving a long position of 1 costs once each). Equity:
E_t = E_{t-1} (1 + position_{t-1} r_t)(1 - c |position_t - position_{t-1}|), E before the first bar
= initial_capital, position before the first bar = 0.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import FinanceInputError
from . import indicators
from .validation import require_non_negative, require_positive, require_prices

STRATEGIES = ("rsi", "macd", "bollinger")


def _hold_between(enter: np.ndarray, leave: np.ndarray) -> np.ndarray:
    """1 from a bar where `enter` holds until a later bar where `leave` holds, else 0."""
    positions = np.zeros(len(enter))
    holding = False
    for bar, (entry, exit_) in enumerate(zip(enter, leave)):
        holding = (holding and not exit_) or (not holding and entry)
        positions[bar] = float(holding)
    return positions


def rsi_positions(close, period: int = 14, lower: float = 30.0, upper: float = 70.0) -> pd.Series:
    """Long when RSI closes below `lower` (oversold), flat again once it closes above `upper`."""
    if not 0.0 < lower < upper < 100.0:
        raise FinanceInputError(f"RSI thresholds must satisfy 0 < lower < upper < 100, got {lower}, {upper}")
    strength = indicators.rsi(close, period)
    values = strength.to_numpy()
    with np.errstate(invalid="ignore"):
        held = _hold_between(values < lower, values > upper)
    return pd.Series(held, index=strength.index, name="position")


def macd_positions(close, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.Series:
    """Long while the MACD line is above its signal line, flat otherwise (and during the warm-up)."""
    frame = indicators.macd(close, fast, slow, signal)
    with np.errstate(invalid="ignore"):
        held = (frame["macd"] > frame["signal"]).to_numpy(dtype=float)
    return pd.Series(held, index=frame.index, name="position")


def bollinger_positions(close, period: int = 20, num_std: float = 2.0) -> pd.Series:
    """Long when the close falls below the lower band, flat again once it closes above the middle band."""
    bands = indicators.bollinger_bands(close, period, num_std)
    prices = require_prices(close).to_numpy()
    with np.errstate(invalid="ignore"):
        held = _hold_between(prices < bands["lower"].to_numpy(), prices > bands["middle"].to_numpy())
    return pd.Series(held, index=bands.index, name="position")


@dataclass(frozen=True)
class BacktestResult:
    """Equity curve, per-bar strategy returns (after costs), positions and one row per round trip.

    `trades` columns: entry_time, entry_price, exit_time, exit_price, net_return (after both costs;
    a trade still open at the end is marked to the last close with exit_time NaT and pays no exit
    cost), bars (bars held). Net returns are exact for positions of 1, as the signal functions give."""

    equity: pd.Series
    returns: pd.Series
    positions: pd.Series
    trades: pd.DataFrame
    total_return: float
    cost_bps: float


def run_backtest(close, positions, cost_bps: float = 10.0, initial_capital: float = 1.0) -> BacktestResult:
    """Equity of holding `positions` (long fraction of equity per bar, 0 or 1 from the signal
    functions; any value in [0, 1] is accepted) on `close`, with costs as in the module docstring."""
    prices = require_prices(close)
    if isinstance(positions, pd.Series):
        held = positions.astype(float)
    else:
        held = pd.Series(np.asarray(positions, dtype=float), index=prices.index[: len(positions)])
    if len(held) != len(prices) or not held.index.equals(prices.index):
        raise FinanceInputError("positions must have one value per price, on the same index")
    if not np.isfinite(held.to_numpy()).all() or (held < 0).any() or (held > 1).any():
        raise FinanceInputError("positions must be finite fractions between 0 and 1")
    cost = require_non_negative(cost_bps, "cost_bps") / 10_000.0
    capital = require_positive(initial_capital, "initial_capital")

    price_values, position_values = prices.to_numpy(), held.to_numpy()
    asset_returns = np.concatenate([[0.0], price_values[1:] / price_values[:-1] - 1.0])
    previous = np.concatenate([[0.0], position_values[:-1]])
    turnover = np.abs(position_values - previous)
    growth = (1.0 + previous * asset_returns) * (1.0 - cost * turnover)
    equity = capital * np.cumprod(growth)
    return BacktestResult(
        equity=pd.Series(equity, index=prices.index, name="equity"),
        returns=pd.Series(growth - 1.0, index=prices.index, name="strategy_return"),
        positions=held.rename("position"),
        trades=_round_trips(prices, position_values, cost),
        total_return=float(equity[-1] / capital - 1.0),
        cost_bps=float(cost_bps),
    )


def _round_trips(prices: pd.Series, positions: np.ndarray, cost: float) -> pd.DataFrame:
    """One row per entry into a long position (0 -> >0) and its exit (>0 -> 0)."""
    rows = []
    long = positions > 0
    entries = np.flatnonzero(long & ~np.concatenate([[False], long[:-1]]))
    for entry in entries:
        after = np.flatnonzero(~long[entry:])
        exit_ = entry + int(after[0]) if len(after) else None
        exit_bar = exit_ if exit_ is not None else len(prices) - 1
        gross = prices.iloc[exit_bar] / prices.iloc[entry]
        exit_cost = cost if exit_ is not None else 0.0
        rows.append(
            {
                "entry_time": prices.index[entry],
                "entry_price": float(prices.iloc[entry]),
                "exit_time": prices.index[exit_] if exit_ is not None else pd.NaT,
                "exit_price": float(prices.iloc[exit_bar]),
                "net_return": float(gross * (1.0 - cost) * (1.0 - exit_cost) - 1.0),
                "bars": int(exit_bar - entry),
            }
        )
    columns = ["entry_time", "entry_price", "exit_time", "exit_price", "net_return", "bars"]
    return pd.DataFrame(rows, columns=columns)


def backtest(close, strategy: str = "rsi", cost_bps: float = 10.0, initial_capital: float = 1.0, **parameters) -> BacktestResult:
    """Signals of `strategy` ('rsi', 'macd' or 'bollinger', with that function's keyword
    `parameters`) run through `run_backtest`."""
    signal_functions = {"rsi": rsi_positions, "macd": macd_positions, "bollinger": bollinger_positions}
    if strategy not in signal_functions:
        raise FinanceInputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    signal_function = signal_functions[strategy]
    try:
        inspect.signature(signal_function).bind(close, **parameters)
    except TypeError as exc:
        raise FinanceInputError(f"bad parameters for the {strategy} strategy: {parameters}") from exc
    positions = signal_function(close, **parameters)
    return run_backtest(close, positions, cost_bps, initial_capital)
