"""Array → display conversions for the panes: dB, log-frequency rows. numpy only (no Qt), so the run
worker can call them off the GUI thread and tests can check them directly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DB_FLOOR", "to_db", "db_top", "LogFreqMap", "format_hz"]

#: dB of values at or below the floor (so that exact zeros are finite and sit at the bottom).
DB_FLOOR = -200.0
_TINY = 10.0 ** (DB_FLOOR / 20.0)


def to_db(a: np.ndarray) -> np.ndarray:
    """20·log10(a) as float32, with zeros (and anything below 1e-10) at ``DB_FLOOR``."""
    a = np.asarray(a, dtype=np.float32)
    out = np.maximum(a, np.float32(_TINY))
    np.log10(out, out=out)
    out *= np.float32(20.0)
    np.maximum(out, np.float32(DB_FLOOR), out=out)  # float32 rounding of log10(1e-10)
    return out


def db_top(a_db: np.ndarray) -> float:
    """The top of a dB image for display levels: its maximum (``DB_FLOOR`` + 1 for an empty/zero image)."""
    if a_db.size == 0:
        return DB_FLOOR + 1.0
    top = float(np.max(a_db))
    return top if top > DB_FLOOR else DB_FLOOR + 1.0


def format_hz(f: float) -> str:
    """Compact frequency label: 50, 440, 1k, 2.5k, 10k."""
    if f >= 1000:
        k = f / 1000.0
        return f"{k:.0f}k" if abs(k - round(k)) < 1e-6 else f"{k:.1f}k"
    return f"{f:.0f}"


@dataclass(eq=False)
class LogFreqMap:
    """Display rows equally spaced in log2(frequency) from ``f_lo`` to ``f_hi``, each showing the maximum
    of the STFT bins whose centre falls in it (or the nearest bin when none does, at low frequencies
    where bins are further apart than rows).

    View coordinates of a log display are ``log2(Hz)``: row i spans ``[y0 + i·dy, y0 + (i+1)·dy)``.
    """

    n_bins: int
    sr: float
    n_rows: int = 480
    f_lo: float | None = None

    def __post_init__(self) -> None:
        df = self.sr / (2.0 * (self.n_bins - 1))
        f_hi = self.sr / 2.0
        f_lo = self.f_lo if self.f_lo is not None else max(25.0, df)
        f_lo = min(f_lo, f_hi / 2.0)
        self.f_lo = f_lo
        self.f_hi = f_hi
        self.y0 = math.log2(f_lo)
        self.y1 = math.log2(f_hi)
        M = int(self.n_rows)
        edges = 2.0 ** np.linspace(self.y0, self.y1, M + 1)
        edges[-1] = f_hi + df / 2.0  # the Nyquist bin belongs to the top row
        first = np.ceil(edges / df - 1e-9).astype(int)  # first bin at or above each edge
        first = np.clip(first, 0, self.n_bins)
        starts, stops = first[:-1], first[1:]
        nonempty = stops > starts
        centres = 2.0 ** (self.y0 + (np.arange(M) + 0.5) * (self.y1 - self.y0) / M)
        nearest = np.clip(np.rint(centres / df).astype(int), 0, self.n_bins - 1)
        self._ne_rows = np.flatnonzero(nonempty)
        self._ne_starts = starts[nonempty]
        self._base = int(self._ne_starts[0]) if self._ne_starts.size else 0
        self._e_rows = np.flatnonzero(~nonempty)
        self._e_bins = nearest[~nonempty]
        # the last non-empty row must end at the last bin for reduceat's final segment to be right
        if self._ne_starts.size:
            assert stops[nonempty][-1] == self.n_bins

    @property
    def dy(self) -> float:
        return (self.y1 - self.y0) / self.n_rows

    def apply(self, a: np.ndarray) -> np.ndarray:
        """Rows (axis 0, the K bins) of ``a`` → the ``n_rows`` display rows."""
        a = np.asarray(a)
        if a.shape[0] != self.n_bins:
            raise ValueError(f"expected {self.n_bins} rows, got {a.shape[0]}")
        out = np.empty((self.n_rows,) + a.shape[1:], dtype=a.dtype)
        if self._ne_rows.size:
            out[self._ne_rows] = np.maximum.reduceat(a[self._base :], self._ne_starts - self._base, axis=0)
        if self._e_rows.size:
            out[self._e_rows] = a[self._e_bins]
        return out

    def to_hz(self, y: float) -> float:
        return float(2.0**y)

    def to_y(self, f: float) -> float:
        return math.log2(max(f, 1e-9))
