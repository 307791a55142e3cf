"""``demixer separate --report FILE``: a JSON record of one run of ``separate``.

What it holds: the command's arguments and the settings the fit actually used, the input files
(absolute path, size, modification time, sha256), the audio's rate/channels/length, wall and CPU time
per stage (read, score, analyse, initialise, fit, stems, write, and the rest), the loss curve's ends,
the fit's decisions (onset templates per group, count of aligned notes), every warning and error line
the command printed, the groups and the files written for them, the exit status and the version.
``demixer batch`` runs ``separate`` with this option for each piece and keeps the report beside the
stems; it is also useful alone, to keep with results.

How: :func:`run_with_report` wraps the ``separate`` function of :mod:`demixer.cli.main`, so that
``separate`` itself stays as it is. For the duration of the call it copies every line written to
stderr, and it times the pipeline's steps by wrapping the functions ``separate`` calls
(``demixer.io.audio.read_audio`` …, ``demixer.engine.separation.fit`` …) in their modules, restoring
them afterwards. ``separate`` imports those functions when it runs, so it calls the wrappers; a step
``separate`` does not reach through these functions is counted in ``other``. This patching is only
done when ``--report`` is given, by the one-shot CLI, one call at a time (``demixer batch`` runs one
``separate`` at a time per process).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPORT_FORMAT = 1

#: (module, function, stage name): the steps of ``separate`` that are timed.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("demixer.io.audio", "read_audio", "read"),
    ("demixer.io.score", "read_score", "score"),
    ("demixer.engine.separation", "analyse", "analyse"),
    ("demixer.engine.separation", "initialise", "initialise"),
    ("demixer.engine.fit", "Fit.run", "fit"),  # the one fit entry point `separate` runs
    ("demixer.cli.main", "_write_stems", "stems"),  # masks, inverse STFT and writing, block by block
)


def file_identity(path: str | os.PathLike[str] | None, digest: bool = True) -> dict[str, Any] | None:
    """Absolute path, size, mtime (ns) and sha256 of a file; ``None`` for no path."""
    if path is None:
        return None
    p = Path(path)
    out: dict[str, Any] = {"path": str(p.resolve())}
    try:
        st = p.stat()
    except OSError as exc:
        out["error"] = exc.strerror or str(exc)
        return out
    out.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
    if digest and p.is_file():
        h = hashlib.sha256()
        try:
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            out["error"] = exc.strerror or str(exc)
            return out
        out["sha256"] = h.hexdigest()
    return out


def jsonable(value: Any) -> Any:
    """``value`` as JSON types: dataclasses as dicts, functions by name, numpy scalars as numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return jsonable(value.item())
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return repr(value)


class _Tee:
    """Stands in for sys.stderr: writes through and keeps a copy."""

    def __init__(self, inner):
        self.inner = inner
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.inner.write(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.inner, "isatty", lambda: False)())

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def lines(self) -> list[str]:
        out = []
        for line in "".join(self.parts).split("\n"):
            line = line.rsplit("\r", 1)[-1].rstrip()  # a progress bar redraws with \r: keep its last state
            if line:
                out.append(line)
        return out


class _Recorder:
    def __init__(self):
        self.timings: dict[str, dict[str, float]] = {}
        self.calls: dict[str, list] = {}
        self._saved: list[tuple[Any, str, Callable]] = []

    def _wrap(self, stage: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                result = fn(*args, **kwargs)
            finally:
                t = self.timings.setdefault(stage, {"wall_s": 0.0, "cpu_s": 0.0, "calls": 0})
                t["wall_s"] += time.perf_counter() - w0
                t["cpu_s"] += time.process_time() - c0
                t["calls"] += 1
            self.calls.setdefault(stage, []).append((args, kwargs, result))
            return result

        wrapper.__wrapped__ = fn
        return wrapper

    def install(self) -> None:
        import importlib

        for module_name, attr, stage in STAGES:
            owner = importlib.import_module(module_name)
            *path, attr = attr.split(".")  # "Class.method" wraps a method on its class
            for part in path:
                owner = getattr(owner, part)
            fn = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
            if fn is None:
                continue
            self._saved.append((owner, attr, fn))
            setattr(owner, attr, self._wrap(stage, fn))

    def remove(self) -> None:
        for module, attr, fn in reversed(self._saved):
            setattr(module, attr, fn)
        self._saved.clear()


def _prefixed(lines: list[str], prefix: str) -> list[str]:
    return [line[len(prefix):] for line in lines if line.startswith(prefix)]


def _summary(rec: _Recorder, args) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reads = rec.calls.get("read", [])
    if reads:
        audio = reads[0][2]
        out["audio"] = {
            "sr": int(audio.sr), "channels": int(audio.samples.shape[0]) if audio.samples.ndim > 1 else 1,
            "duration_s": float(audio.duration),
        }
    scores = rec.calls.get("score", [])
    if scores:
        out["notes"] = len(scores[0][2])
    fits = rec.calls.get("fit", [])
    if fits:
        args_, kwargs, final = fits[-1]
        settings = getattr(args_[0], "settings", None) if args_ else None  # Fit.run(self, ...)
        out["settings"] = jsonable(settings)
        losses = [float(v) for v in (final.losses or [])]
        out["loss"] = {
            "initial": losses[0] if losses else None, "final": losses[-1] if losses else None,
            "iterations": int(final.iteration), "n_iter": int(final.n_iter), "stopped": final.stopped,
        }
        extra = {}
        for k, v in (final.extra or {}).items():
            if k == "notes":
                extra["aligned_notes"] = len(v)
            elif k == "decay":
                extra["decay"] = {g: jsonable(d) for g, d in v.items()}
            else:
                extra[k] = jsonable(v)
        out["fit"] = extra
    from demixer.io.export import read_stem_index

    index = read_stem_index(args.out) if rec.calls.get("stems") and getattr(args, "out", None) else None
    if index:
        out["groups"] = {s["group"]: s["file"] for s in index.get("stems", [])}
        out["files"] = [s["file"] for s in index.get("stems", [])]
    else:
        out["files"] = []
    return out


def run_with_report(args, separate: Callable[[Any], int]) -> int:
    """``separate(args)``; when ``args.report`` names a file, also write the JSON report there (even
    when ``separate`` fails: then ``status`` is its exit status and ``error`` its error line)."""
    path = getattr(args, "report", None)
    if not path:
        return separate(args)
    import demixer

    started = time.time()
    w0, c0 = time.perf_counter(), time.process_time()
    rec = _Recorder()
    tee = _Tee(sys.stderr)
    sys.stderr = tee
    rec.install()
    status: int | None = None
    try:
        status = separate(args)
    finally:
        rec.remove()
        sys.stderr = tee.inner
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        lines = tee.lines()
        timings = dict(rec.timings)
        timings["other"] = {
            "wall_s": max(0.0, wall - sum(t["wall_s"] for t in rec.timings.values())),
            "cpu_s": max(0.0, cpu - sum(t["cpu_s"] for t in rec.timings.values())),
        }
        timings["total"] = {"wall_s": wall, "cpu_s": cpu}
        errors = _prefixed(lines, "demixer: error: ")
        report = {
            "report_format": REPORT_FORMAT,
            "command": "separate",
            "version": demixer.__version__,
            "python": platform.python_version(),
            "host": platform.node(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "status": status,
            "ok": status == 0,
            "error": errors[-1] if errors else (None if status == 0 else "interrupted"),
            "arguments": jsonable({k: v for k, v in vars(args).items() if k != "report"}),
            "inputs": {
                "audio": file_identity(getattr(args, "mix", None)),
                "score": file_identity(getattr(args, "score", None)),
            },
            "out": str(Path(args.out).resolve()) if getattr(args, "out", None) else None,
            **_summary(rec, args),
            "timings": timings,
            "warnings": _prefixed(lines, "demixer: warning: "),
            "stderr": lines,
        }
    try:
        write_json(path, report)
    except OSError as exc:
        print(f"demixer: error: {path}: cannot write the report ({exc.strerror or exc})", file=sys.stderr)
        return 2
    return status


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON to a temporary file beside ``path`` and rename it over ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
