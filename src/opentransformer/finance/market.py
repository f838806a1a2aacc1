"""Prices through the cache: `MarketData(...).history(...)` and `.quote(...)` ask the provider only for
what the cache lacks, and in offline mode never ask, answering from the cache with its age."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import pandas as pd

from .cache import PriceCache, SeriesKey, day_number, day_timestamp
from .errors import FinanceInputError, NoDataError, OfflineError
from .providers import INTERVALS, Provider, Quote, make_provider
from .settings import FinanceSettings, load_finance_settings

DEFAULT_DAYS = 365
_MAX_SYMBOL = 64


@dataclass(frozen=True)
class History:
    symbol: str
    provider: str
    interval: str
    start: pd.Timestamp
    end: pd.Timestamp
    bars: pd.DataFrame
    fetched_at: float | None  # when the newest bar was fetched; None: read from a local file
    requests: int  # provider requests this call made
    offline: bool = False
    missing: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)  # offline gaps

    def age_note(self) -> str | None:
        """A line saying where stale data came from, for offline answers."""
        if not self.offline or self.fetched_at is None:
            return None
        note = f"offline: {self.symbol} from the {self.provider} cache, fetched {describe_age(self.fetched_at)}"
        if self.missing:
            gaps = ", ".join(f"{a.date()}..{b.date()}" for a, b in self.missing)
            note += f"; not cached: {gaps}"
        return note


def describe_age(fetched_at: float, now: float | None = None) -> str:
    seconds = max(0.0, (time.time() if now is None else now) - fetched_at)
    stamp = dt.datetime.fromtimestamp(fetched_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago ({stamp})"
    return f"just now ({stamp})"


def parse_day(value, name: str) -> pd.Timestamp:
    """A date (str, date, datetime or Timestamp) as its UTC midnight."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise FinanceInputError(f"{name}: {value!r} is not a date (use YYYY-MM-DD)") from None
    if pd.isna(ts):
        raise FinanceInputError(f"{name}: {value!r} is not a date (use YYYY-MM-DD)")
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.normalize()


def check_symbol(symbol: str) -> str:
    s = (symbol or "").strip()
    if not s or len(s) > _MAX_SYMBOL or any(ch.isspace() for ch in s):
        raise FinanceInputError(f"invalid symbol {symbol!r}: expected a ticker such as AAPL")
    return s


def date_range(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) days, both included: end defaults to today and is capped at it, start to a year
    before end."""
    today = pd.Timestamp.now(tz="UTC").normalize()
    last = min(parse_day(end, "end"), today) if end is not None else today
    first = parse_day(start, "start") if start is not None else last - pd.Timedelta(days=DEFAULT_DAYS)
    if first > last:
        raise FinanceInputError(f"empty date range: start {first.date()} is after end {last.date()}"
                                + (" (today)" if last == today else ""))
    return first, last


class MarketData:
    def __init__(self, provider: str | None = None, settings: FinanceSettings | None = None):
        self.settings = settings or load_finance_settings()
        self.provider_name = provider or self.settings.default_provider
        self.provider: Provider = make_provider(self.provider_name, self.settings)
        self._cache: PriceCache | None = None

    @property
    def cache(self) -> PriceCache:
        if self._cache is None:
            self._cache = PriceCache(self.settings.cache_path)
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        close_http = getattr(getattr(self.provider, "http", None), "close", None)
        if close_http is not None:
            close_http()

    def __enter__(self) -> "MarketData":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def history(self, symbol: str, start=None, end=None, interval: str = "1d") -> History:
        symbol = check_symbol(symbol)
        if interval not in INTERVALS:
            raise FinanceInputError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
        first, last = date_range(start, end)
        if self.provider_name == "local":
            bars = self.provider.history(symbol, first, last, interval)
            return self._checked(History(symbol, "local", interval, first, last, bars, None, 0))
        key = SeriesKey(self.provider_name, symbol.upper(), interval)
        gaps = self.cache.missing(key, day_number(first), day_number(last), self.settings.fresh_seconds)
        requests = 0
        if gaps and self.settings.offline:
            bars, fetched_at = self.cache.bars(key, day_number(first), day_number(last))
            if bars.empty:
                raise OfflineError(f"offline mode ({self.settings.offline_flag} is set) and no cached "
                                   f"{self.provider_name} prices for {symbol} from {first.date()} to "
                                   f"{last.date()}: run the same command once online")
            missing = [(day_timestamp(a), day_timestamp(b)) for a, b in gaps]
            return History(symbol, self.provider_name, interval, first, last, bars, fetched_at, 0, True, missing)
        for a, b in gaps:
            fetched_at = time.time()
            self.cache.store(key, self.provider.history(symbol, day_timestamp(a), day_timestamp(b), interval),
                             a, b, fetched_at)
            requests += 1
        bars, fetched_at = self.cache.bars(key, day_number(first), day_number(last))
        return self._checked(History(symbol, self.provider_name, interval, first, last, bars, fetched_at, requests,
                                     self.settings.offline))

    @staticmethod
    def _checked(history: History) -> History:
        if history.bars.empty:
            raise NoDataError(f"no {history.provider} prices for {history.symbol} from {history.start.date()} "
                              f"to {history.end.date()}")
        return history

    def quote(self, symbol: str) -> tuple[Quote, float | None, bool]:
        """(quote, when it was fetched, whether it came from the cache because we are offline)."""
        symbol = check_symbol(symbol)
        if self.provider_name == "local" or not self.settings.offline:
            q = self.provider.quote(symbol)
            if self.provider_name == "local":
                return q, None, False
            now = time.time()
            self.cache.store_quote(q, now)
            return q, now, False
        cached = self.cache.quote(self.provider_name, symbol)
        if cached is None:
            raise OfflineError(f"offline mode ({self.settings.offline_flag} is set) and no cached "
                               f"{self.provider_name} quote for {symbol}: run the same command once online")
        return cached[0], cached[1], True
