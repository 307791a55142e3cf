"""Export of a decomposition: stems, W and H (npy and CSV), loss curves (CSV). No Qt.

Layouts (also what the README documents):

* ``W.npy`` (K × R) and ``H.npy`` (R × N): the arrays as they are (float32 usually), ``np.load``-able.
* ``W.csv``: one row per frequency bin; header ``freq_hz,<component 1>,…,<component R>``; the first
  column is the bin's centre frequency in Hz, then one column per component (its template value).
* ``H.csv``: one row per analysis frame; header ``time_s,<component 1>,…,<component R>``; the first
  column is the frame's time in seconds, then one column per component (its activation). So H.csv is
  Hᵀ, and both tables have one column per component, named in the same order as W.csv.
* ``losses.csv``: header ``run,model,iteration,loss``; one row per iteration of each run (iterations
  count from 1), runs in the order they were made.
* stems: ``<source>.wav`` (32-bit float: they add up to the mixture to float precision) or
  ``<source>.flac`` (24-bit, clipped to ±1), at the recording's own rate and channel count: the files
  ``demixer separate`` writes.

Every writer is atomic (a temporary file in the same folder, then a rename) and reports any problem as
:class:`~demixer.io.errors.InputError` naming the path and the reason.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demixer.io.audio import write_audio
from demixer.io.errors import InputError

__all__ = [
    "STEM_FORMATS",
    "safe_filename",
    "stem_paths",
    "write_stems",
    "write_factors",
    "write_factor_csv",
    "write_loss_csv",
    "check_folder",
]

STEM_FORMATS = ("wav", "flac")
_FLOAT_FMT = "%.9g"  # float32 round-trips through 9 significant digits


def safe_filename(name: str) -> str:
    """A file name stem from a source or component name (as ``demixer separate`` names its files)."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)).strip("._")
    return keep or "source"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def check_folder(folder: str | os.PathLike[str], create: bool = True) -> Path:
    """The output folder, created if asked; InputError when it is not a writable folder."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise InputError(folder, "is a file, not a folder")
    if not p.exists():
        if not create:
            raise InputError(folder, "folder does not exist")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(folder, f"cannot create the folder ({_reason(exc)})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(folder, "permission denied (the folder is not writable)")
    return p


def stem_paths(folder: str | os.PathLike[str], names: Sequence[str], fmt: str = "wav") -> dict[str, Path]:
    """The file of each source: ``<folder>/<safe name>.<fmt>``, made unique (``name_2``…) when two names
    map to the same file."""
    fmt = fmt.lower()
    if fmt not in STEM_FORMATS:
        raise ValueError(f"stem format must be one of {', '.join(STEM_FORMATS)}, got {fmt!r}")
    out: dict[str, Path] = {}
    used: set[str] = set()
    for name in names:
        base = safe_filename(name)
        stem, i = base, 2
        while stem.lower() in used:
            stem = f"{base}_{i}"
            i += 1
        used.add(stem.lower())
        out[name] = Path(folder) / f"{stem}.{fmt}"
    return out


def write_stems(
    folder: str | os.PathLike[str], stems: Mapping[str, np.ndarray], sr: int, fmt: str = "wav"
) -> list[Path]:
    """Write each source (channels, n) at ``sr`` Hz into ``folder`` (created if missing). Returns the
    files in the order of ``stems``."""
    check_folder(folder)
    paths = stem_paths(folder, list(stems), fmt)
    written = []
    for name, samples in stems.items():
        write_audio(paths[name], samples, sr)
        written.append(paths[name])
    return written


def _atomic_write(path: Path, write: Any, binary: bool) -> None:
    if not path.parent.is_dir():
        raise InputError(path, f"folder {os.fspath(path.parent)!r} does not exist")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", newline="" if not binary else None,
                  encoding=None if binary else "utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except InputError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise InputError(path, f"cannot write ({_reason(exc)})") from None


def _header(first: str, names: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([first, *[str(n) for n in names]])
    return buf.getvalue()


def write_factor_csv(
    path: str | os.PathLike[str], axis_name: str, axis_values: np.ndarray, table: np.ndarray,
    names: Sequence[str],
) -> Path:
    """A table with a header ``<axis_name>,<names…>``: row i is ``axis_values[i]`` then ``table[i, :]``."""
    table = np.asarray(table)
    axis_values = np.asarray(axis_values, dtype=np.float64).ravel()
    if table.ndim != 2 or table.shape[0] != axis_values.size or table.shape[1] != len(names):
        raise ValueError(
            f"table {table.shape} does not fit {axis_values.size} rows and {len(names)} named columns"
        )
    p = Path(path)
    body = np.column_stack([axis_values, table.astype(np.float64)])

    def write(f):
        f.write(_header(axis_name, names))
        np.savetxt(f, body, fmt=_FLOAT_FMT, delimiter=",")

    _atomic_write(p, write, binary=False)
    return p


def write_factors(
    folder: str | os.PathLike[str],
    W: np.ndarray,
    H: np.ndarray,
    names: Sequence[str],
    freqs: np.ndarray,
    times: np.ndarray,
    *,
    npy: bool = True,
    csv_files: bool = True,
    prefix: str = "",
) -> list[Path]:
    """W.npy/H.npy and W.csv/H.csv (layouts in the module docstring) into ``folder`` (created)."""
    W = np.asarray(W)
    H = np.asarray(H)
    R = len(names)
    if W.ndim != 2 or H.ndim != 2 or W.shape[1] != R or H.shape[0] != R:
        raise ValueError(f"W {W.shape} and H {H.shape} do not fit {R} component names")
    if len(freqs) != W.shape[0] or len(times) != H.shape[1]:
        raise ValueError(f"{len(freqs)} frequencies / {len(times)} times do not fit W {W.shape}, H {H.shape}")
    out_dir = check_folder(folder)
    written: list[Path] = []
    if npy:
        for label, a in (("W", W), ("H", H)):
            p = out_dir / f"{prefix}{label}.npy"
            _atomic_write(p, lambda f, a=a: np.save(f, a, allow_pickle=False), binary=True)
            written.append(p)
    if csv_files:
        written.append(write_factor_csv(out_dir / f"{prefix}W.csv", "freq_hz", freqs, W, names))
        written.append(write_factor_csv(out_dir / f"{prefix}H.csv", "time_s", times, H.T, names))
    return written


def write_loss_csv(path: str | os.PathLike[str], runs: Iterable[Any]) -> Path:
    """Loss curves of ``runs`` (objects with ``label``, ``model``, ``losses``): ``run,model,iteration,loss``."""
    p = Path(path)
    runs = list(runs)

    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["run", "model", "iteration", "loss"])
        for run in runs:
            for i, loss in enumerate(run.losses, start=1):
                w.writerow([run.label, run.model, i, repr(float(loss))])

    _atomic_write(p, write, binary=False)
    return p
