"""Project files (``.demix``, DESIGN.md §5): save and load a :class:`~demixer.model.project.Project`.

A project file is a zip archive of three members:

``project.json``
    ``schema_version``; the audio reference (path *relative to the project file*, the absolute path as
    a fallback, sha256, size in bytes, sample rate, channels and the frames used); the STFT, score and
    run parameters; components, sources, score notes; the run history (metadata: label, model,
    iterations, how it stopped, elapsed time) and the run counter.
``arrays.npz``
    ``W``, ``H``, ``W_E`` (the NAE encoder, when present), ``allow_W``, ``allow_H``, ``W0``, ``H0`` and one
    loss curve ``loss_<i>`` per run, in their own dtypes (bit-exact round trip). Stored uncompressed in
    the zip; the npz inside is deflated (``numpy.load`` reads it as is).
``view.json``
    The window's display state; opaque here (any JSON object, written and read back as is).

V is not stored: loading re-reads the audio and recomputes V with the saved STFT parameters, then
checks that the arrays fit it.

Writing is atomic: a temporary file in the target folder, flushed and fsync'ed, then ``os.replace``d
over the target, so an interrupted save leaves the previous file intact.

Reading trusts nothing: member names (no path traversal), declared sizes (a cap on the total
uncompressed size, also inside the npz, defeats zip bombs), JSON types, array dtypes (no object
arrays: pickles are refused), shapes, NaN/Inf/negative values. Every problem is an
:class:`~demixer.io.errors.InputError` naming the project file and the reason. Older schema versions are
migrated (:func:`migrate`); newer ones are refused.

The audio: :func:`load_project` looks for it at the relative path, then at the absolute one. Not found
→ :class:`AudioNotFoundError` (the GUI asks for the file and calls again with ``audio_path``). Found but
different (size or sha256) → :class:`AudioMismatchError`; ``allow_mismatch=True`` loads it anyway (the
GUI asks first; the arrays must still fit the new audio's analysis, else an error) and adds a warning.

Pure Python + numpy (+ soundfile through ``io.audio``); the engine's ``analyse`` is imported when a
project is loaded (as ``engine.projects.project_from_audio`` does). No Qt.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import uuid
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demixer.io import project_schema as schema
from demixer.io.errors import InputError
from demixer.io.export import fsync_folder as _fsync_folder
from demixer.model.project import (
    RESIDUAL_COLOUR,
    SOURCE_PALETTE,
    Project,
    RunRecord,
)

__all__ = [
    "PROJECT_SUFFIX",
    "SCHEMA_VERSION",
    "MEMBERS",
    "AudioMismatchError",
    "AudioNotFoundError",
    "LoadedProject",
    "ProjectFile",
    "ProjectPayload",
    "file_sha256",
    "load_project",
    "max_project_bytes",
    "migrate",
    "read_project_file",
    "save_project",
    "snapshot_project",
    "write_payload",
]

PROJECT_SUFFIX = ".demix"
SCHEMA_VERSION = 1
PROJECT_JSON, ARRAYS_NPZ, VIEW_JSON = "project.json", "arrays.npz", "view.json"
MEMBERS = (PROJECT_JSON, ARRAYS_NPZ, VIEW_JSON)
DEFAULT_MAX_PROJECT_BYTES = 2 * 1024**3
_MAX_JSON_BYTES = {PROJECT_JSON: 256 * 1024**2, VIEW_JSON: 16 * 1024**2}
_MAX_MEMBERS = 64  # in the archive and in the npz: a project has a few, plus one loss curve per run
_MAX_RUNS = 10_000
_FACTORS = ("W", "H", "W0", "H0", "W_E")
_MASKS = ("allow_W", "allow_H")
_ARRAY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def max_project_bytes() -> int:
    """Cap on a project's total uncompressed size: ``$DEMIXER_MAX_PROJECT_BYTES`` or 2 GiB."""
    raw = os.environ.get("DEMIXER_MAX_PROJECT_BYTES", "")
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_PROJECT_BYTES
    return value if value > 0 else DEFAULT_MAX_PROJECT_BYTES


class AudioNotFoundError(InputError):
    """The project's recording is neither at its relative nor at its absolute path."""

    def __init__(self, project_path: str, expected: str) -> None:
        self.expected = expected
        super().__init__(project_path, f"its recording {expected} was not found (moved or deleted?)")

    def __reduce__(self):
        return (type(self), (self.path, self.expected))


class AudioMismatchError(InputError):
    """A file was found where the recording should be, but it is not the recording that was saved."""

    def __init__(self, project_path: str, audio_path: str, what: str) -> None:
        self.audio_path = audio_path
        self.what = what
        super().__init__(
            project_path,
            f"the recording {audio_path} is not the one the project was saved with ({what})",
        )

    def __reduce__(self):
        return (type(self), (self.path, self.audio_path, self.what))


# ============================================================================================ hashing
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str], *, cached: bool = False) -> str:
    """sha256 of a file (hex). ``cached``: reuse the digest computed for the same (path, size, mtime)
    (saving; file times are coarse, so loading, which checks the file, always reads it)."""
    p = os.path.abspath(os.fspath(path))
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    digest = _hash_cache.get(key) if cached else None
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        if len(_hash_cache) > 64:
            _hash_cache.clear()
        _hash_cache[key] = digest
    return digest


# ============================================================================================ saving
@dataclass(eq=False)
class ProjectPayload:
    """Everything a project file holds, detached from the live project (copies of the arrays), so it
    can be written in another thread while the user keeps editing."""

    meta: dict
    arrays: dict[str, np.ndarray]
    view: dict


def _rel_posix(target: str, start: str) -> str | None:
    try:
        return Path(os.path.relpath(target, start)).as_posix()
    except ValueError:  # another drive (Windows)
        return None


def snapshot_project(
    project: Project,
    path: str | os.PathLike[str],
    view: Mapping | None = None,
    *,
    origin: str | os.PathLike[str] | None = None,
) -> ProjectPayload:
    """The payload of ``project`` saved at ``path`` (paths are made relative to ``path``'s folder).

    ``origin`` (recovery files): the project file these edits belong to. Raises :class:`InputError`
    when the project cannot be saved (no audio file)."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    audio = project.audio
    audio_file = getattr(audio, "path", None)
    if not audio_file:
        raise InputError(target, "the recording was not read from a file, so the project cannot refer to it")
    audio_abs = os.path.abspath(os.fspath(audio_file))
    try:
        size = os.path.getsize(audio_abs)
        digest = file_sha256(audio_abs, cached=True)
    except OSError as e:
        raise InputError(target, f"cannot read the recording {audio_abs} ({e.strerror or e})") from None
    score_ref = None
    if project.score_path:
        score_abs = os.path.abspath(os.fspath(project.score_path))
        score_ref = {"path": _rel_posix(score_abs, folder), "absolute": score_abs}
    arrays: dict[str, np.ndarray] = {
        "W": np.array(project.W, copy=True),
        "H": np.array(project.H, copy=True),
        "allow_W": np.array(project.allow_W, dtype=bool, copy=True),
        "allow_H": np.array(project.allow_H, dtype=bool, copy=True),
        "W0": np.array(project.W0, copy=True),
        "H0": np.array(project.H0, copy=True),
    }
    if project.W_E is not None:
        arrays["W_E"] = np.array(project.W_E, copy=True)
    for i, rec in enumerate(project.runs):
        arrays[f"loss_{i}"] = np.asarray(rec.losses, dtype=np.float64).copy()
    from demixer import __version__

    # V's compression is the analysis' own (the run settings may have changed since V was computed)
    compress = getattr(project.analysis, "compress", project.run.compress)
    meta = schema.PROJECT.dump(
        {
            "schema_version": SCHEMA_VERSION,
            "app": f"demixer {__version__}",
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "audio": {
                "path": _rel_posix(audio_abs, folder),
                "absolute": audio_abs,
                "sha256": digest,
                "size": size,
                "sr": audio.sr,
                "channels": audio.channels,
                "start": 0,
                "frames": audio.n_samples,
            },
            "score_path": score_ref,
            "stft": project.stft,
            "analysis": {"compress": compress},
            "score": project.score,
            "run": project.run,
            "shape": {"K": project.n_bins, "N": project.n_frames, "R": project.n_components},
            "components": project.components,
            "sources": project.sources,
            "notes": project.notes,
            "runs": project.runs,
            "run_counter": project.run_counter,
            "alignment": getattr(project, "score_alignment", None),
            "origin": None if origin is None else os.path.abspath(os.fspath(origin)),
        }
    )
    view_dict = json.loads(json.dumps(dict(view or {})))  # a JSON copy: fails here, not mid-write
    return ProjectPayload(meta, arrays, view_dict)


def write_payload(payload: ProjectPayload, path: str | os.PathLike[str]) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    On any failure the temporary file is removed, the previous file at ``path`` (if any) is left as it
    was, and :class:`InputError` is raised."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise InputError(target, f"folder {folder} does not exist")
    from demixer.io.export import remove_stale_temporary

    # what saves killed mid-write left (".<name>.<pid>.<hex>.tmp"; the project itself is always intact)
    remove_stale_temporary(folder, f".{os.path.basename(target)}.")
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                zf.writestr(PROJECT_JSON, json.dumps(payload.meta, indent=1, ensure_ascii=False))
                info = zipfile.ZipInfo(ARRAYS_NPZ, date_time=_zip_time())
                info.compress_type = zipfile.ZIP_STORED  # the npz inside is deflated already
                with zf.open(info, "w", force_zip64=True) as raw:
                    _write_npz(raw, payload.arrays)
                zf.writestr(VIEW_JSON, json.dumps(payload.view, indent=1, ensure_ascii=False))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, InputError):
            raise
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        reason = (getattr(e, "strerror", None) or " ".join(str(e).split())) or type(e).__name__
        raise InputError(target, f"cannot write the project ({reason}); the previous file is unchanged") from None
    _fsync_folder(folder)


def _zip_time() -> tuple[int, int, int, int, int, int]:
    t = _dt.datetime.now()
    return (max(1980, t.year), t.month, t.day, t.hour, t.minute, t.second)


def _write_npz(raw, arrays: Mapping[str, np.ndarray]) -> None:
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as npz:
        for name, a in arrays.items():
            with npz.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(a), allow_pickle=False)


def save_project(
    project: Project,
    path: str | os.PathLike[str],
    view: Mapping | None = None,
    *,
    origin: str | os.PathLike[str] | None = None,
) -> None:
    """Save ``project`` (and the window's ``view`` state) to ``path``, atomically."""
    write_payload(snapshot_project(project, path, view, origin=origin), path)


# ============================================================================================ reading
_Bad = schema.SchemaError  # a problem inside the file; becomes ``InputError(project path, message)``


@dataclass(eq=False)
class ProjectFile:
    """A project file read and checked, before its audio is looked at.

    ``meta`` is the current schema's ``project.json`` (after migration), ``arrays`` the checked arrays,
    ``view`` the display state ({} when missing or unreadable; see ``warnings``)."""

    path: str
    meta: dict
    arrays: dict[str, np.ndarray]
    view: dict
    schema_version: int
    warnings: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str | None:
        return self.meta.get("origin")


def _member_name_ok(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return False
    if re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in name.split("/")


def read_project_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> ProjectFile:
    """Open ``path``, check the archive, parse and check ``project.json`` (migrating older schemas) and
    ``arrays.npz``; ``view.json`` is read when present. Does not touch the audio."""
    shown = os.fspath(path)
    cap = max_project_bytes() if max_bytes is None else int(max_bytes)
    p = Path(shown)
    if not p.exists():
        raise InputError(shown, "file not found")
    if p.is_dir():
        raise InputError(shown, "is a folder, not a project file")
    if p.stat().st_size == 0:
        raise InputError(shown, "file is empty (0 bytes)")
    try:
        with open(p, "rb") as fh:
            try:
                zf = zipfile.ZipFile(fh)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
                raise _Bad("not a Demixer project (not a zip archive, or a truncated one)") from None
            with zf:
                members = _check_members(zf, cap)
                meta_raw = _read_json(zf, members, PROJECT_JSON, required=True)
                npz_data = _read_member(zf, members[ARRAYS_NPZ]) if ARRAYS_NPZ in members else None
                warnings: list[str] = []
                view: dict = {}
                if VIEW_JSON in members:
                    try:
                        v = _read_json(zf, members, VIEW_JSON, required=False)
                        if isinstance(v, dict):
                            view = v
                        else:
                            warnings.append("view.json is not a JSON object; using the default view")
                    except _Bad as e:
                        warnings.append(f"{e}; using the default view")
                else:
                    warnings.append("no view.json; using the default view")
        if not isinstance(meta_raw, dict):
            raise _Bad("project.json: expected a JSON object at the top level")
        with _Npz(npz_data, cap) if npz_data is not None else _nullcontext() as headers:
            # the arrays' headers (shapes, dtypes) are checked against project.json before any is read
            meta, headers, version = migrate(meta_raw, headers)
            if headers is None:
                raise _Bad(f"missing member {ARRAYS_NPZ}; not a complete Demixer project")
            meta = _check_meta(meta)
            _check_arrays(meta, headers)
            arrays = {k: h.load() if isinstance(h, _NpyHeader) else h for k, h in headers.items()}
        _check_values(arrays)
        if version < SCHEMA_VERSION:
            warnings.append(f"migrated from schema version {version}; saving writes version {SCHEMA_VERSION}")
        return ProjectFile(shown, meta, arrays, view, version, warnings)
    except _Bad as e:
        raise InputError(shown, str(e)) from None
    except PermissionError:
        raise InputError(shown, "permission denied") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise InputError(shown, f"the archive is corrupt ({_one_line(e)})") from None
    except (NotImplementedError, RuntimeError) as e:  # unsupported compression, encrypted members
        raise InputError(shown, f"unsupported archive ({_one_line(e)})") from None
    except MemoryError:
        raise InputError(shown, "not enough memory to read the project") from None
    except OSError as e:
        raise InputError(shown, f"cannot read the file ({e.strerror or _one_line(e)})") from None


def _check_members(zf: zipfile.ZipFile, cap: int) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise _Bad(f"the archive has {len(infos)} members; a project has {len(MEMBERS)}")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if not _member_name_ok(name):
            raise _Bad(f"unsafe member name {name!r} in the archive (absolute path or '..'); refused")
        if name in members:
            raise _Bad(f"member {name!r} appears twice in the archive; refused")
        if info.flag_bits & 0x1:
            raise _Bad(f"member {name!r} is encrypted; refused")
        total += int(info.file_size)
        if total > cap:
            raise _Bad(
                f"the archive declares {_fmt_bytes(total)} or more uncompressed, over the limit of "
                f"{_fmt_bytes(cap)} (set DEMIXER_MAX_PROJECT_BYTES to raise it); refused"
            )
        limit = _MAX_JSON_BYTES.get(name)
        if limit is not None and info.file_size > limit:
            raise _Bad(f"{name} declares {_fmt_bytes(info.file_size)}, over its limit of {_fmt_bytes(limit)}")
        members[name] = info
    if PROJECT_JSON not in members:
        raise _Bad(f"missing member {PROJECT_JSON}; not a Demixer project")
    return members


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated 1 MiB at a time: a member whose data inflates beyond its declared size
    (a zip bomb with a lying header) is refused by its checksum after at most its declared size, never
    inflated whole first."""
    out = bytearray()
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                out += chunk
    except zipfile.BadZipFile as e:
        raise _Bad(
            f"{info.filename} does not match its declared size of {_fmt_bytes(info.file_size)} or its checksum "
            f"(a damaged or hostile archive: {_one_line(e)}); refused"
        ) from None
    return bytes(out)


def _read_json(zf: zipfile.ZipFile, members: dict, name: str, *, required: bool) -> Any:
    raw = _read_member(zf, members[name])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"{name} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise _Bad(f"{name} is not valid JSON ({_one_line(e)})") from None


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@dataclass(eq=False)
class _NpyHeader:
    """An array of the npz known by its header only (shape, dtype): checked before it is read."""

    npz: zipfile.ZipFile
    info: zipfile.ZipInfo
    key: str
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def load(self) -> np.ndarray:
        """The data, read straight into its final array (no second copy)."""
        a = np.empty(self.shape, dtype=self.dtype, order="F" if self.fortran else "C")
        view = memoryview(a.reshape(-1, order="A").view(np.uint8)) if a.size else memoryview(b"")
        with self.npz.open(self.info) as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            got = 0
            while got < len(view):
                n = f.readinto(view[got : got + (1 << 20)])
                if not n:
                    raise _Bad(f"{ARRAYS_NPZ}: {self.key} is shorter than its header says")
                got += n
        return a


class _Npz:
    """The arrays.npz: its members' .npy headers read and checked (no data yet); a context manager."""

    def __init__(self, data: bytes, cap: int) -> None:
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise _Bad(f"{ARRAYS_NPZ} is not a valid npz archive") from None
        self.cap = cap

    def __enter__(self) -> dict[str, _NpyHeader]:
        infos = self.zf.infolist()
        if len(infos) > schema.MAX_RUNS + _MAX_MEMBERS:
            raise _Bad(f"{ARRAYS_NPZ} has {len(infos)} members; refused")
        total = sum(int(i.file_size) for i in infos)
        if total > self.cap:
            raise _Bad(
                f"{ARRAYS_NPZ} declares {_fmt_bytes(total)} uncompressed, over the limit of {_fmt_bytes(self.cap)} "
                "(set DEMIXER_MAX_PROJECT_BYTES to raise it); refused"
            )
        out: dict[str, _NpyHeader] = {}
        for info in infos:
            fname = info.filename
            key = fname[:-4] if fname.endswith(".npy") else ""
            if not _ARRAY_NAME.match(key):
                raise _Bad(f"{ARRAYS_NPZ}: unexpected member {fname!r}; refused")
            if key in out:
                raise _Bad(f"{ARRAYS_NPZ}: array {key} appears twice; refused")
            out[key] = _npy_header(self.zf, info, key)
        return out

    def __exit__(self, *exc) -> bool:
        self.zf.close()
        return False


def _npy_header(npz: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> _NpyHeader:
    where = f"{ARRAYS_NPZ}: {key}"
    fmt = np.lib.format
    with npz.open(info) as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise _Bad(f"{where}: unsupported .npy version {version}")
        except _Bad:
            raise
        except Exception as e:  # ValueError for a bad header, and the like
            raise _Bad(f"{where}: not a valid .npy array ({_one_line(e)})") from None
        if dtype.hasobject:
            raise _Bad(f"{where}: holds Python objects (a pickle); refused")
        if dtype.kind not in "biuf" or dtype.subdtype is not None or dtype.names is not None:
            raise _Bad(f"{where}: unsupported dtype {dtype}")
        count = math.prod(shape)
        expected = count * dtype.itemsize
        header_len = f.tell()
        if expected != info.file_size - header_len:
            raise _Bad(
                f"{where}: its header declares shape {tuple(shape)} ({_fmt_bytes(expected)}) but it holds "
                f"{_fmt_bytes(max(0, info.file_size - header_len))}"
            )
    return _NpyHeader(npz, info, key, tuple(int(x) for x in shape), bool(fortran), dtype)


# ============================================================================================ migration
def _v0_to_v1(meta: dict, arrays: dict | None) -> tuple[dict, dict | None]:
    """Schema 0 (pre-release, Demixer 0.0.x): ``{"version": 0, "audio": "<path relative to the
    project>", "stft": {n_fft, hop, sr}, "model", "n_iter", "components": [[name, pitch, kind,
    source], …], "sources": [name, …], "notes": [[onset, offset, pitch, group], …]}``; arrays W, H,
    allow_W, allow_H only; no checksum, no view, no run history.

    → schema 1: the audio reference gains the absolute path (resolved later against the project's
    folder, so empty here) and no checksum (not verified: a warning says so); the run parameters
    move under "run"; components and notes become objects; sources get the palette's colours;
    W0/H0 (the initialisation, unknown) start as copies of W and H."""
    audio = meta.get("audio")
    sources = meta.get("sources", [])
    colour = {}
    new_sources = []
    for i, name in enumerate(sources if isinstance(sources, list) else []):
        colour[name] = SOURCE_PALETTE[i % len(SOURCE_PALETTE)]
        new_sources.append({**schema.SOURCE.defaults(), "name": name, "colour": colour[name]})
    comps = []
    for c in meta.get("components", []):
        name, pitch, kind, source = (list(c) + [None, None, "free", ""])[:4] if isinstance(c, list) else (c,) * 4
        comps.append(
            {
                **schema.COMPONENT.defaults(),
                "name": name,
                "pitch": pitch,
                "kind": kind,
                "source": source or "",
                "colour": colour.get(source, RESIDUAL_COLOUR) if isinstance(source, str) else RESIDUAL_COLOUR,
            }
        )
    notes = []
    for n in meta.get("notes", []):
        onset, offset, pitch, group = (list(n) + [None, None, None, ""])[:4] if isinstance(n, list) else (n,) * 4
        notes.append({**schema.NOTE.defaults(), "onset": onset, "offset": offset, "pitch": pitch, "group": group or ""})
    stft = dict(meta.get("stft") or {}) if isinstance(meta.get("stft"), dict) else meta.get("stft")
    if isinstance(stft, dict):
        stft.setdefault("window", "hann")
    new = {
        **schema.PROJECT.defaults(),
        "schema_version": 1,
        "app": "migrated from schema 0",
        "audio": {**schema.AUDIO.defaults(), "path": audio, "start": 0},
        "stft": stft,
        "score": {},
        "run": {"model": meta.get("model", "nmf-kl"), "n_iter": meta.get("n_iter", 100)},
        "components": comps,
        "sources": new_sources,
        "notes": notes,
        "runs": [],
        "run_counter": 0,
    }
    if arrays is not None:
        arrays = dict(arrays)
        for src, dst in (("W", "W0"), ("H", "H0")):
            if src in arrays and dst not in arrays:  # a header is read again for the copy
                a = arrays[src]
                arrays[dst] = np.array(a, copy=True) if isinstance(a, np.ndarray) else a
    return new, arrays


#: schema version → function taking (meta, arrays) of that version to the next one.
MIGRATIONS: dict[int, Callable[[dict, dict | None], tuple[dict, dict | None]]] = {0: _v0_to_v1}


def _schema_version(meta: dict) -> int:
    if "schema_version" in meta:
        v = meta["schema_version"]
    elif meta.get("version") == 0:
        v = 0
    else:
        raise _Bad("project.json: no schema_version; not a Demixer project")
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"project.json: schema_version must be a whole number, got {v!r}")
    return v


def migrate(meta: dict, arrays: dict | None = None) -> tuple[dict, dict | None, int]:
    """Bring ``project.json`` (and the arrays) of any older schema to :data:`SCHEMA_VERSION`.

    Returns (meta, arrays, the version read). A newer version is refused (:class:`InputError` raised by
    the reader; here a ``_Bad``)."""
    version = _schema_version(meta)
    if version > SCHEMA_VERSION:
        raise _Bad(
            f"saved by a newer Demixer (project schema {version}; this version reads up to {SCHEMA_VERSION}); "
            "update Demixer to open it"
        )
    if version < 0:
        raise _Bad(f"project.json: invalid schema_version {version}")
    v = version
    while v < SCHEMA_VERSION:
        try:
            meta, arrays = MIGRATIONS[v](meta, arrays)
        except (TypeError, KeyError, IndexError, ValueError, AttributeError) as e:
            raise _Bad(f"cannot migrate the schema {v} project ({_one_line(e)})") from None
        v += 1
    return meta, arrays, version


# ============================================================================================ checking
def _want(cond: bool, where: str, what: str, value: Any) -> None:
    schema.want(cond, where, what, value)


def _check_meta(meta: dict) -> dict:
    """Validate the current schema's ``project.json`` (:data:`~demixer.io.project_schema.PROJECT`) and
    return it with typed objects added under ``_``."""
    typed = schema.PROJECT.check(meta, "")
    audio = typed["audio"]
    _want(bool(audio["path"]) or bool(audio["absolute"]), "audio.path", "a file path", audio["path"])
    stft = typed["stft"]
    run = typed["run"]
    analysis = typed["analysis"]
    analysis_compress = run.compress if analysis is None else analysis["compress"]
    names = [so.name for so in typed["sources"]]
    _want(len(set(names)) == len(names), "sources", "a list of distinct names", f"{len(names)} names")
    runs = typed["runs"]
    counter = len(runs) if typed["run_counter"] is None else typed["run_counter"]
    alignment = typed["alignment"]
    if alignment is not None:
        n_notes = len(typed["notes"])
        _want(len(alignment.score_notes) == n_notes, "alignment.score_notes",
              f"a list of {n_notes} notes (one per note)", len(alignment.score_notes))
    out = dict(meta)
    out.setdefault("audio", audio)
    out["_"] = {
        "stft": stft,
        "score": typed["score"],
        "run": run,
        "analysis_compress": analysis_compress,
        "components": typed["components"],
        "sources": typed["sources"],
        "notes": typed["notes"],
        "alignment": alignment,
        "runs": runs,
        "run_counter": counter,
    }
    out["audio"] = {**meta["audio"], **audio}
    return out


def _expected_frames(meta: dict) -> int | None:
    """N that analysing the saved recording with the saved STFT gives (None when the file does not say
    how long the recording is)."""
    a, stft = meta["audio"], meta["_"]["stft"]
    if not a.get("frames") or not a.get("sr"):
        return None
    n_a = math.ceil(int(a["frames"]) * int(stft.sr) / int(a["sr"]))
    return -(-n_a // int(stft.hop)) + 1


def _check_arrays(meta: dict, arrays: Mapping[str, Any]) -> None:
    """Names, dtypes and shapes of the arrays (headers or arrays) against project.json: run before any
    array is read, so a header declaring gigabytes that project.json does not call for costs nothing."""
    typed = meta["_"]
    R = len(typed["components"])
    for name in ("W", "H", "allow_W", "allow_H", "W0", "H0"):
        if name not in arrays:
            raise _Bad(f"{ARRAYS_NPZ}: array {name} is missing")
    loss_points = 0
    for name, a in arrays.items():
        where = f"{ARRAYS_NPZ}: {name}"
        if name in _MASKS:
            if a.dtype != np.bool_:
                raise _Bad(f"{where} must be boolean, got {a.dtype}")
        elif name in _FACTORS:
            if a.dtype.kind != "f":
                raise _Bad(f"{where} must be floating point, got {a.dtype}")
            if a.ndim != 2:
                raise _Bad(f"{where} must be 2-D, got shape {a.shape}")
        elif name.startswith("loss_"):
            if a.ndim != 1 or a.dtype.kind != "f":
                raise _Bad(f"{where} must be a 1-D float array, got {a.dtype} {a.shape}")
            if a.shape[0] > schema.MAX_ITER:
                raise _Bad(f"{where} has {a.shape[0]:,} points; a loss curve has at most {schema.MAX_ITER:,}")
            loss_points += a.shape[0]
        else:
            raise _Bad(f"{ARRAYS_NPZ}: unexpected array {name!r}")
    if loss_points > schema.MAX_LOSS_POINTS:
        raise _Bad(f"{ARRAYS_NPZ}: the loss curves hold {loss_points:,} points; at most {schema.MAX_LOSS_POINTS:,}")
    W, H = arrays["W"], arrays["H"]
    if W.ndim != 2 or H.ndim != 2 or W.shape[1] != R or H.shape[0] != R:
        raise _Bad(f"{ARRAYS_NPZ}: W {W.shape} and H {H.shape} do not fit the {R} components of project.json")
    K, N = W.shape[0], H.shape[1]
    if K > schema.MAX_N_FFT // 2 + 1:
        raise _Bad(f"{ARRAYS_NPZ}: W has {K:,} frequency bins; at most {schema.MAX_N_FFT // 2 + 1:,}")
    for name, shape in (("W0", (K, R)), ("allow_W", (K, R)), ("H0", (R, N)), ("allow_H", (R, N)), ("W_E", (R, K))):
        if name in arrays and arrays[name].shape != shape:
            raise _Bad(f"{ARRAYS_NPZ}: {name} has shape {arrays[name].shape}, expected {shape} (from W and H)")
    shape = meta.get("shape")
    if shape is not None and (shape["K"], shape["N"], shape["R"]) != (K, N, R):
        raise _Bad(
            f"{ARRAYS_NPZ}: the arrays are K={K}, N={N}, R={R} but project.json says "
            f"K={shape['K']}, N={shape['N']}, R={shape['R']}"
        )
    expected_n = _expected_frames(meta)
    if expected_n is not None and expected_n != N:
        stft = typed["stft"]
        raise _Bad(
            f"the arrays do not fit the recording: H has {N:,} frames, but {meta['audio']['frames']:,} samples "
            f"at {meta['audio']['sr']} Hz analysed with n_fft {stft.n_fft}, hop {stft.hop} at {stft.sr} Hz give "
            f"{expected_n:,}"
        )
    n_runs = len(typed["runs"])
    for i in range(n_runs):
        if f"loss_{i}" not in arrays:
            raise _Bad(f"{ARRAYS_NPZ}: the loss curve loss_{i} of run {i} is missing")
    extra = [k for k in arrays if k.startswith("loss_") and not (k[5:].isdigit() and int(k[5:]) < n_runs)]
    if extra:
        raise _Bad(f"{ARRAYS_NPZ}: loss curve {extra[0]} belongs to no run of project.json")


def _check_values(arrays: Mapping[str, np.ndarray]) -> None:
    """The values of the factors, once read: finite and nonnegative."""
    for name in _FACTORS:
        a = arrays.get(name)
        if a is None:
            continue
        where = f"{ARRAYS_NPZ}: {name}"
        if not np.isfinite(a).all():
            raise _Bad(f"{where} contains NaN or infinite values")
        if (a < 0).any():
            raise _Bad(f"{where} contains negative values (factors are nonnegative)")


# ============================================================================================ loading
@dataclass(eq=False)
class LoadedProject:
    """A project read back: the :class:`Project`, its view state, the audio file used, warnings (to show
    once), the project file its edits belong to (``origin``: set for recovery files) and whether the
    recording is another file than the one saved (``audio_changed``: located by the user, or accepted
    despite a different checksum; the project then differs from its file and is marked unsaved)."""

    project: Project
    view: dict
    audio_path: str
    warnings: list[str]
    origin: str | None = None
    audio_changed: bool = False
    schema_version: int = SCHEMA_VERSION


def _audio_candidates(pf: ProjectFile) -> list[str]:
    audio = pf.meta["audio"]
    folder = os.path.dirname(os.path.abspath(pf.path))
    out = []
    if audio.get("path"):
        rel = audio["path"]
        out.append(rel if os.path.isabs(rel) else os.path.normpath(os.path.join(folder, rel)))
    if audio.get("absolute"):
        out.append(audio["absolute"])
    if pf.origin:  # a recovery file: relative to the project the edits belong to
        if audio.get("path") and not os.path.isabs(audio["path"]):
            out.append(os.path.normpath(os.path.join(os.path.dirname(pf.origin), audio["path"])))
    return list(dict.fromkeys(out))


def _mismatch(meta_audio: dict, path: str) -> str | None:
    """Why ``path`` is not the saved recording, or None when it is (or cannot be verified)."""
    size = meta_audio.get("size")
    if size is not None and os.path.getsize(path) != size:
        return f"{os.path.getsize(path)} bytes instead of {size}"
    sha = meta_audio.get("sha256")
    if sha is not None and file_sha256(path) != sha:
        return "its sha256 checksum differs"
    return None


def load_project(
    path: str | os.PathLike[str],
    *,
    audio_path: str | os.PathLike[str] | None = None,
    allow_mismatch: bool = False,
    max_bytes: int | None = None,
) -> LoadedProject:
    """Read a project file, find and check its recording, re-analyse it with the saved STFT parameters
    and rebuild the :class:`Project`.

    ``audio_path``: use this file for the recording (the user located a moved file). Raises
    :class:`InputError` (naming the project file) for every problem; :class:`AudioNotFoundError` and
    :class:`AudioMismatchError` (subclasses) for a missing or different recording."""
    pf = read_project_file(path, max_bytes=max_bytes)
    shown = pf.path
    meta, typed = pf.meta, pf.meta["_"]
    ma = meta["audio"]
    warnings = list(pf.warnings)
    candidates = [os.fspath(audio_path)] if audio_path is not None else _audio_candidates(pf)
    found = [c for c in candidates if os.path.isfile(c)]
    if not found:
        raise AudioNotFoundError(shown, candidates[0] if candidates else "(none)")
    chosen, why = None, None
    try:
        for c in found:  # the first that is the saved recording; else the first found
            why_c = _mismatch(ma, c)
            if why_c is None:
                chosen, why = c, None
                break
            if chosen is None:
                chosen, why = c, why_c
    except OSError as e:
        raise InputError(shown, f"cannot read the recording ({e.strerror or e})") from None
    if why is not None:
        if not allow_mismatch:
            raise AudioMismatchError(shown, chosen, why)
        warnings.append(f"the recording {chosen} differs from the one saved ({why}); loaded anyway")
    if ma.get("sha256") is None:
        warnings.append(f"the project has no checksum of its recording; {chosen} was not verified")
    changed = audio_path is not None or why is not None

    from demixer.io.audio import read_audio

    try:
        audio = read_audio(chosen, start=ma.get("start") or 0, frames=ma.get("frames"))
    except InputError as e:
        raise InputError(shown, f"its recording {e.path}: {e.reason}") from None
    frames = ma.get("frames")
    if frames is not None and audio.n_samples != frames:
        raise InputError(shown, f"its recording {chosen} has {audio.n_samples} samples where the project used {frames}")
    from demixer.core.analysis import analyse  # scipy: only when a project is loaded
    from demixer.io.limits import estimate_memory, format_bytes, machine_memory

    stft, run = typed["stft"], typed["run"]
    need, have = estimate_memory(audio.n_samples, audio.sr, audio.channels, stft), machine_memory()
    if need > have:  # e.g. a hop of 1: refused before V is computed, not by a MemoryError
        raise InputError(
            shown,
            f"analysing its recording with n_fft {stft.n_fft}, hop {stft.hop} at {stft.sr} Hz needs about "
            f"{format_bytes(need)} of memory, more than the {format_bytes(have)} available",
        )
    try:
        analysis = analyse(audio, stft, typed["analysis_compress"])
    except ValueError as e:
        raise InputError(shown, f"cannot analyse its recording {chosen} ({_one_line(e)})") from None
    arrays = pf.arrays
    K, N = analysis.V.shape
    W, H = arrays["W"], arrays["H"]
    if W.shape[0] != K or H.shape[1] != N:
        raise InputError(
            shown,
            f"the arrays do not fit the recording: W is {W.shape[0]} bins × H {H.shape[1]} frames, but "
            f"{os.path.basename(chosen)} analysed with n_fft {stft.n_fft}, hop {stft.hop} at {stft.sr} Hz "
            f"gives {K} bins × {N} frames",
        )
    score_path = None
    ref = meta.get("score_path")
    if ref:
        folder = os.path.dirname(os.path.abspath(shown))
        options = [ref.get("absolute")]
        if ref.get("path"):
            options.insert(0, os.path.normpath(os.path.join(folder, ref["path"])))
        options = [o for o in options if o]
        score_path = next((o for o in options if os.path.isfile(o)), options[-1] if options else None)
    try:
        project = Project(
            audio,
            analysis,
            components=typed["components"],
            sources=typed["sources"],
            W=W,
            H=H,
            allow_W=arrays["allow_W"],
            allow_H=arrays["allow_H"],
            W0=arrays["W0"],
            H0=arrays["H0"],
            notes=typed["notes"],
            stft=stft,
            score=typed["score"],
            run=run,
            score_path=score_path,
        )
    except ValueError as e:
        raise InputError(shown, _one_line(e)) from None
    project.W_E = arrays.get("W_E")
    if typed.get("alignment") is not None:  # the warp itself is recomputed when the window opens it
        al = typed["alignment"]
        project.score_alignment = al.with_(score_notes=tuple(al.score_notes), anchors=tuple(al.anchors))
    project.runs = [
        RunRecord(**r, losses=[float(x) for x in arrays[f"loss_{i}"]]) for i, r in enumerate(typed["runs"])
    ]
    project.run_counter = max(typed["run_counter"], len(project.runs))
    return LoadedProject(
        project=project,
        view=pf.view,
        audio_path=chosen,
        warnings=warnings,
        origin=pf.origin,
        audio_changed=changed,
        schema_version=pf.schema_version,
    )


# ============================================================================================ helpers
def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__
