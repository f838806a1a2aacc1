"""Offline mode: answers from the cache with the data's age, never a request; a clear error when
nothing is cached."""
from __future__ import annotations

import pandas as pd
import pytest

from opentransformer.finance.errors import OfflineError
from opentransformer.finance.market import MarketData, describe_age


def test_offline_with_a_cached_copy(market, monkeypatch):
    with MarketData("yahoo") as data:
        online = data.history("AAPL", "2024-03-01", "2024-03-31")
        live_quote, _, _ = data.quote("AAPL")
    requests = market.count()
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "1")
    with MarketData("yahoo") as data:
        offline = data.history("AAPL", "2024-03-01", "2024-03-31")
        quote, fetched_at, from_cache = data.quote("AAPL")
    assert market.count() == requests
    pd.testing.assert_frame_equal(offline.bars, online.bars)
    assert offline.offline and offline.requests == 0 and not offline.missing
    assert "offline: AAPL from the yahoo cache, fetched just now" in offline.age_note()
    assert from_cache and quote == live_quote and fetched_at is not None


def test_offline_with_part_of_the_range_cached(market, monkeypatch):
    with MarketData("stooq") as data:
        data.history("AAPL", "2024-03-01", "2024-03-31")
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "true")
    with MarketData("stooq") as data:
        partial = data.history("AAPL", "2024-02-01", "2024-04-30")
    assert market.count() == 1
    assert partial.bars.index.min() >= pd.Timestamp("2024-03-01", tz="UTC")
    assert [(a.date().isoformat(), b.date().isoformat()) for a, b in partial.missing] == [
        ("2024-02-01", "2024-02-29"), ("2024-04-01", "2024-04-30")]
    assert "not cached: 2024-02-01..2024-02-29, 2024-04-01..2024-04-30" in partial.age_note()


def test_offline_quote_from_the_newest_cached_bar(market, monkeypatch):
    with MarketData("yahoo") as data:
        bars = data.history("MSFT", "2024-03-01", "2024-03-31").bars
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "1")
    with MarketData("yahoo") as data:
        quote, fetched_at, from_cache = data.quote("MSFT")
    assert from_cache and market.count() == 1
    assert (quote.price, quote.previous_close, quote.time) == (bars["close"].iloc[-1], bars["close"].iloc[-2],
                                                               bars.index[-1])


@pytest.mark.parametrize("flag", ["OPENTRANSFORMER_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_without_a_cached_copy(market, monkeypatch, flag):
    monkeypatch.setenv(flag, "1")
    with MarketData("yahoo") as data:
        with pytest.raises(OfflineError, match=f"{flag} is set.*no cached yahoo prices for AAPL"):
            data.history("AAPL", "2024-03-01", "2024-03-31")
        with pytest.raises(OfflineError, match="no cached yahoo quote for MSFT"):
            data.quote("MSFT")
    assert market.count() == 0


def test_age_descriptions():
    assert describe_age(0, now=3 * 86400 + 5).startswith("3 days ago (1970-01-01 00:00 UTC)")
    assert describe_age(0, now=7200).startswith("2 hours ago")
    assert describe_age(0, now=61).startswith("1 minute ago")
