"""The price cache: one SQLite file holding bars by (provider, symbol, interval, time) and, per series,
the day ranges already fetched, so a repeated request makes no network call and a longer one fetches
only the days it lacks.

Days are whole UTC days, counted from 1970-01-01, both ends of a range included. A range fetched while
its last day was still trading is final only up to the day before; its last day counts as covered for
`fresh_seconds` after the fetch."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .providers.base import COLUMNS, Quote, bars_frame

_DAY = 86400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, time INTEGER NOT NULL,
    open REAL, high REAL, low REAL, close REAL NOT NULL, adj_close REAL, volume REAL, fetched_at REAL NOT NULL,
    PRIMARY KEY (provider, symbol, interval, time));
CREATE TABLE IF NOT EXISTS coverage (
    provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL,
    first_day INTEGER NOT NULL, last_day INTEGER NOT NULL, fetched_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quotes (
    provider TEXT NOT NULL, symbol TEXT NOT NULL, price REAL NOT NULL, time INTEGER NOT NULL,
    currency TEXT, previous_close REAL, fetched_at REAL NOT NULL, PRIMARY KEY (provider, symbol));
"""


@dataclass(frozen=True)
class SeriesKey:
    provider: str
    symbol: str
    interval: str


@dataclass(frozen=True)
class Span:
    """A stretch of fetched days and when it was fetched."""
    first_day: int
    last_day: int
    fetched_at: float

    def final_last_day(self, now: float, fresh_seconds: float) -> int:
        """The last day this span still vouches for: a day that was trading when fetched is redone once
        the fetch is older than `fresh_seconds`."""
        fetch_day = int(self.fetched_at // _DAY)
        if self.last_day < fetch_day or now - self.fetched_at < fresh_seconds:
            return self.last_day
        return fetch_day - 1


def day_number(ts: pd.Timestamp) -> int:
    return int(ts.timestamp() // _DAY)


def day_timestamp(day: int) -> pd.Timestamp:
    return pd.Timestamp(day * _DAY, unit="s", tz="UTC")


def merge_spans(spans: list[Span]) -> list[Span]:
    """Overlapping or adjacent spans joined; a joined span takes the fetch time of the part that reaches
    furthest, since only the last day of a span can be unfinished."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.first_day, s.last_day)):
        if merged and span.first_day <= merged[-1].last_day + 1:
            last = merged[-1]
            edge = max((last, span), key=lambda s: (s.last_day, s.fetched_at))
            merged[-1] = Span(last.first_day, edge.last_day, edge.fetched_at)
        else:
            merged.append(span)
    return merged


def missing_days(spans: list[Span], first_day: int, last_day: int, now: float,
                 fresh_seconds: float) -> list[tuple[int, int]]:
    """The stretches of [first_day, last_day] no span vouches for."""
    gaps = []
    cursor = first_day
    for span in sorted(spans, key=lambda s: s.first_day):
        end = min(span.final_last_day(now, fresh_seconds), last_day)
        if span.first_day > cursor and cursor <= last_day:
            gaps.append((cursor, min(span.first_day - 1, last_day)))
        cursor = max(cursor, end + 1)
    if cursor <= last_day:
        gaps.append((cursor, last_day))
    return gaps


class PriceCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        with self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def spans(self, key: SeriesKey) -> list[Span]:
        rows = self._db.execute("SELECT first_day, last_day, fetched_at FROM coverage "
                                "WHERE provider=? AND symbol=? AND interval=?",
                                (key.provider, key.symbol, key.interval)).fetchall()
        return [Span(*row) for row in rows]

    def missing(self, key: SeriesKey, first_day: int, last_day: int, fresh_seconds: float,
                now: float | None = None) -> list[tuple[int, int]]:
        return missing_days(self.spans(key), first_day, last_day, time.time() if now is None else now,
                            fresh_seconds)

    def store(self, key: SeriesKey, bars: pd.DataFrame, first_day: int, last_day: int, fetched_at: float) -> None:
        """Bars fetched for [first_day, last_day]; the span is recorded even when it held no bars
        (weekends, holidays), so it is not asked for again."""
        values = bars[list(COLUMNS)].astype(object).where(bars[list(COLUMNS)].notna(), None)
        rows = [(key.provider, key.symbol, key.interval, int(ts.timestamp()), *row, fetched_at)
                for ts, row in zip(bars.index, values.itertuples(index=False, name=None))]
        spans = merge_spans(self.spans(key) + [Span(first_day, last_day, fetched_at)])
        where = (key.provider, key.symbol, key.interval)
        with self._db:
            self._db.executemany(f"INSERT OR REPLACE INTO bars VALUES ({', '.join('?' * 11)})", rows)
            self._db.execute("DELETE FROM coverage WHERE provider=? AND symbol=? AND interval=?", where)
            self._db.executemany("INSERT INTO coverage VALUES (?, ?, ?, ?, ?, ?)",
                                 [(*where, s.first_day, s.last_day, s.fetched_at) for s in spans])

    def bars(self, key: SeriesKey, first_day: int, last_day: int) -> tuple[pd.DataFrame, float | None]:
        """The cached bars of [first_day, last_day] and when the newest of them was fetched."""
        rows = self._db.execute(
            f"SELECT time, {', '.join(COLUMNS)}, fetched_at FROM bars WHERE provider=? AND symbol=? AND interval=? "
            "AND time >= ? AND time < ? ORDER BY time",
            (key.provider, key.symbol, key.interval, first_day * _DAY, (last_day + 1) * _DAY)).fetchall()
        frame = bars_frame(pd.to_datetime([r[0] for r in rows], unit="s", utc=True),
                           **{c: [r[i + 1] for r in rows] for i, c in enumerate(COLUMNS)})
        return frame, max((r[-1] for r in rows), default=None)

    def store_quote(self, q: Quote, fetched_at: float) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO quotes VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (q.provider, q.symbol.upper(), q.price, int(q.time.timestamp()), q.currency,
                              q.previous_close, fetched_at))

    def quote(self, provider: str, symbol: str) -> tuple[Quote, float] | None:
        """The last quote fetched, else the close of the newest daily bar cached."""
        row = self._db.execute("SELECT price, time, currency, previous_close, fetched_at FROM quotes "
                               "WHERE provider=? AND symbol=?", (provider, symbol.upper())).fetchone()
        if row is None:
            bars = self._db.execute("SELECT close, time, NULL, fetched_at FROM bars WHERE provider=? AND symbol=? "
                                    "AND interval='1d' ORDER BY time DESC LIMIT 2",
                                    (provider, symbol.upper())).fetchall()
            if not bars:
                return None
            previous = bars[1][0] if len(bars) > 1 else None
            row = (bars[0][0], bars[0][1], None, previous, bars[0][3])
        price, stamp, currency, previous, fetched_at = row
        return Quote(symbol=symbol, price=price, time=pd.Timestamp(stamp, unit="s", tz="UTC"), currency=currency,
                     previous_close=previous, provider=provider), fetched_at
