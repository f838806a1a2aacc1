"""Market-data providers behind one interface (base.Provider)."""
from __future__ import annotations

from ..errors import FinanceInputError
from ..settings import PROVIDERS, FinanceSettings
from .base import COLUMNS, INTERVALS, Provider, Quote

__all__ = ["COLUMNS", "INTERVALS", "Provider", "Quote", "make_provider"]


def make_provider(name: str, settings: FinanceSettings) -> Provider:
    if name == "yahoo":
        from .yahoo import YahooProvider
        return YahooProvider(settings.http["yahoo"])
    if name == "stooq":
        from .stooq import StooqProvider
        return StooqProvider(settings.http["stooq"])
    if name == "alphavantage":
        from .alphavantage import AlphaVantageProvider
        return AlphaVantageProvider(settings.http["alphavantage"], settings.alphavantage_key)
    if name == "local":
        from .local import LocalProvider
        return LocalProvider(settings.data_dir)
    raise FinanceInputError(f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}")
