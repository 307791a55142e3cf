"""The schema of a project's ``project.json`` (DESIGN.md §5), described once.

Every object of the file is a :class:`Table` of :class:`Field`\\ s (name, kind, limits, whether it may be
null or missing); a table that mirrors a dataclass (``STFTParams``, ``ScoreParams``, ``RunParams``,
``Component``, ``Source``, ``Note``, ``RunRecord``) takes its defaults from that class. The same
tables are used to

* write (:meth:`Table.dump`: an object → its JSON dict),
* validate and load (:meth:`Table.check`: a JSON dict → checked Python values, defaults filled in;
  :meth:`Table.build`: → the dataclass), and
* migrate (:meth:`Table.defaults`: what an older schema's file lacks).

The limits are the loader's caps: lengths of names and lists, counts, and values that the window's
widgets can show (iterations, seed, FFT size, sample rate), so that the loader refuses, with the
reason, what the window could not handle. Unknown keys (written by a newer version) are ignored.

A problem is raised as :class:`SchemaError` (``"project.json: <where> must be <what>, got <value>"``);
``io.project_file`` turns it into an :class:`~demixer.io.errors.InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from demixer.core.constraints import ScoreParams, default_onset_policy
from demixer.core.notes import Note
from demixer.io.score import MAX_GROUPS, MAX_SCORE_NOTES
from demixer.model.project import MAX_ITER, MODEL_NAMES, Component, RunParams, RunRecord, Source

__all__ = [
    "LIMITS",
    "MAX_COMPONENTS",
    "MAX_LOSS_POINTS",
    "MAX_NAME_CHARS",
    "MAX_RUNS",
    "PROJECT",
    "Field",
    "SchemaError",
    "Table",
]

#: Caps of what a project may hold (the window lists, plots and edits all of it).
MAX_NAME_CHARS = 200  # component, source, group and run names
MAX_PATH_CHARS = 4096
MAX_COMPONENTS = 4096
MAX_RUNS = 1000
MAX_LOSS_POINTS = 2_000_000  # over all runs' loss curves
MAX_SEED = 2**31 - 1  # the seed spin box (a 32-bit int)
MAX_N_FFT = 32768  # the FFT size spin box
MAX_ANALYSIS_SR = 192_000  # the sample-rate spin box
LIMITS = {
    "name characters": MAX_NAME_CHARS,
    "components": MAX_COMPONENTS,
    "sources": MAX_GROUPS + 1,
    "notes": MAX_SCORE_NOTES,
    "runs": MAX_RUNS,
    "loss points": MAX_LOSS_POINTS,
    "iterations": MAX_ITER,
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = object()


class SchemaError(Exception):
    """A value of ``project.json`` that the schema does not allow (the message says where and why)."""


# ============================================================================================ checks
def _type_name(v: Any) -> str:
    return {
        type(None): "null",
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
    }.get(type(v), type(v).__name__)


def want(cond: bool, where: str, what: str, value: Any) -> None:
    """Raise :class:`SchemaError` "<where> must be <what>, got <value>" unless ``cond``."""
    if not cond:
        if isinstance(value, str) and len(value) > 40:
            shown = f"text of {len(value):,} characters"
        elif isinstance(value, (int, float, str, bool)) or value is None:
            shown = repr(value)
            if len(shown) > 40:
                shown = f"{shown[:20]}… ({len(shown)} digits)" if isinstance(value, int) else shown[:40] + "…"
        else:
            shown = _type_name(value)
        raise SchemaError(f"project.json: {where} must be {what}, got {shown}")


def _int(v: Any, where: str, f: Field) -> int | None:
    ok = isinstance(v, int) and not isinstance(v, bool)
    ok = ok and (f.lo is None or v >= f.lo) and (f.hi is None or v <= f.hi)
    if f.lo is not None and f.hi is not None:
        rng = f" {int(f.lo)}..{int(f.hi)}"
    else:
        rng = f" >= {int(f.lo)}" if f.lo is not None else ""
    want(ok, where, f"a whole number{rng}" + (" or null" if f.null else ""), v)
    return v


def _num(v: Any, where: str, f: Field) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if ok and f.finite:
        ok = math.isfinite(v)
    ok = ok and (f.lo is None or v >= f.lo) and (f.hi is None or v <= f.hi)
    what = "a finite number" if f.finite else "a number"
    what += (f" >= {f.lo}" if f.lo is not None else "") + (f" <= {f.hi}" if f.hi is not None else "")
    want(ok, where, what + (" or null" if f.null else ""), v)
    return float(v)


def _str(v: Any, where: str, f: Field) -> str:
    want(isinstance(v, str), where, "text" + (" or null" if f.null else ""), v)
    want(len(v) <= f.max_len, where, f"text of at most {f.max_len} characters", v)
    return v


def _bool(v: Any, where: str, f: Field) -> bool:
    want(isinstance(v, bool), where, "true or false", v)
    return v


def _sha256(v: Any, where: str, f: Field) -> str:
    want(isinstance(v, str) and bool(_SHA256.match(v)), where, "64 hex digits or null", v)
    return v


def _model(v: Any, where: str, f: Field) -> str:
    want(v in MODEL_NAMES, where, f"one of {', '.join(MODEL_NAMES)}", v)
    return v


def _bool_or_str(v: Any, where: str, f: Field) -> bool | str:
    want(isinstance(v, bool) or (isinstance(v, str) and len(v) <= 32), where, "true/false or a name", v)
    return v


def _window(v: Any, where: str, f: Field) -> str | tuple:
    want(isinstance(v, str) or (isinstance(v, list) and 0 < len(v) <= 4), where, "a window name", v)
    if isinstance(v, list):
        for i, x in enumerate(v):
            ok = isinstance(x, (str, int, float)) and not isinstance(x, bool)
            want(ok, f"{where}[{i}]", "text or a number", x)
        return tuple(v)
    want(len(v) <= 32, where, "a window name", v)
    return v


def _onset_policy(v: Any, where: str, f: Field) -> Any:
    if v == "default":
        return default_onset_policy
    if isinstance(v, dict):
        want(len(v) <= MAX_GROUPS + 1, where, f"an object of at most {MAX_GROUPS + 1} groups", len(v))
        for k, x in v.items():
            want(len(k) <= MAX_NAME_CHARS, f"{where} key", f"text of at most {MAX_NAME_CHARS} characters", k)
            want(isinstance(x, bool), f"{where}.{k}", "true or false", x)
        return dict(v)
    want(isinstance(v, bool), where, '"default", true/false or an object', v)
    return v


def _anchors(v: Any, where: str, f: Field) -> tuple:
    """User anchors of a synchronised score: ``[[score_s, audio_s], …]``, finite, ≥ 0, increasing in
    both times (the warp passes through each), at most ``f.hi`` of them."""
    want(isinstance(v, list), where, "a list of [score seconds, audio seconds]", v)
    if f.hi is not None:
        want(len(v) <= f.hi, where, f"a list of at most {int(f.hi):,} anchors", f"{len(v):,} anchors")
    out = []
    for i, a in enumerate(v):
        ok = isinstance(a, list) and len(a) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in a
        )
        want(ok, f"{where}[{i}]", "[score seconds, audio seconds]", a)
        out.append((float(a[0]), float(a[1])))
    out.sort()
    want(all(b[0] > a[0] and b[1] > a[1] for a, b in zip(out, out[1:], strict=False)), where,
         "anchors increasing in both times", f"{len(out)} anchors")
    return tuple(out)


def _dump_onset_policy(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, Mapping):
        return {str(k): bool(x) for k, x in v.items()}
    return "default"  # default_onset_policy (a callable cannot be stored)


_CHECKS: dict[str, Callable[[Any, str, Field], Any]] = {
    "int": _int,
    "num": _num,
    "str": _str,
    "bool": _bool,
    "sha256": _sha256,
    "model": _model,
    "bool_or_str": _bool_or_str,
    "window": _window,
    "onset_policy": _onset_policy,
    "anchors": _anchors,
}


# ============================================================================================ tables
@dataclass(frozen=True)
class Field:
    """One key of a JSON object: its ``kind`` (``int``, ``num``, ``str``, ``bool``, ``sha256``, ``model``,
    ``bool_or_str``, ``window``, ``onset_policy``; ``obj`` / ``list`` of a sub-``table``), limits
    ``lo``/``hi`` (for a list: at most ``hi`` items), whether it may be ``null`` and whether it is
    ``required``; ``default`` when missing (for a dataclass table: the class' own default)."""

    name: str
    kind: str
    lo: float | None = None
    hi: float | None = None
    null: bool = False
    required: bool = False
    default: Any = _REQUIRED
    finite: bool = True
    max_len: int = MAX_NAME_CHARS
    table: Table | None = None


@dataclass(frozen=True)
class Table:
    """A JSON object of the file: its fields, in the order they are written; ``cls`` the dataclass it
    holds (None: a plain dict)."""

    fields: tuple[Field, ...]
    cls: type | str | None = None  # a "module:Name" string is imported when first needed

    @property
    def dataclass(self) -> type | None:
        if isinstance(self.cls, str):
            import importlib

            module, name = self.cls.split(":")
            return getattr(importlib.import_module(module), name)
        return self.cls

    def default(self, f: Field) -> Any:
        if f.default is not _REQUIRED:
            return f.default
        cls = self.dataclass
        if cls is not None:
            for df in dataclasses.fields(cls):
                if df.name == f.name:
                    if df.default is not dataclasses.MISSING:
                        return df.default
                    if df.default_factory is not dataclasses.MISSING:
                        return df.default_factory()
        return None

    def defaults(self) -> dict:
        """Every non-required field with its default (what a migration fills in)."""
        return {f.name: self.default(f) for f in self.fields if not f.required}

    def check(self, d: Any, where: str) -> dict:
        """The checked values of the JSON object ``d`` (missing fields: their defaults; unknown keys
        ignored). Sub-tables give lists of checked dicts (or built objects when they have a class)."""
        want(isinstance(d, dict), where or "project.json", "an object", d)
        out = {}
        for f in self.fields:
            at = f"{where}.{f.name}" if where else f.name
            if f.name not in d:
                want(not f.required, at, "present", None)
                dflt = self.default(f)
                out[f.name] = f.table.load(dflt, at) if f.kind == "obj" and isinstance(dflt, dict) else dflt
                continue
            v = d[f.name]
            if v is None and f.null:
                out[f.name] = None
            elif f.kind == "obj":
                assert f.table is not None
                out[f.name] = f.table.load(v, at)
            elif f.kind == "list":
                assert f.table is not None
                want(isinstance(v, list), at, "a list", v)
                if f.hi is not None:
                    want(len(v) <= f.hi, at, f"a list of at most {int(f.hi):,} items", f"{len(v):,} items")
                out[f.name] = [f.table.load(x, f"{at}[{i}]") for i, x in enumerate(v)]
            else:
                out[f.name] = _CHECKS[f.kind](v, at, f)
        return out

    def load(self, d: Any, where: str) -> Any:
        """:meth:`check`, then the dataclass built from it (when the table has one)."""
        values = self.check(d, where)
        if self.cls is None or self.cls is RunRecord:  # run records get their losses from the arrays
            return values
        return build(self.dataclass, values, where)

    def dump(self, obj: Any) -> dict:
        """The JSON dict of ``obj`` (a dataclass, an object with these attributes, or a dict)."""
        out = {}
        for f in self.fields:
            v = obj.get(f.name) if isinstance(obj, Mapping) else getattr(obj, f.name, self.default(f))
            out[f.name] = _dump_value(v, f)
        return out


def _dump_value(v: Any, f: Field) -> Any:
    if f.kind == "onset_policy":
        return _dump_onset_policy(v)
    if v is None:
        return None
    if f.kind == "obj":
        return f.table.dump(v) if f.table is not None else v
    if f.kind == "list":
        return [f.table.dump(x) for x in v] if f.table is not None else list(v)
    if f.kind == "anchors":
        return [[float(a), float(b)] for a, b in v]
    if isinstance(v, np.generic):
        v = v.item()
    if f.kind == "int":
        return int(v)
    if f.kind == "num":
        return float(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """``cls(**values)``; the class' own refusal (ValueError/TypeError) as a :class:`SchemaError`."""
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise SchemaError(f"project.json: {where}: {' '.join(str(e).split())}") from None


def _name(name: str, **kw: Any) -> Field:
    return Field(name, "str", **kw)


# The tables: one per object of project.json, in the order written.
STFT = Table(
    (
        Field("n_fft", "int", lo=16, hi=MAX_N_FFT, required=True),
        Field("hop", "int", lo=1, required=True),  # ≤ n_fft / 2: checked by STFTParams
        Field("window", "window"),
        Field("sr", "int", lo=1000, hi=MAX_ANALYSIS_SR, required=True),
    ),
    cls="demixer.core.stft:STFTParams",  # imported when a project is read (core.stft imports scipy)
)
SCORE = Table(
    (
        Field("tol_pitch", "num", lo=0.0, hi=1.0),
        Field("n_harmonics", "int", lo=1, hi=1000, null=True),
        Field("tol_note_pre", "num", lo=0.0, hi=60.0),
        Field("tol_note_post", "num", lo=0.0, hi=60.0),
        Field("onset_templates", "onset_policy"),
        Field("tol_onset_pre", "num", lo=0.0, hi=60.0),
        Field("tol_onset_post", "num", lo=0.0, hi=60.0),
        Field("per_group", "bool"),
        Field("split_pitch", "int", lo=0, hi=128, null=True),
    ),
    cls=ScoreParams,
)
RUN = Table(
    (
        Field("model", "model"),
        Field("n_iter", "int", lo=1, hi=MAX_ITER),
        Field("seed", "int", lo=0, hi=MAX_SEED),
        Field("normalize", "bool_or_str"),
        Field("alpha", "num", lo=0.0, hi=100.0),
        Field("compress", "num", lo=0.0, null=True),
    ),
    cls=RunParams,
)
AUDIO = Table(
    (
        _name("path", null=True, default=None, max_len=MAX_PATH_CHARS),
        _name("absolute", null=True, default=None, max_len=MAX_PATH_CHARS),
        Field("sha256", "sha256", null=True, default=None),
        Field("size", "int", lo=0, null=True, default=None),
        Field("sr", "int", lo=1, null=True, default=None),
        Field("channels", "int", lo=1, hi=1024, null=True, default=None),
        Field("start", "int", lo=0, null=True, default=None),
        Field("frames", "int", lo=1, null=True, default=None),
    )
)
SCORE_REF = Table(
    (
        _name("path", null=True, default=None, max_len=MAX_PATH_CHARS),
        _name("absolute", null=True, default=None, max_len=MAX_PATH_CHARS),
    )
)
ANALYSIS = Table((Field("compress", "num", lo=0.0, null=True, default=None),))
SHAPE = Table(tuple(Field(k, "int", lo=1, required=True) for k in ("K", "N", "R")))
COMPONENT = Table(
    (
        _name("name", required=True),
        Field("pitch", "int", lo=0, hi=127, null=True),
        _name("kind", max_len=16),
        _name("source"),
        Field("locked", "bool"),
        _name("colour", max_len=32),
    ),
    cls=Component,
)
SOURCE = Table((_name("name", required=True), _name("colour", max_len=32)), cls=Source)
NOTE = Table(
    (
        Field("onset", "num", lo=0.0, required=True),
        Field("offset", "num", lo=0.0, required=True),
        Field("pitch", "int", lo=0, hi=127, required=True),
        _name("group"),
        Field("velocity", "int", lo=0, hi=127, null=True),
        Field("program", "int", lo=0, hi=127, null=True),
    ),
    cls=Note,
)
RUN_RECORD = Table(
    (
        _name("label", required=True),
        _name("model", required=True, max_len=32),
        Field("n_iter", "int", lo=0, hi=MAX_ITER, required=True),
        _name("stopped", max_len=32),
        Field("initial_loss", "num", null=True, finite=False),
        Field("elapsed", "num", lo=0.0, required=True),
    ),
    cls=RunRecord,  # checked into dicts: the loss curve comes from the arrays
)
#: A score synchronised to the recording (DESIGN.md §2.5b): its notes in score time, one per
#: ``notes`` entry, and the user's anchors; the warp is recomputed from them when the project opens.
ALIGNMENT = Table(
    (
        Field("score_notes", "list", table=NOTE, hi=MAX_SCORE_NOTES, required=True),
        Field("anchors", "anchors", hi=10_000, default=()),
    ),
    cls="demixer.model.score_edits:ScoreAlignment",
)
PROJECT = Table(
    (
        Field("schema_version", "int", lo=0, required=True),
        _name("app", default="", max_len=200),
        _name("saved_at", default="", max_len=64),
        Field("audio", "obj", table=AUDIO, required=True),
        Field("score_path", "obj", table=SCORE_REF, null=True, default=None),
        Field("stft", "obj", table=STFT, required=True),
        Field("analysis", "obj", table=ANALYSIS, null=True, default=None),
        Field("score", "obj", table=SCORE, default={}),
        Field("run", "obj", table=RUN, default={}),
        Field("shape", "obj", table=SHAPE, null=True, default=None),
        Field("components", "list", table=COMPONENT, hi=MAX_COMPONENTS, default=[]),
        Field("sources", "list", table=SOURCE, hi=MAX_GROUPS + 1, default=[]),
        Field("notes", "list", table=NOTE, hi=MAX_SCORE_NOTES, default=[]),
        Field("runs", "list", table=RUN_RECORD, hi=MAX_RUNS, default=[]),
        Field("run_counter", "int", lo=0, hi=10**9, default=None),
        Field("alignment", "obj", table=ALIGNMENT, null=True, default=None),
        _name("origin", null=True, default=None, max_len=MAX_PATH_CHARS),
    )
)
#: The tables that mirror a dataclass field for field (checked by the tests).
DATACLASS_TABLES = {"score": SCORE, "run": RUN, "components": COMPONENT, "sources": SOURCE, "notes": NOTE}
