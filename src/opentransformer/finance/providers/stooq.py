"""Stooq's CSV downloads: history from /q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD
(Date,Open,High,Low,Close,Volume), quotes from /q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv.

Stooq answers everything with HTTP 200: an unknown symbol as the text "No data" (history) or a row of
"N/D" fields (quote), a refusal (daily hit limit, blocked client) as an HTML page or a line of text.
Its prices are already adjusted for splits and dividends, so adj_close is the close."""
from __future__ import annotations

import io

import httpx
import pandas as pd

from ..errors import ProviderError, UnknownSymbolError
from ..settings import HttpSettings
from .base import HttpClient, Provider, Quote, bars_frame, documented_shape, empty_bars

_INTERVALS = {"1d": "d", "1wk": "w", "1mo": "m"}
_MISSING = "N/D"
_NO_DATA = "no data"  # the whole body, when Stooq has no bars for the request
_STOOQ_TIMEZONE = "Europe/Warsaw"  # quote times are the service's local time


def stooq_symbol(symbol: str) -> str:
    """Stooq names US listings `aapl.us`; a bare ticker is taken to be one of those."""
    s = symbol.strip().lower()
    return s if "." in s or s.startswith("^") else f"{s}.us"


class StooqProvider(Provider):
    name = "stooq"

    def __init__(self, settings: HttpSettings):
        self.http = HttpClient(self.name, settings)

    def _csv(self, symbol: str, path: str, params: dict) -> pd.DataFrame | None:
        """The CSV table, or None for Stooq's "No data"."""
        def attempt() -> pd.DataFrame | None:
            return self._parse(symbol, self.http.get(path, params))
        return self.http.call(attempt)

    def _parse(self, symbol: str, response: httpx.Response) -> pd.DataFrame | None:
        text = response.text.strip()
        if response.status_code == 404:
            raise UnknownSymbolError(f"stooq: unknown symbol {symbol!r}")
        if response.status_code != 200:
            raise ProviderError(f"stooq: HTTP {response.status_code} from {response.url}")
        if "html" in response.headers.get("content-type", "") or text.startswith("<"):
            raise ProviderError(f"stooq: answered with a web page instead of CSV for {symbol!r} (the service "
                                "refuses this client or its daily hit limit is reached); try again later or "
                                "use another provider")
        if "," not in text.partition("\n")[0]:
            if text.lower() == _NO_DATA:
                return None
            raise ProviderError(f"stooq: answered {text[:200]!r} instead of CSV for {symbol!r}")
        with documented_shape(self.name, symbol):
            return pd.read_csv(io.StringIO(text), dtype=str)

    def history(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        table = self._csv(symbol, "/q/d/l/", {"s": stooq_symbol(symbol), "i": _INTERVALS[interval],
                                              "d1": start.strftime("%Y%m%d"), "d2": end.strftime("%Y%m%d")})
        if table is None:
            # Stooq says "No data" both for unknown symbols and for ranges without bars: ask its quote.
            self.quote(symbol)
            return empty_bars()
        with documented_shape(self.name, symbol):
            table = table[table["Close"] != _MISSING]
            if "Volume" not in table:  # indices and currencies have none
                table = table.assign(Volume=None)
            frame = bars_frame(pd.to_datetime(table["Date"], utc=True), open=table["Open"], high=table["High"],
                               low=table["Low"], close=table["Close"], adj_close=table["Close"],
                               volume=table["Volume"])
        return frame[(frame.index >= start) & (frame.index <= end)]

    def quote(self, symbol: str) -> Quote:
        table = self._csv(symbol, "/q/l/", {"s": stooq_symbol(symbol), "f": "sd2t2ohlcv", "h": "", "e": "csv"})
        with documented_shape(self.name, symbol):
            if table is None or table.empty or table["Close"].iloc[0] == _MISSING:
                raise UnknownSymbolError(f"stooq: unknown symbol {symbol!r} (it answered N/D)")
            row = table.iloc[0]
            return Quote(symbol=row["Symbol"], price=float(row["Close"]),
                         time=pd.Timestamp(f"{row['Date']} {row['Time']}", tz=_STOOQ_TIMEZONE).tz_convert("UTC"),
                         currency=None, previous_close=None, provider=self.name)
