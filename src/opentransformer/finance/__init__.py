"""Market data, analytics and LLM-written analysis (`pip install 'opentransformer[finance]'`).

Public API (pandas, httpx and TA-Lib are imported on first use, so importing this package is cheap):
    history(symbol, start=None, end=None, interval="1d", provider=None) -> pandas.DataFrame
        open, high, low, close, adj_close, volume indexed by UTC timestamps, through the disk cache
    quote(symbol, provider=None) -> Quote
    analyze(symbol, model="default", ...) -> Analysis: a facts table and the model's narrative
    MarketData(provider=None): the same with cache details (requests made, data age, offline gaps)
Providers: "yahoo" (default), "stooq", "alphavantage" (OPENTRANSFORMER_ALPHAVANTAGE_KEY), "local" (files).
The numbers themselves live in `opentransformer.finance.analytics`.
"""
from __future__ import annotations

from .errors import (FinanceError, FinanceInputError, NoDataError, OfflineError, ProviderError,
                     ProviderTimeoutError, ProviderUnavailableError, RateLimitedError, UnknownSymbolError)

__all__ = ["history", "quote", "analyze", "MarketData", "FinanceError", "FinanceInputError", "NoDataError",
           "OfflineError", "ProviderError", "ProviderTimeoutError", "ProviderUnavailableError", "RateLimitedError",
           "UnknownSymbolError"]


def history(symbol: str, start=None, end=None, interval: str = "1d", provider: str | None = None):
    """Bars from `start` to `end` (dates, both included; default: the year to today)."""
    from .market import MarketData

    with MarketData(provider) as data:
        return data.history(symbol, start, end, interval).bars


def quote(symbol: str, provider: str | None = None):
    """The latest price (in offline mode, the last one cached)."""
    from .market import MarketData

    with MarketData(provider) as data:
        return data.quote(symbol)[0]


def analyze(symbol: str, model: str = "default", **options):
    """See analyst.analyze."""
    from .analyst import analyze as run

    return run(symbol, model=model, **options)


def __getattr__(name: str):
    if name == "MarketData":
        from .market import MarketData
        return MarketData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
