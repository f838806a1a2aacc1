"""Alpha Vantage: GET /query?function=TIME_SERIES_DAILY_ADJUSTED&symbol=&outputsize=&apikey= for history,
function=GLOBAL_QUOTE for quotes.

Alpha Vantage answers its failures with HTTP 200 and a one-key JSON body: "Error Message" (an invalid
call, which is what an unknown symbol gets), "Note" (the per-minute limit; retried with backoff) or
"Information" (daily limit, premium-only endpoint or a bad key: the service's text says which)."""
from __future__ import annotations

import httpx
import pandas as pd

from ..errors import FinanceInputError, ProviderError, RateLimitedError, UnknownSymbolError
from ..settings import HttpSettings
from .base import HttpClient, Provider, Quote, bars_frame, documented_shape

_SERIES = {  # interval -> (function, key of the series in the answer)
    "1d": ("TIME_SERIES_DAILY_ADJUSTED", "Time Series (Daily)"),
    "1wk": ("TIME_SERIES_WEEKLY_ADJUSTED", "Weekly Adjusted Time Series"),
    "1mo": ("TIME_SERIES_MONTHLY_ADJUSTED", "Monthly Adjusted Time Series"),
}
_FIELDS = {"open": "1. open", "high": "2. high", "low": "3. low", "close": "4. close",
           "adj_close": "5. adjusted close", "volume": "6. volume"}
_COMPACT_DAYS = 100  # outputsize=compact holds the latest 100 bars


class AlphaVantageProvider(Provider):
    name = "alphavantage"

    def __init__(self, settings: HttpSettings, api_key: str | None):
        self.http = HttpClient(self.name, settings)
        self._key = api_key

    def _query(self, symbol: str, params: dict) -> dict:
        if not self._key:
            raise FinanceInputError("alphavantage needs an API key: set OPENTRANSFORMER_ALPHAVANTAGE_KEY "
                                    "(free at https://www.alphavantage.co/support/#api-key)")

        def attempt() -> dict:
            return self._parse(symbol, self.http.get("/query", {**params, "symbol": symbol, "apikey": self._key}))
        return self.http.call(attempt)

    @staticmethod
    def _parse(symbol: str, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(f"alphavantage: HTTP {response.status_code}, not JSON, for {symbol}") from None
        if not isinstance(body, dict):
            raise ProviderError(f"alphavantage: unexpected answer for {symbol}: {str(body)[:200]}")
        if "Note" in body:
            raise RateLimitedError(f"alphavantage: throttled: {body['Note']}")
        if "Information" in body:
            raise ProviderError(f"alphavantage: {body['Information']}")
        if "Error Message" in body:
            raise UnknownSymbolError(f"alphavantage: no data for {symbol!r}: {body['Error Message']}")
        if response.status_code != 200:
            raise ProviderError(f"alphavantage: HTTP {response.status_code} for {symbol}")
        return body

    def history(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        function, key = _SERIES[interval]
        recent = (pd.Timestamp.now(tz="UTC") - start).days < _COMPACT_DAYS
        body = self._query(symbol, {"function": function, "outputsize": "compact" if recent else "full"})
        if key not in body:
            raise ProviderError(f"alphavantage: the answer for {symbol} has no {key!r}")
        with documented_shape(self.name, symbol):
            series = body[key]
            days = list(series)
            frame = bars_frame(pd.to_datetime(days, utc=True),
                               **{column: [series[d].get(field) for d in days] for column, field in _FIELDS.items()})
        return frame[(frame.index >= start) & (frame.index <= end)]

    def quote(self, symbol: str) -> Quote:
        fields = self._query(symbol, {"function": "GLOBAL_QUOTE"}).get("Global Quote") or {}
        if not fields.get("05. price"):
            raise UnknownSymbolError(f"alphavantage: unknown symbol {symbol!r} (empty Global Quote)")
        previous = fields.get("08. previous close")
        with documented_shape(self.name, symbol):
            return Quote(symbol=fields.get("01. symbol", symbol), price=float(fields["05. price"]),
                         time=pd.Timestamp(fields["07. latest trading day"], tz="UTC"), currency=None,
                         previous_close=float(previous) if previous else None, provider=self.name)
