"""Errors of the finance app. Each message is meant for the user as is: the CLI prints it on one line and
exits 1, the HTTP routes answer it with a 4xx/5xx status."""
from __future__ import annotations

from ..errors import InvalidRequestError, OpenTransformerError


class FinanceError(OpenTransformerError):
    """Base of the finance app's errors."""


class FinanceInputError(FinanceError, InvalidRequestError):
    """Bad input: an empty date range, a non-positive or NaN price, a confidence outside (0, 1) ..."""


class ProviderError(FinanceError):
    """A market-data provider answered with something other than data: an error body, an HTML page,
    a server error that outlasted the retries."""


class ProviderUnavailableError(ProviderError):
    """The provider answered with a server error (5xx) through every retry."""


class UnknownSymbolError(ProviderError):
    """The provider knows no such symbol."""


class RateLimitedError(ProviderError):
    """The provider throttled us (HTTP 429, Alpha Vantage's "Note") and kept doing so through the retries."""


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the timeout."""


class NoDataError(FinanceError):
    """The symbol exists but has no prices in the range asked for."""


class OfflineError(FinanceError):
    """Offline mode is on and the cache does not hold what was asked for."""
