"""The provider interface, and the HTTP plumbing every web provider shares: timeouts, a per-provider
rate limit, and retries with exponential backoff on throttling and server errors."""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx
import numpy as np
import pandas as pd
import tenacity

from ..errors import ProviderError, ProviderTimeoutError, ProviderUnavailableError, RateLimitedError
from ..settings import HttpSettings

COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
INTERVALS = ("1d", "1wk", "1mo")
USER_AGENT = "Mozilla/5.0 (compatible; opentransformer-finance)"

T = TypeVar("T")


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: float
    time: pd.Timestamp  # UTC: when the price was set (the last trade or the day's close)
    currency: str | None
    previous_close: float | None
    provider: str

    def as_dict(self) -> dict:
        return {"symbol": self.symbol, "price": self.price, "time": self.time.isoformat(),
                "currency": self.currency, "previous_close": self.previous_close, "provider": self.provider}


class Provider(ABC):
    """A source of prices. Daily bars are indexed by their trading day at 00:00 UTC, so bars from
    different providers line up."""

    name: str

    @abstractmethod
    def history(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        """Bars from `start` to `end` (both days included, UTC midnights): COLUMNS, indexed by UTC
        timestamps, oldest first. An empty frame when the symbol exists but has no bars there."""

    @abstractmethod
    def quote(self, symbol: str) -> Quote:
        """The latest price."""


def bars_frame(index, **columns) -> pd.DataFrame:
    """A frame of COLUMNS from parallel sequences; rows without a close (holidays that some services send
    as nulls) are dropped, duplicate timestamps keep the last row."""
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    frame = pd.DataFrame({c: pd.to_numeric(pd.Series(list(columns[c]), dtype=object), errors="coerce").to_numpy(
        dtype=np.float64) for c in COLUMNS}, index=idx)
    frame.index.name = "time"
    frame = frame[frame["close"].notna()]
    return frame[~frame.index.duplicated(keep="last")].sort_index()


@contextmanager
def documented_shape(provider: str, symbol: str) -> Iterator[None]:
    """Reading an answer: a field the provider's documented shape promises but that is missing or of the
    wrong type is the provider's error, not a crash."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderError(f"{provider}: an answer for {symbol} not in the documented shape "
                            f"({type(exc).__name__}: {exc})") from None


def empty_bars() -> pd.DataFrame:
    return bars_frame([], **{c: [] for c in COLUMNS})


class RateLimiter:
    """Spaces one provider's requests at least 60/requests_per_minute seconds apart."""

    def __init__(self, requests_per_minute: float):
        self._interval = 60.0 / requests_per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            time.sleep(delay)


class HttpClient:
    """GET requests to one provider. `call(attempt)` runs `attempt` (which makes the request and parses
    the answer) again after a backoff while it raises RateLimitedError or ProviderUnavailableError, so
    that throttling sent inside a 200 body (Alpha Vantage's "Note") is retried like a 429."""

    def __init__(self, provider: str, settings: HttpSettings):
        self.provider = provider
        self.settings = settings
        self._client = httpx.Client(base_url=settings.base_url, timeout=settings.timeout_seconds,
                                    follow_redirects=True, headers={"User-Agent": USER_AGENT})
        self._limiter = RateLimiter(settings.requests_per_minute)

    def get(self, path: str, params: dict) -> httpx.Response:
        self._limiter.wait()
        url = f"{self.settings.base_url}{path}"
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException:
            raise ProviderTimeoutError(f"{self.provider}: no answer from {url} within "
                                       f"{self.settings.timeout_seconds:g} s") from None
        except httpx.TransportError as exc:
            raise ProviderError(f"{self.provider}: cannot reach {url}: {exc}") from None
        if response.status_code == 429:
            raise RateLimitedError(f"{self.provider}: too many requests (HTTP 429 from {url}); try again later")
        if response.status_code >= 500:
            raise ProviderUnavailableError(f"{self.provider}: server error HTTP {response.status_code} from {url}")
        return response

    def call(self, attempt: Callable[[], T]) -> T:
        s = self.settings
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((RateLimitedError, ProviderUnavailableError)),
            stop=tenacity.stop_after_attempt(s.retries + 1),
            wait=tenacity.wait_exponential(multiplier=s.backoff_seconds, max=s.backoff_max_seconds),
            reraise=True)
        return retrying(attempt)

    def close(self) -> None:
        self._client.close()
