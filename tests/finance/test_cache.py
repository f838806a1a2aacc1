"""The price cache: a repeat makes no request, a longer range fetches only the missing days, a day that
was still trading when fetched is fetched again once stale."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opentransformer.finance.cache import Span, day_number, merge_spans, missing_days
from opentransformer.finance.errors import NoDataError
from opentransformer.finance.market import MarketData

from .conftest import PRICES

DAY = 86400


def expected(symbol: str, start: str, end: str) -> pd.DataFrame:
    frame = PRICES[symbol]
    return frame[(frame.index >= pd.Timestamp(start, tz="UTC")) & (frame.index <= pd.Timestamp(end, tz="UTC"))]


def asked_days(market) -> list[tuple[str, str]]:
    """The day ranges the Yahoo stand-in was asked for (period2 is exclusive)."""
    return [(str(pd.Timestamp(int(q["period1"]), unit="s").date()),
             str((pd.Timestamp(int(q["period2"]), unit="s") - pd.Timedelta(days=1)).date()))
            for path, q in market.requests]


@pytest.mark.parametrize("provider", ["yahoo", "stooq", "alphavantage"])
def test_repeat_makes_no_request(market, provider):
    with MarketData(provider) as data:
        first = data.history("AAPL", "2024-03-01", "2024-03-31")
        assert first.requests == 1
        requests = market.count()
        again = data.history("aapl", "2024-03-01", "2024-03-31")
        inside = data.history("AAPL", "2024-03-10", "2024-03-20")
    assert market.count() == requests
    assert again.requests == inside.requests == 0
    pd.testing.assert_frame_equal(again.bars, first.bars)
    np.testing.assert_allclose(inside.bars["close"], expected("AAPL", "2024-03-10", "2024-03-20")["close"])


def test_longer_range_fetches_only_the_missing_days(market):
    with MarketData("yahoo") as data:
        data.history("AAPL", "2024-03-01", "2024-03-31")
        longer = data.history("AAPL", "2024-02-01", "2024-04-30")
        assert longer.requests == 2
        assert asked_days(market) == [("2024-03-01", "2024-03-31"), ("2024-02-01", "2024-02-29"),
                                      ("2024-04-01", "2024-04-30")]
        want = expected("AAPL", "2024-02-01", "2024-04-30")
        assert longer.bars.index.equals(want.index)
        np.testing.assert_allclose(longer.bars[["open", "high", "low", "close", "adj_close", "volume"]],
                                   want, atol=5e-5, rtol=0)
        data.history("AAPL", "2024-02-15", "2024-04-15")
    assert market.count() == 3


def test_series_are_kept_apart(market):
    with MarketData("yahoo") as data:
        data.history("AAPL", "2024-03-01", "2024-03-31")
        data.history("MSFT", "2024-03-01", "2024-03-31")
        data.history("AAPL", "2024-03-01", "2024-03-31", interval="1wk")
    with MarketData("stooq") as data:
        data.history("AAPL", "2024-03-01", "2024-03-31")
    assert market.count() == 4


def test_cache_survives_the_process_and_ranges_without_bars_are_remembered(market):
    with MarketData("yahoo") as data:
        data.history("AAPL", "2024-03-01", "2024-03-31")
        with pytest.raises(NoDataError, match="2024-03-02 to 2024-03-03"):
            data.history("AAPL", "2024-03-02", "2024-03-03")  # a weekend
    with MarketData("yahoo") as data:
        assert data.history("AAPL", "2024-03-01", "2024-03-31").requests == 0
        with pytest.raises(NoDataError):
            data.history("AAPL", "2024-03-02", "2024-03-03")
    assert market.count() == 1


def test_missing_days_and_the_live_edge():
    spans = merge_spans([Span(10, 20, 30 * DAY), Span(21, 25, 30 * DAY), Span(40, 50, 60 * DAY)])
    assert spans == [Span(10, 25, 30 * DAY), Span(40, 50, 60 * DAY)]
    assert missing_days(spans, 5, 55, now=61 * DAY, fresh_seconds=0) == [(5, 9), (26, 39), (51, 55)]
    assert missing_days(spans, 12, 24, now=61 * DAY, fresh_seconds=0) == []
    # fetched on day 50 while it traded: day 50 counts only while the fetch is fresh
    live = [Span(40, 50, 50 * DAY + 3600)]
    assert missing_days(live, 40, 50, now=50 * DAY + 3700, fresh_seconds=900) == []
    assert missing_days(live, 40, 50, now=50 * DAY + 3600 + 901, fresh_seconds=900) == [(50, 50)]
    assert missing_days(live, 40, 49, now=99 * DAY, fresh_seconds=900) == []


def test_day_numbers():
    assert day_number(pd.Timestamp("1970-01-02", tz="UTC")) == 1


def test_python_api_goes_through_the_cache(market):
    import opentransformer.finance as finance

    bars = finance.history("AAPL", "2024-03-01", "2024-03-31", provider="stooq")
    again = finance.history("AAPL", "2024-03-01", "2024-03-31", provider="stooq")
    pd.testing.assert_frame_equal(bars, again)
    np.testing.assert_allclose(bars["close"], expected("AAPL", "2024-03-01", "2024-03-31")["close"])
    assert market.count() == 1
    assert finance.quote("MSFT").price == pytest.approx(PRICES["MSFT"]["close"].iloc[-1])
    assert finance.MarketData is MarketData
