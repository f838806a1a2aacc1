"""Finance settings, read like the engine's (environment, then ./.env, then ~/.env).

Base URLs are settings so that tests, proxies and mirrors can stand in for the real services."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..settings import load_settings, resolved_values
from .errors import FinanceInputError

PROVIDERS = ("yahoo", "stooq", "alphavantage", "local")

_DEFAULT_URLS = {
    "yahoo": "https://query1.finance.yahoo.com",
    "stooq": "https://stooq.com",
    "alphavantage": "https://www.alphavantage.co",
}
# Requests per minute each service tolerates from one client (Alpha Vantage's free tier allows 5).
_DEFAULT_RATES = {"yahoo": 60.0, "stooq": 60.0, "alphavantage": 5.0}


@dataclass(frozen=True)
class HttpSettings:
    """How one provider is reached."""
    base_url: str
    requests_per_minute: float
    timeout_seconds: float
    retries: int  # attempts after the first one, on 429 and 5xx
    backoff_seconds: float  # first wait; doubles with each retry
    backoff_max_seconds: float


@dataclass(frozen=True)
class FinanceSettings:
    home: Path
    offline: bool
    offline_flag: str | None
    default_provider: str
    alphavantage_key: str | None
    data_dir: Path  # where the local provider looks for SYMBOL.csv / SYMBOL.parquet
    fresh_seconds: float  # how long the bar of the current day counts as up to date in the cache
    http: dict[str, HttpSettings]

    @property
    def cache_path(self) -> Path:
        return self.home / "finance" / "cache.sqlite"


def _number(values: dict[str, str], key: str, default: float, minimum: float) -> float:
    text = values.get(key, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise FinanceInputError(f"{key} must be a number, got {text!r}") from None
    if not value >= minimum:
        raise FinanceInputError(f"{key} must be at least {minimum}, got {text!r}")
    return value


def load_finance_settings() -> FinanceSettings:
    base = load_settings()
    values, _ = resolved_values()
    timeout = _number(values, "OPENTRANSFORMER_FINANCE_TIMEOUT", 10.0, 0.001)
    retries = int(_number(values, "OPENTRANSFORMER_FINANCE_RETRIES", 3, 0))
    backoff = _number(values, "OPENTRANSFORMER_FINANCE_BACKOFF", 1.0, 0.0)
    backoff_max = _number(values, "OPENTRANSFORMER_FINANCE_BACKOFF_MAX", 30.0, 0.0)
    http = {}
    for name, url in _DEFAULT_URLS.items():
        key = name.upper()
        http[name] = HttpSettings(
            base_url=(values.get(f"OPENTRANSFORMER_{key}_URL", "").strip() or url).rstrip("/"),
            requests_per_minute=_number(values, f"OPENTRANSFORMER_{key}_RATE", _DEFAULT_RATES[name], 0.001),
            timeout_seconds=timeout, retries=retries, backoff_seconds=backoff, backoff_max_seconds=backoff_max)
    provider = values.get("OPENTRANSFORMER_FINANCE_PROVIDER", "").strip() or "yahoo"
    if provider not in PROVIDERS:
        raise FinanceInputError(f"OPENTRANSFORMER_FINANCE_PROVIDER must be one of {', '.join(PROVIDERS)}, "
                                f"got {provider!r}")
    data_dir = values.get("OPENTRANSFORMER_FINANCE_DATA", "").strip()
    return FinanceSettings(
        home=base.home, offline=base.offline, offline_flag=base.offline_flag, default_provider=provider,
        alphavantage_key=values.get("OPENTRANSFORMER_ALPHAVANTAGE_KEY", "").strip() or None,
        data_dir=Path(data_dir).expanduser() if data_dir else Path.cwd(),
        fresh_seconds=_number(values, "OPENTRANSFORMER_FINANCE_FRESH_SECONDS", 900.0, 0.0), http=http)
