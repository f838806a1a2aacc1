"""Charts are valid PNG files with drawn content, and refuse bad input."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from opentransformer.finance import charts
from opentransformer.finance.analytics import indicators
from opentransformer.finance.analytics.returns import simple_returns
from opentransformer.finance.errors import FinanceInputError

from helpers.price_series import random_walk_prices

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_drawn_png(path, coloured_series=True):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500
    not_white = (pixels < 245).any(axis=2)
    assert 0.02 < not_white.mean() < 0.9
    if coloured_series:  # the series are drawn in colour: more than black axes and text
        assert ((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum() > 500


def test_price_chart_with_overlays_and_oscillator(tmp_path):
    close = random_walk_prices(1, days=300)
    bands = indicators.bollinger_bands(close)
    path = charts.price_chart(
        close, tmp_path / "price.png",
        overlays={"upper": bands["upper"], "lower": bands["lower"], "sma 50": indicators.sma(close, 50)},
        oscillator=indicators.rsi(close),
    )
    assert_drawn_png(path)
    assert_drawn_png(charts.price_chart(close, tmp_path / "plain.png"), coloured_series=False)


def test_drawdown_chart(tmp_path):
    assert_drawn_png(charts.drawdown_chart(simple_returns(random_walk_prices(2)), tmp_path / "drawdown.png"))


def test_return_distribution_chart_marks_var_where_it_is(tmp_path):
    returns = simple_returns(random_walk_prices(3))
    assert_drawn_png(charts.return_distribution_chart(returns, tmp_path / "dist.png", confidence=0.99))


@pytest.mark.parametrize(
    "call",
    [
        lambda d, r: charts.drawdown_chart(r, d / "chart.jpg"),
        lambda d, r: charts.drawdown_chart(r, d / "missing" / "chart.png"),
        lambda d, r: charts.return_distribution_chart(r, d / "chart.png", confidence=1.2),
        lambda d, r: charts.return_distribution_chart(r.iloc[:1], d / "chart.png"),
        lambda d, r: charts.price_chart(r * 0 - 1, d / "chart.png"),
    ],
)
def test_bad_chart_input_raises_one_typed_error(tmp_path, call):
    with pytest.raises(FinanceInputError):
        call(tmp_path, simple_returns(random_walk_prices(0, days=100)))
