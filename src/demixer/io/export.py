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
  ``demixer separate`` writes. File names are safe, distinct (case-insensitively) and at most
  :data:`MAX_STEM_NAME_BYTES` long (:func:`stem_file_names`); ``demixer separate`` also writes
  ``stems.json`` (:data:`STEM_INDEX`), which maps each file to its group's real name and lists the
  run's files, and writes the whole set through :class:`StemSetWriter` (a temporary folder swapped in).

Every writer is atomic (a temporary file in the same folder, then a rename) and reports any problem as
:class:`~demixer.io.errors.InputError` naming the path and the reason.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import errno
import io
import json
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demixer.io.audio import write_audio
from demixer.io.errors import InputError
from demixer.io.limits import format_bytes

__all__ = [
    "MAX_STEM_NAME_BYTES",
    "STEM_FORMATS",
    "STEM_INDEX",
    "StemSetWriter",
    "clean_temporary",
    "remove_stale_temporary",
    "stem_file_names",
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


#: The longest stem file name (without the suffix) in UTF-8 bytes: far below the 255 of common file
#: systems, so that a suffix, a ``_NN`` for duplicates and a temporary prefix always fit.
MAX_STEM_NAME_BYTES = 100
#: The index ``demixer separate`` writes beside the stems: each file and its group's real name.
STEM_INDEX = "stems.json"
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def safe_filename(name: str, limit: int = MAX_STEM_NAME_BYTES) -> str:
    """A file name stem from a source or component name (as ``demixer separate`` names its files):
    letters, digits, ``-``, ``_`` and inner dots; at most ``limit`` UTF-8 bytes; never empty, ``.``,
    ``..`` or a reserved device name (``con``, ``nul``, …)."""
    text = unicodedata.normalize("NFC", str(name))
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    keep = _cut_bytes(keep, limit).rstrip("._")
    if keep.split(".")[0].lower() in _RESERVED:
        keep = f"{keep}_"
    return keep or "source"


def stem_file_names(names: Sequence[str], fmt: str = "wav") -> list[str]:
    """Distinct (also case-insensitively), safe, length-limited file names ``<name>.<fmt>`` for
    ``names`` in order: names that collide after sanitising get ``_2``, ``_3``, …"""
    fmt = fmt.lower()
    if fmt not in STEM_FORMATS:
        raise ValueError(f"stem format must be one of {', '.join(STEM_FORMATS)}, got {fmt!r}")
    out: list[str] = []
    used: set[str] = set()
    for name in names:
        base = safe_filename(name)
        stem, i = base, 2
        while stem.casefold() in used:
            tail = f"_{i}"
            stem = _cut_bytes(base, MAX_STEM_NAME_BYTES - len(tail)) + tail
            i += 1
        used.add(stem.casefold())
        out.append(f"{stem}.{fmt}")
    return out


def stem_paths(folder: str | os.PathLike[str], names: Sequence[str], fmt: str = "wav") -> dict[str, Path]:
    """The file of each source: ``<folder>/<safe name>.<fmt>``, made unique (``name_2``…) when two names
    map to the same file (:func:`stem_file_names`). Names given twice get one file."""
    files = stem_file_names(list(dict.fromkeys(names)), fmt)
    return {name: Path(folder) / f for name, f in zip(dict.fromkeys(names), files, strict=True)}


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


# ================================================================================ a set of stems, atomic
#: Temporary folders of :class:`StemSetWriter`: ``.<folder>.demixer-new-<pid>-<hex>`` beside the
#: result folder (or ``.demixer-new-<pid>-<hex>`` inside it), ``.<folder>.demixer-old-<pid>-<hex>``
#: for the replaced set; and the temporary files of the atomic writers (``.<name>.<hex>.tmp``).
_TMP_DIR = re.compile(r"^\.(?:(?P<of>.+)\.)?demixer-(?P<kind>new|old)-(?P<pid>\d+)-[0-9a-f]{12}$")
_TMP_FILE = re.compile(r"^\..+?\.(?:(?P<pid>\d+)\.)?[0-9a-f]{12}\.tmp$")
_TMP_FILE_AGE = 600.0  # seconds: a temporary file without a pid in its name older than this is stale


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is one of Demixer's temporary names (ignored when listing)."""
    return bool(_TMP_DIR.match(name) or _TMP_FILE.match(name))


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass


def clean_temporary(folder: str | os.PathLike[str]) -> list[str]:
    """Remove what interrupted stem writes left in and beside ``folder``: temporary folders of
    processes that are gone, and temporary files older than 10 minutes. When the folder itself is
    missing but an interrupted swap left the previous set aside, that set is put back. Returns the
    names removed or restored."""
    import time

    out = Path(folder)
    done: list[str] = []
    parent = out.parent if out.name else Path(".")
    now = time.time()
    try:
        beside = list(parent.iterdir())
    except OSError:
        beside = []
    for p in sorted(beside, key=lambda q: q.name):
        m = _TMP_DIR.match(p.name)
        if not m or m.group("of") != out.name or _alive(int(m.group("pid"))):
            continue
        if m.group("kind") == "old" and not out.exists():
            try:
                os.rename(p, out)
                done.append(p.name)
                continue
            except OSError:
                pass
        _remove(p)
        done.append(p.name)
    try:
        inside = list(out.iterdir()) if out.is_dir() else []
    except OSError:
        inside = []
    for p in inside:
        m = _TMP_DIR.match(p.name)
        if m and m.group("of") is None and not _alive(int(m.group("pid"))):
            _remove(p)
            done.append(p.name)
            continue
        f = _TMP_FILE.match(p.name)
        if f:
            pid = f.group("pid")
            try:
                stale = (not _alive(int(pid))) if pid else now - p.stat().st_mtime > _TMP_FILE_AGE
            except OSError:
                stale = False
            if stale:
                _remove(p)
                done.append(p.name)
    return done


def remove_stale_temporary(folder: str | os.PathLike[str], prefix: str) -> list[str]:
    """Remove the temporary files ``<prefix>[<pid>.]<hex>.tmp`` in ``folder`` that an interrupted atomic
    write left: those of processes that are gone, or (no pid in the name) older than 10 minutes."""
    import time

    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP_FILE.match(p.name)
        if not m or not p.name.startswith(prefix):
            continue
        pid = m.group("pid")
        try:
            stale = (not _alive(int(pid))) if pid else time.time() - p.stat().st_mtime > _TMP_FILE_AGE
        except OSError:
            stale = False
        if stale:
            _remove(p)
            removed.append(p.name)
    return removed


def read_stem_index(folder: str | os.PathLike[str]) -> dict | None:
    """The ``stems.json`` of ``folder`` when it is there and readable, else None."""
    p = Path(folder) / STEM_INDEX
    try:
        if not p.is_file() or p.stat().st_size > 16 * 1024**2:
            return None
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("stems"), list):
        return None
    files = [s.get("file") for s in data["stems"] if isinstance(s, dict)]
    if not all(isinstance(f, str) and f and "/" not in f and "\\" not in f and f not in (".", "..") for f in files):
        return None
    return data


def _errno_reason(exc: BaseException, where: Path) -> str:
    """A short reason for a failed write; libsndfile only says "System error", so a full disk is
    recognised by the free space left."""
    code = getattr(exc, "errno", None)
    if code == errno.EROFS:
        return "read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ENOSPC or _free_bytes(where) < 1024**2:
        return "no space left on device"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _free_bytes(where: Path) -> int:
    try:
        st = os.statvfs(where)
    except (OSError, AttributeError):
        return 1 << 62
    return int(st.f_bavail) * int(st.f_frsize)


def _writable(folder: Path) -> str | None:
    """None when files can be created in ``folder``, else the reason."""
    probe = folder / f".demixer-probe-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(probe, "xb"):
            pass
    except OSError as exc:
        return _errno_reason(exc, folder)
    try:
        probe.unlink()
    except OSError:
        pass
    return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


class StemSetWriter:
    """Writes the stems of one run as a set: the result folder holds either the previous set or the
    new one, never a mix, and ``stems.json`` names each file's group and lists the run's files.

    Use: ``w = StemSetWriter(folder, names, sr, channels, fmt)``; ``w.check(frames)`` before the work
    (folder writable, enough free space: else :class:`InputError`); then ``with w:`` ``w.write(i, block)``
    for each source ``i`` (blocks of (channels, n) in order) and ``w.commit()``. Leaving the ``with``
    without a commit removes everything written.

    The set is written into a temporary folder beside the result folder, which is then swapped in
    (atomically where the system can exchange two folders, else by two renames; an interrupted swap is
    undone by :func:`clean_temporary` on the next run). Other files in the folder are kept (linked
    into the new set). When that is impossible (the folder holds sub-folders, or its parent is not
    writable), the files are moved in one by one from a temporary folder inside it and ``stems.json``
    is written last. Stems of an earlier run that are not part of the new set are removed
    (``removed``); other audio files that no run's index lists are reported (``foreign``).
    """

    def __init__(
        self, folder: str | os.PathLike[str], names: Sequence[str], sr: int, channels: int, fmt: str = "wav",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self._abs = Path(os.path.abspath(folder))  # "." or "out/" have no usable name/parent as given
        self.names = list(names)
        self.files = stem_file_names(self.names, fmt)
        self.fmt = fmt.lower()
        self.sr, self.channels = int(sr), int(channels)
        self.info = dict(info or {})
        self.removed: list[str] = []
        self.foreign: list[str] = []
        self._tmp: Path | None = None
        self._handles: list[Any] = []
        self._committed = False
        self._mode = "swap"

    # ------------------------------------------------------------------ before the work
    def check(self, frames: int) -> None:
        """Refuse (InputError naming the folder) when the stems cannot be written: not a folder, cannot
        be created or written, or less free space than ``frames`` samples per stem need."""
        clean_temporary(self._abs)
        out = self.folder
        if out.exists() and not out.is_dir():
            raise InputError(out, "is a file, not a folder")
        base = out if out.is_dir() else self._existing_parent()
        reason = _writable(base)
        if reason is not None:
            raise InputError(out, f"cannot write the stems here ({reason})")
        per_sample = 4 if self.fmt == "wav" else 3
        need = len(self.files) * (int(frames) * self.channels * per_sample + 65536)
        free = _free_bytes(base)
        if need > free:
            raise InputError(
                out, f"no space left on device: the {len(self.files)} stems need about {format_bytes(need)}, "
                f"{format_bytes(free)} free"
            )

    def _existing_parent(self) -> Path:
        p = self.folder.absolute().parent
        while not p.exists() and p != p.parent:
            p = p.parent
        return p

    # ------------------------------------------------------------------ writing
    def __enter__(self) -> StemSetWriter:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._committed:
            self.abort()

    def open(self) -> None:
        import soundfile as sf

        from demixer.io.audio import WRITE_FORMATS

        out = self._abs
        tag = f"demixer-new-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            if out.is_dir():
                entries = list(out.iterdir())
                parent_ok = _writable(out.parent) is None
                cwd = Path.cwd().absolute()
                holds_cwd = out == cwd or out in cwd.parents  # never swap the folder a shell stands in
                if any(p.is_dir() and not is_temporary(p.name) for p in entries) or not parent_ok or holds_cwd:
                    self._mode = "inplace"
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = out / f".{tag}" if self._mode == "inplace" else out.parent / f".{out.name}.{tag}"
            self._tmp.mkdir()
            sf_format, subtype, _ = WRITE_FORMATS[self.fmt.upper()]
            for f in self.files:
                self._handles.append(
                    sf.SoundFile(self._tmp / f, "w", self.sr, self.channels, subtype=subtype, format=sf_format)
                )
        except Exception as exc:
            self.abort()
            reason = _errno_reason(exc, self._existing_parent())
            raise InputError(out, f"cannot write the stems here ({reason})") from None

    def write(self, index: int, block: np.ndarray) -> None:
        """Append ``block`` (channels, n) to stem ``index``."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1:
            x = x[np.newaxis, :]
        if not np.isfinite(x).all():
            self.abort()
            raise InputError(self.folder / self.files[index], "cannot write audio containing NaN or infinite samples")
        frames = np.ascontiguousarray(x.T)
        if self.fmt != "wav":
            np.clip(frames, -1.0, 1.0, out=frames)
        try:
            self._handles[index].write(frames)
        except Exception as exc:
            reason = _errno_reason(exc, self._tmp or self.folder)  # before the temporary folder goes
            self.abort()
            raise InputError(self.folder, f"cannot write the stems ({reason})") from None

    def _index(self) -> dict:
        from demixer import __version__

        return {
            "app": f"demixer {__version__}",
            **self.info,
            "format": self.fmt,
            "stems": [{"file": f, "group": n} for f, n in zip(self.files, self.names, strict=True)],
        }

    def commit(self) -> list[Path]:
        """Close the files, write ``stems.json`` and swap the set in. Returns the stem files."""
        assert self._tmp is not None
        out, tmp = self.folder, self._tmp
        try:
            for h in self._handles:
                h.close()
            self._handles = []
            index = json.dumps(self._index(), indent=1, ensure_ascii=False)
            previous = read_stem_index(out) if out.is_dir() else None
            old_files = {s["file"] for s in previous["stems"]} if previous else set()
            new_files = set(self.files)
            if self._mode == "inplace":
                self._commit_inplace(tmp, index, old_files, new_files)
            else:
                self._commit_swap(tmp, index, old_files, new_files)
        except InputError:
            self.abort()
            raise
        except Exception as exc:
            reason = _errno_reason(exc, self._tmp or out.absolute().parent)
            self.abort()
            raise InputError(out, f"cannot write the stems ({reason})") from None
        self._committed = True
        return [out / f for f in self.files]

    def _classify(self, old_files: set[str], new_files: set[str]) -> list[Path]:
        """The entries of the current folder that stay (not stems of the previous run, not the index,
        not temporary); records stale stems and foreign audio files."""
        from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES

        keep = []
        for p in sorted(self.folder.iterdir(), key=lambda q: q.name):
            if p.name == STEM_INDEX or is_temporary(p.name) or p == self._tmp:
                continue
            if p.name in old_files:
                if p.name not in new_files:
                    self.removed.append(p.name)
                continue
            if p.name in new_files:
                continue
            keep.append(p)
            if p.suffix.lower() in SUPPORTED_AUDIO_SUFFIXES:
                self.foreign.append(p.name)
        return keep

    def _commit_swap(self, tmp: Path, index: str, old_files: set[str], new_files: set[str]) -> None:
        out = self._abs
        (tmp / STEM_INDEX).write_text(index, encoding="utf-8")
        if not out.is_dir():
            os.rename(tmp, out)
            self._tmp = None
            fsync_folder(out.absolute().parent)
            return
        for p in self._classify(old_files, new_files):  # other files stay: linked into the new set
            try:
                os.link(p, tmp / p.name, follow_symlinks=False)
            except OSError:
                shutil.copy2(p, tmp / p.name, follow_symlinks=False)
        try:
            shutil.copymode(out, tmp)
        except OSError:
            pass
        fsync_folder(tmp)
        if _exchange(tmp, out):
            self._tmp = None
            _remove(tmp)  # now the previous set
        else:
            old = out.absolute().parent / f".{out.name}.demixer-old-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            os.rename(out, old)
            os.rename(tmp, out)
            self._tmp = None
            _remove(old)
        fsync_folder(out.absolute().parent)

    def _commit_inplace(self, tmp: Path, index: str, old_files: set[str], new_files: set[str]) -> None:
        out = self.folder
        self._classify(old_files, new_files)
        for f in self.files:
            os.replace(tmp / f, out / f)
        _atomic_write(out / STEM_INDEX, lambda fh: fh.write(index), binary=False)
        for name in self.removed:
            _remove(out / name)
        _remove(tmp)
        self._tmp = None

    def abort(self) -> None:
        """Close and remove everything written so far (the result folder is left as it was)."""
        for h in self._handles:
            try:
                h.close()
            except Exception:
                pass
        self._handles = []
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to disk; best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
