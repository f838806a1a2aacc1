"""Yahoo Finance through its chart API (v8): GET /v8/finance/chart/SYMBOL?period1=&period2=&interval=.

The answer is {"chart": {"result": [...], "error": null}}; an unknown symbol comes back as
{"chart": {"result": null, "error": {"code": "Not Found", "description": ...}}} (HTTP 404), throttling
as HTTP 429."""
from __future__ import annotations

from urllib.parse import quote as url_quote

import httpx
import numpy as np
import pandas as pd

from ..errors import ProviderError, UnknownSymbolError
from ..settings import HttpSettings
from .base import HttpClient, Provider, Quote, bars_frame, documented_shape, empty_bars

_DAY = 86400


class YahooProvider(Provider):
    name = "yahoo"

    def __init__(self, settings: HttpSettings):
        self.http = HttpClient(self.name, settings)

    def _chart(self, symbol: str, params: dict) -> dict:
        def attempt() -> dict:
            response = self.http.get(f"/v8/finance/chart/{url_quote(symbol, safe='')}", params)
            return self._result(symbol, response)
        return self.http.call(attempt)

    def _result(self, symbol: str, response: httpx.Response) -> dict:
        try:
            chart = response.json()["chart"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"yahoo: HTTP {response.status_code} without a chart answer for {symbol} "
                                f"from {response.url}") from None
        error = chart.get("error")
        if error:
            description = error.get("description") or error.get("code") or "no details"
            if error.get("code") == "Not Found" or response.status_code == 404:
                raise UnknownSymbolError(f"yahoo: unknown symbol {symbol!r} ({description})")
            raise ProviderError(f"yahoo: {symbol}: {description}")
        if not chart.get("result"):
            raise UnknownSymbolError(f"yahoo: unknown symbol {symbol!r} (no result)")
        return chart["result"][0]

    def history(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        period1 = int(start.timestamp())
        period2 = int(end.timestamp()) + _DAY  # period2 is exclusive: the end day is asked for whole
        result = self._chart(symbol, {"period1": period1, "period2": period2, "interval": interval,
                                      "events": "div,splits", "includeAdjustedClose": "true"})
        with documented_shape(self.name, symbol):
            stamps = result.get("timestamp") or []
            if not stamps:
                return empty_bars()
            bars = result["indicators"]["quote"][0]
            adjusted = (result["indicators"].get("adjclose") or [{}])[0].get("adjclose") or bars["close"]
            # Bars are stamped at the exchange's open; the trading day is the local date.
            offset = int(result.get("meta", {}).get("gmtoffset") or 0)
            days = (np.asarray(stamps, dtype=np.int64) + offset) // _DAY * _DAY
            frame = bars_frame(pd.to_datetime(days, unit="s", utc=True), open=bars["open"], high=bars["high"],
                               low=bars["low"], close=bars["close"], adj_close=adjusted, volume=bars["volume"])
        return frame[(frame.index >= start) & (frame.index <= end)]

    def quote(self, symbol: str) -> Quote:
        meta = self._chart(symbol, {"range": "5d", "interval": "1d"}).get("meta", {})
        if meta.get("regularMarketPrice") is None:
            raise UnknownSymbolError(f"yahoo: no price for {symbol!r}")
        previous = meta.get("chartPreviousClose", meta.get("previousClose"))
        with documented_shape(self.name, symbol):
            return Quote(symbol=meta.get("symbol", symbol), price=float(meta["regularMarketPrice"]),
                         time=pd.Timestamp(int(meta.get("regularMarketTime") or 0), unit="s", tz="UTC"),
                         currency=meta.get("currency"),
                         previous_close=None if previous is None else float(previous), provider=self.name)
