"""Each provider client against the local stand-in services: success, unknown symbols, throttling,
error bodies, HTML pages and timeouts, each becoming its typed error."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from opentransformer.finance.errors import (FinanceInputError, ProviderError, ProviderTimeoutError,
                                            RateLimitedError, UnknownSymbolError)
from opentransformer.finance.providers import COLUMNS, make_provider
from opentransformer.finance.settings import load_finance_settings

from .conftest import PRICES, TIMEOUT, Canned

START, END = pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-04-30", tz="UTC")


def provider(name: str):
    return make_provider(name, load_finance_settings())


def expected(symbol: str, start=START, end=END) -> pd.DataFrame:
    frame = PRICES[symbol]
    return frame[(frame.index >= start) & (frame.index <= end)]


def assert_bars(got: pd.DataFrame, want: pd.DataFrame, adj_is_close: bool = False) -> None:
    assert list(got.columns) == list(COLUMNS)
    assert str(got.index.tz) == "UTC"
    assert got.index.equals(want.index)
    for column in COLUMNS:
        reference = want["close"] if adj_is_close and column == "adj_close" else want[column]
        np.testing.assert_allclose(got[column].to_numpy(), reference.to_numpy(), rtol=0, atol=5e-5)


@pytest.mark.parametrize("name", ["yahoo", "stooq", "alphavantage"])
def test_history_matches_the_service(market, name):
    got = provider(name).history("AAPL", START, END, "1d")
    assert len(got) > 30
    assert_bars(got, expected("AAPL"), adj_is_close=name == "stooq")


@pytest.mark.parametrize("name", ["yahoo", "stooq", "alphavantage"])
def test_quote_is_the_last_close(market, name):
    q = provider(name).quote("MSFT")
    assert q.price == pytest.approx(PRICES["MSFT"]["close"].iloc[-1], abs=5e-5)
    assert q.time.date() == PRICES["MSFT"].index[-1].date()
    assert q.provider == name


@pytest.mark.parametrize("name", ["yahoo", "stooq", "alphavantage"])
def test_unknown_symbol(market, name):
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        provider(name).history("NOPE", START, END, "1d")
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        provider(name).quote("NOPE")


@pytest.mark.parametrize("name", ["yahoo", "stooq", "alphavantage"])
def test_timeout(market, name):
    market.queue(Canned(delay=TIMEOUT * 2.5))
    with pytest.raises(ProviderTimeoutError, match=name):
        provider(name).history("AAPL", START, END, "1d")


def test_yahoo_429_then_success_after_retry(market):
    market.queue(Canned(status=429, body="Too Many Requests\n", content_type="text/plain"))
    got = provider("yahoo").history("AAPL", START, END, "1d")
    assert_bars(got, expected("AAPL"))
    assert market.count("/v8/finance/chart/") == 2


def test_yahoo_429_through_every_retry(market):
    market.queue(*[Canned(status=429, body="Too Many Requests\n", content_type="text/plain")] * 3)
    with pytest.raises(RateLimitedError, match="429"):
        provider("yahoo").history("AAPL", START, END, "1d")
    assert market.count() == 3  # the first try and OPENTRANSFORMER_FINANCE_RETRIES=2


def test_yahoo_server_error_then_success(market):
    market.queue(Canned(status=503, body="<html>unavailable</html>", content_type="text/html"))
    assert_bars(provider("yahoo").history("AAPL", START, END, "1d"), expected("AAPL"))
    assert market.count() == 2


def test_yahoo_chart_error_that_is_not_unknown(market):
    body = {"chart": {"result": None, "error": {"code": "Bad Request", "description": "Invalid input - interval"}}}
    market.queue(Canned(status=400, body=json.dumps(body)))
    with pytest.raises(ProviderError, match="Invalid input") as info:
        provider("yahoo").history("AAPL", START, END, "1d")
    assert not isinstance(info.value, UnknownSymbolError)


def test_yahoo_drops_null_rows_and_uses_exchange_dates(market):
    """Yahoo sends nulls for some bars; a bar stamped 14:30 UTC belongs to that day in New York."""
    frame = expected("AAPL").iloc[:3]
    stamps = [int(t.timestamp()) + 14 * 3600 + 1800 for t in frame.index]
    quote = {c: frame[c].tolist() for c in ("open", "high", "low", "close", "volume")}
    quote["close"][1] = None
    body = {"chart": {"result": [{"meta": {"gmtoffset": -18000}, "timestamp": stamps,
                                  "indicators": {"quote": [quote]}}], "error": None}}
    market.queue(Canned(body=json.dumps(body)))
    got = provider("yahoo").history("AAPL", START, END, "1d")
    assert list(got.index) == [frame.index[0], frame.index[2]]
    assert got["adj_close"].tolist() == [frame["close"].iloc[0], frame["close"].iloc[2]]  # no adjclose sent


def test_stooq_html_with_status_200(market):
    market.queue(Canned(body="<!DOCTYPE html><html><body>Stooq</body></html>", content_type="text/html"))
    with pytest.raises(ProviderError, match="web page instead of CSV") as info:
        provider("stooq").history("AAPL", START, END, "1d")
    assert not isinstance(info.value, UnknownSymbolError)


def test_stooq_nd_quote(market):
    market.queue(Canned(body="Symbol,Date,Time,Open,High,Low,Close,Volume\nXX.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\n",
                        content_type="text/csv"))
    with pytest.raises(UnknownSymbolError, match="N/D"):
        provider("stooq").quote("XX")


def test_stooq_nd_rows_are_dropped(market):
    frame = expected("AAPL").iloc[:3]
    rows = [f"{t.date()},{r.open},{r.high},{r.low},{r.close},{int(r.volume)}" for t, r in frame.iterrows()]
    rows[1] = f"{frame.index[1].date()},N/D,N/D,N/D,N/D,N/D"
    market.queue(Canned(body="Date,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n", content_type="text/csv"))
    got = provider("stooq").history("AAPL", START, END, "1d")
    assert list(got.index) == [frame.index[0], frame.index[2]]


def test_stooq_symbol_names(market):
    provider("stooq").history("aapl", START, END, "1d")
    assert market.requests[-1][1]["s"] == "aapl.us"


def test_alphavantage_note_is_throttling_and_retried(market):
    note = {"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute."}
    market.queue(Canned(body=json.dumps(note)))
    assert_bars(provider("alphavantage").history("AAPL", START, END, "1d"), expected("AAPL"))
    assert market.count("/query") == 2
    market.reset()
    market.queue(*[Canned(body=json.dumps(note))] * 3)
    with pytest.raises(RateLimitedError, match="5 calls per minute"):
        provider("alphavantage").history("AAPL", START, END, "1d")
    assert market.count("/query") == 3


def test_alphavantage_information_is_not_retried(market):
    info = {"Information": "Thank you for using Alpha Vantage! This is a premium endpoint."}
    market.queue(Canned(body=json.dumps(info)))
    with pytest.raises(ProviderError, match="premium endpoint"):
        provider("alphavantage").history("AAPL", START, END, "1d")
    assert market.count() == 1


def test_alphavantage_asks_for_full_output_for_old_ranges_and_sends_the_key(market):
    provider("alphavantage").history("AAPL", START, END, "1d")
    params = market.requests[-1][1]
    assert params["outputsize"] == "full" and params["apikey"] == "test-key"
    assert params["function"] == "TIME_SERIES_DAILY_ADJUSTED"


def test_alphavantage_without_a_key(market, monkeypatch):
    monkeypatch.delenv("OPENTRANSFORMER_ALPHAVANTAGE_KEY")
    with pytest.raises(FinanceInputError, match="OPENTRANSFORMER_ALPHAVANTAGE_KEY"):
        provider("alphavantage").quote("AAPL")
    assert market.count() == 0


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_local_files(market, tmp_path, monkeypatch, suffix):
    frame = expected("AAPL").rename(columns={"adj_close": "Adj Close", "close": "Close"})
    frame.index = frame.index.tz_localize(None).rename("Date")
    path = tmp_path / f"AAPL.{suffix}"
    frame.to_csv(path) if suffix == "csv" else frame.to_parquet(path)
    monkeypatch.setenv("OPENTRANSFORMER_FINANCE_DATA", str(tmp_path))
    local = provider("local")
    assert_bars(local.history("AAPL", START, END, "1d"), expected("AAPL"))
    assert_bars(local.history(str(path), START, END, "1d"), expected("AAPL"))
    assert local.quote("AAPL").price == expected("AAPL")["close"].iloc[-1]
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        local.history("NOPE", START, END, "1d")
    assert market.count() == 0


def test_local_file_without_close(market, tmp_path):
    (tmp_path / "X.csv").write_text("date,price\n2024-01-02,1\n")
    with pytest.raises(FinanceInputError, match="close column"):
        provider("local").history(str(tmp_path / "X.csv"), START, END, "1d")


def test_requests_are_spaced_by_the_rate_limit(market, monkeypatch):
    monkeypatch.setenv("OPENTRANSFORMER_YAHOO_RATE", "600")  # one request per 0.1 s
    yahoo = provider("yahoo")
    began = time.monotonic()
    for _ in range(4):
        yahoo.quote("AAPL")
    assert time.monotonic() - began >= 0.3
    assert market.count() == 4


@pytest.mark.parametrize("name, value", [("OPENTRANSFORMER_FINANCE_TIMEOUT", "soon"),
                                         ("OPENTRANSFORMER_YAHOO_RATE", "0"),
                                         ("OPENTRANSFORMER_FINANCE_PROVIDER", "bloomberg")])
def test_bad_settings(market, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(FinanceInputError, match=name):
        load_finance_settings()


@pytest.mark.parametrize("name, body, content_type", [
    ("yahoo", '{"chart": {"result": [{"meta": {}, "timestamp": [1709300000]}], "error": null}}', "application/json"),
    ("stooq", "Date,Price\n2024-03-01,1\n", "text/csv"),
    ("alphavantage", '{"Time Series (Daily)": {"2024-03-01": "closed"}}', "application/json"),
])
def test_answers_outside_the_documented_shape(market, name, body, content_type):
    market.queue(Canned(body=body, content_type=content_type))
    with pytest.raises(ProviderError, match="not in the documented shape"):
        provider(name).history("AAPL", START, END, "1d")
