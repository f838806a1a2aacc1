"""A stand-in for Yahoo Finance, Stooq and Alpha Vantage on 127.0.0.1, answering in each service's
documented shapes from one set of generated prices, counting requests, and serving canned failures
(throttling, server errors, HTML pages, slow answers) when a test queues them."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pandas as pd
import pytest

FIRST_DAY = "2023-01-02"
LAST_DAY = "2024-12-31"
GMT_OFFSET = -18000  # New York in winter: Yahoo stamps each bar at the exchange's open
OPEN_SECONDS = 14 * 3600 + 1800


def random_walk(seed: int, start: float) -> pd.DataFrame:
    """Business-day bars with fat-tailed moves, a few jumps and a few missing days (as real series have)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(FIRST_DAY, LAST_DAY, tz="UTC")
    days = days[rng.random(len(days)) > 0.03]
    steps = rng.standard_t(4, len(days)) * 0.012
    steps[rng.choice(len(days), 4, replace=False)] += rng.choice([-0.12, 0.09], 4)
    close = start * np.exp(np.cumsum(steps))
    open_ = close * np.exp(rng.normal(0, 0.004, len(days)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, len(days)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, len(days)))
    return pd.DataFrame({"open": open_.round(4), "high": high.round(4), "low": low.round(4), "close": close.round(4),
                         "adj_close": (close * 0.985).round(4),
                         "volume": rng.integers(1_000_000, 9_000_000, len(days)).astype(float)}, index=days)


PRICES = {"AAPL": random_walk(1, 150.0), "MSFT": random_walk(2, 250.0)}


@dataclass
class Canned:
    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class FakeMarket:
    url: str = ""
    requests: list[tuple[str, dict]] = field(default_factory=list)
    canned: deque = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, prefix: str = "/") -> int:
        with self.lock:
            return sum(1 for path, _ in self.requests if path.startswith(prefix))

    def queue(self, *answers: Canned) -> None:
        self.canned.extend(answers)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
        self.canned.clear()


def _bars(symbol: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame | None:
    frame = PRICES.get(symbol.upper())
    return None if frame is None else frame[(frame.index >= first) & (frame.index <= last)]


def yahoo_chart(symbol: str, q: dict) -> tuple[int, str, str]:
    frame = PRICES.get(symbol.upper())
    if frame is None:
        return 404, json.dumps({"chart": {"result": None, "error": {
            "code": "Not Found", "description": "No data found, symbol may be delisted"}}}), "application/json"
    if "period1" in q:
        first = pd.Timestamp(int(q["period1"]), unit="s", tz="UTC")
        bars = frame[(frame.index >= first.normalize())
                     & (frame.index < pd.Timestamp(int(q["period2"]), unit="s", tz="UTC"))]
    else:
        bars = frame.iloc[-5:]
    last = frame.iloc[-1]
    meta = {"currency": "USD", "symbol": symbol.upper(), "exchangeName": "NMS", "instrumentType": "EQUITY",
            "gmtoffset": GMT_OFFSET, "timezone": "EST", "exchangeTimezoneName": "America/New_York",
            "regularMarketPrice": float(last["close"]),
            "regularMarketTime": int(frame.index[-1].timestamp()) + OPEN_SECONDS + 6 * 3600 + 1800,
            "chartPreviousClose": float(frame["close"].iloc[-2]), "priceHint": 2,
            "dataGranularity": q.get("interval", "1d")}
    result = {"meta": meta}
    if len(bars):
        result["timestamp"] = [int(t.timestamp()) + OPEN_SECONDS for t in bars.index]
        result["indicators"] = {"quote": [{c: bars[c].tolist() for c in ("open", "high", "low", "close", "volume")}],
                                "adjclose": [{"adjclose": bars["adj_close"].tolist()}]}
    else:
        result["indicators"] = {"quote": [{}]}
    return 200, json.dumps({"chart": {"result": [result], "error": None}}), "application/json"


def stooq_history(q: dict) -> tuple[int, str, str]:
    symbol = q["s"].removesuffix(".us")
    bars = _bars(symbol, pd.Timestamp(q["d1"], tz="UTC"), pd.Timestamp(q["d2"], tz="UTC"))
    if bars is None or bars.empty:
        return 200, "No data", "text/plain"
    lines = ["Date,Open,High,Low,Close,Volume"] + [
        f"{t.date()},{r.open},{r.high},{r.low},{r.close},{int(r.volume)}" for t, r in bars.iterrows()]
    return 200, "\n".join(lines) + "\n", "text/csv"


def stooq_quote(q: dict) -> tuple[int, str, str]:
    symbol = q["s"].removesuffix(".us")
    header = "Symbol,Date,Time,Open,High,Low,Close,Volume\n"
    frame = PRICES.get(symbol.upper())
    if frame is None:
        return 200, header + f"{q['s'].upper()},N/D,N/D,N/D,N/D,N/D,N/D,N/D\n", "text/csv"
    r = frame.iloc[-1]
    return 200, header + (f"{q['s'].upper()},{frame.index[-1].date()},22:00:09,{r.open},{r.high},{r.low},"
                          f"{r.close},{int(r.volume)}\n"), "text/csv"


def alphavantage(q: dict) -> tuple[int, str, str]:
    frame = PRICES.get(q["symbol"].upper())
    if frame is None:
        return 200, json.dumps({"Error Message": "Invalid API call. Please retry or visit the documentation "
                                                 "(https://www.alphavantage.co/documentation/) for "
                                                 f"{q['function']}."}), "application/json"
    if q["function"] == "GLOBAL_QUOTE":
        r = frame.iloc[-1]
        return 200, json.dumps({"Global Quote": {
            "01. symbol": q["symbol"].upper(), "02. open": f"{r.open:.4f}", "03. high": f"{r.high:.4f}",
            "04. low": f"{r.low:.4f}", "05. price": f"{r.close:.4f}", "06. volume": str(int(r.volume)),
            "07. latest trading day": str(frame.index[-1].date()),
            "08. previous close": f"{frame['close'].iloc[-2]:.4f}", "09. change": "0", "10. change percent": "0%"}}), \
            "application/json"
    bars = frame if q.get("outputsize") == "full" else frame.iloc[-100:]
    series = {str(t.date()): {"1. open": f"{r.open:.4f}", "2. high": f"{r.high:.4f}", "3. low": f"{r.low:.4f}",
                              "4. close": f"{r.close:.4f}", "5. adjusted close": f"{r.adj_close:.4f}",
                              "6. volume": str(int(r.volume)), "7. dividend amount": "0.0000",
                              "8. split coefficient": "1.0"} for t, r in bars.iloc[::-1].iterrows()}
    meta = {"1. Information": "Daily Time Series with Splits and Dividend Events", "2. Symbol": q["symbol"],
            "3. Last Refreshed": str(frame.index[-1].date()), "4. Output Size": "Full size",
            "5. Time Zone": "US/Eastern"}
    return 200, json.dumps({"Meta Data": meta, "Time Series (Daily)": series}), "application/json"


def _handler(market: FakeMarket):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            with market.lock:
                market.requests.append((url.path, q))
            if market.canned:
                answer = market.canned.popleft()
                time.sleep(answer.delay)
                status, body, ctype = answer.status, answer.body, answer.content_type
            elif url.path.startswith("/v8/finance/chart/"):
                status, body, ctype = yahoo_chart(unquote(url.path.rsplit("/", 1)[1]), q)
            elif url.path == "/q/d/l/":
                status, body, ctype = stooq_history(q)
            elif url.path == "/q/l/":
                status, body, ctype = stooq_quote(q)
            elif url.path == "/query":
                status, body, ctype = alphavantage(q)
            else:
                status, body, ctype = 404, "not found", "text/plain"
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (timeout tests)

    return Handler


@pytest.fixture(scope="session")
def fake_market_server():
    market = FakeMarket()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(market))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    market.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield market
    server.shutdown()
    server.server_close()


TIMEOUT = 0.5


@pytest.fixture
def market(fake_market_server, monkeypatch, tmp_path) -> FakeMarket:
    """The fake services, emptied, with every finance setting pointing at them and a fresh cache."""
    fake_market_server.reset()
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPENTRANSFORMER_HOME", str(tmp_path / "home"))
    for name in ("YAHOO", "STOOQ", "ALPHAVANTAGE"):
        monkeypatch.setenv(f"OPENTRANSFORMER_{name}_URL", fake_market_server.url)
        monkeypatch.setenv(f"OPENTRANSFORMER_{name}_RATE", "60000")
    monkeypatch.setenv("OPENTRANSFORMER_ALPHAVANTAGE_KEY", "test-key")
    monkeypatch.setenv("OPENTRANSFORMER_FINANCE_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("OPENTRANSFORMER_FINANCE_RETRIES", "2")
    monkeypatch.setenv("OPENTRANSFORMER_FINANCE_BACKOFF", "0.01")
    monkeypatch.setenv("OPENTRANSFORMER_FINANCE_BACKOFF_MAX", "0.05")
    for flag in ("OPENTRANSFORMER_OFFLINE", "HF_HUB_OFFLINE", "OPENTRANSFORMER_FINANCE_PROVIDER",
                 "OPENTRANSFORMER_FINANCE_DATA"):
        monkeypatch.delenv(flag, raising=False)
    return fake_market_server
