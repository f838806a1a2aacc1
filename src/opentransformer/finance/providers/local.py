"""Prices from local CSV or Parquet files: the symbol is a file path, or a name looked up as NAME.csv /
NAME.parquet in the data directory (OPENTRANSFORMER_FINANCE_DATA, default the working directory).

A file needs a date column (date, datetime, time or timestamp; or a datetime index) and a close column;
open, high, low, adjusted close and volume are optional. Names are matched without regard to case,
spaces or underscores ("Adj Close" = "adj_close")."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import FinanceInputError, UnknownSymbolError
from .base import COLUMNS, Provider, Quote, bars_frame

_SUFFIXES = (".csv", ".parquet")
_DATE_NAMES = ("date", "datetime", "time", "timestamp")


def _key(name) -> str:
    return str(name).lower().replace(" ", "").replace("_", "")


class LocalProvider(Provider):
    name = "local"

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def _path(self, symbol: str) -> Path:
        given = Path(symbol).expanduser()
        if given.suffix.lower() in _SUFFIXES and given.is_file():
            return given
        for suffix in _SUFFIXES:
            for name in (symbol, symbol.upper(), symbol.lower()):
                candidate = self.data_dir / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
        raise UnknownSymbolError(f"local: no file for {symbol!r}: expected a .csv or .parquet path, or "
                                 f"{symbol}.csv / {symbol}.parquet in {self.data_dir}")

    def _read(self, symbol: str) -> pd.DataFrame:
        path = self._path(symbol)
        try:
            table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise FinanceInputError(f"{path}: not a readable {path.suffix[1:]} table: {exc}") from None
        if isinstance(table.index, pd.DatetimeIndex):
            table = table.reset_index(names="date")
        columns = {_key(c): c for c in table.columns}
        date_column = next((columns[n] for n in _DATE_NAMES if n in columns), None)
        if date_column is None or "close" not in columns:
            raise FinanceInputError(f"{path}: needs a date column ({', '.join(_DATE_NAMES)}) and a close column; "
                                    f"it has {', '.join(map(str, table.columns))}")
        try:
            index = pd.to_datetime(table[date_column], utc=True)
        except (ValueError, TypeError) as exc:
            raise FinanceInputError(f"{path}: column {date_column!r} does not hold dates: {exc}") from None
        close = table[columns["close"]]

        def column(name: str):
            source = columns.get(_key(name))
            return table[source] if source is not None else (close if name == "adj_close" else [None] * len(table))
        return bars_frame(index, **{c: close if c == "close" else column(c) for c in COLUMNS})

    def history(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
        if interval != "1d":
            raise FinanceInputError("the local provider serves the bars its file holds: use --interval 1d")
        frame = self._read(symbol)
        return frame[(frame.index >= start) & (frame.index < end + pd.Timedelta(days=1))]

    def quote(self, symbol: str) -> Quote:
        frame = self._read(symbol)
        if frame.empty:
            raise UnknownSymbolError(f"local: the file for {symbol!r} holds no prices")
        previous = float(frame["close"].iloc[-2]) if len(frame) > 1 else None
        return Quote(symbol=symbol, price=float(frame["close"].iloc[-1]), time=frame.index[-1], currency=None,
                     previous_close=previous, provider=self.name)
