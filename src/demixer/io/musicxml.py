"""Reading MusicXML scores (.musicxml, .xml, .mxl) into note lists, with music21 (DESIGN.md §5).

Why music21 (measured on this machine, DESIGN.md §6): importing partitura 1.9 costs 2.4 s of CPU (it
imports ``scipy.signal`` and compiles a grammar at import), music21 10.5 0.5 s; Demixer's whole
``demixer align`` budget is 1 s. music21 is imported only when a MusicXML file is read, and is the
optional extra ``demixer[musicxml]`` (it brings ~220 MB); without it a MusicXML file is refused with
that advice.

* one group per part, named by the part's name (made unique: "Violin", "Violin 2");
* a part on two staves (a keyboard) gives two groups, ``rh`` (upper staff) and ``lh`` (lower staff)
  (prefixed by the part's name when the score has several such parts);
* repeats unfolded (repeat bars, voltas, da capo / dal segno as music21 expands them), ties merged;
* grace notes get 1/8 of a quarter note each, just before their main note;
* times in seconds from the file's metronome marks (120 quarter notes per minute before the first one,
  or throughout when the file has none).
"""

from __future__ import annotations

import bisect
import contextlib
import importlib.abc
import importlib.util
import os
import sys
import warnings
from pathlib import Path

from demixer.core.notes import Note
from demixer.io.errors import InputError

__all__ = ["MUSICXML_SUFFIXES", "import_music21", "read_musicxml"]

MUSICXML_SUFFIXES: tuple[str, ...] = (".musicxml", ".xml", ".mxl")
DEFAULT_QPM = 120.0
GRACE_QL = 0.125  # quarter lengths per grace note


#: modules that ``import music21`` executes but reading a file never uses: music21's own unit tests (its
#: ``__init__`` imports ``music21.test``, whose ``__init__`` imports every ``test_*`` module) and
#: ``requests`` (imported by ``music21.converter`` for parsing URLs). Loaded lazily (stdlib
#: ``importlib.util.LazyLoader``: the module object exists, its code runs at the first attribute access),
#: so they cost nothing unless something uses them: 0.1–0.15 s CPU of music21's 0.35–0.5 s import
#: (DESIGN.md §6, ``benchmarks/bench_align.py``).
_LAZY_EXACT = ("requests",)
_LAZY_PREFIX = "music21.test.test_"


class _LazyFinder(importlib.abc.MetaPathFinder):
    """Finds the modules above with the next finder and defers running them."""

    def find_spec(self, name, path, target=None):
        if name not in _LAZY_EXACT and not name.startswith(_LAZY_PREFIX):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None


@contextlib.contextmanager
def _unused_parts_deferred():
    finder = _LazyFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_music21():
    """music21, imported once (raises ImportError without the ``musicxml`` extra)."""
    if "music21" not in sys.modules:
        with _unused_parts_deferred():
            import music21  # noqa: F401
    import music21  # waits for an import another thread has under way

    return music21


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:200] or type(e).__name__


class _Tempo:
    """Quarter-note offsets → seconds from (offset, quarter BPM) marks."""

    def __init__(self, marks: list[tuple[float, float]]) -> None:
        marks = sorted(m for m in marks if m[1] > 0)
        self.q = [0.0]
        self.s = [0.0]
        self.bpm = [DEFAULT_QPM]
        for q, bpm in marks:
            if q <= self.q[-1]:
                self.bpm[-1] = bpm
                continue
            self.s.append(self.seconds(q))
            self.q.append(q)
            self.bpm.append(bpm)

    def seconds(self, q: float) -> float:
        i = max(0, bisect.bisect_right(self.q, q) - 1)
        return self.s[i] + (q - self.q[i]) * 60.0 / self.bpm[i]


def read_musicxml(path: str | os.PathLike[str]) -> list[Note]:
    """Notes of a MusicXML file (see the module docstring), in file order of parts."""
    p = Path(path)
    if not p.exists():
        raise InputError(path, "file not found")
    if p.is_dir():
        raise InputError(path, "is a folder, not a score file")
    try:
        music21 = import_music21()
    except ImportError:  # pragma: no cover - a dependency
        raise InputError(path, "reading MusicXML needs music21: pip install 'demixer[musicxml]'") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = music21.converter.parse(os.fspath(p), format="musicxml", forceSource=True)
    except Exception as e:  # music21 raises many kinds (ParseError, MusicXMLImportException, zip errors, …)
        raise InputError(path, f"not a valid MusicXML file ({_one_line(e)})") from None
    parts = list(getattr(score, "parts", []))
    if not parts:
        raise InputError(path, "no parts in MusicXML file")
    try:
        # expandRepeats deep-copies the whole score: only when there is something to unfold (a repeat
        # barline, a volta bracket, D.C./D.S./segno/coda/fine are all music21 RepeatMarks)
        if score.recurse().getElementsByClass("RepeatMark").first() is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score = score.expandRepeats()
            parts = list(score.parts)
    except Exception:  # inconsistent repeat marks: read the measures as written
        pass
    tempo = _Tempo(_metronome_marks(score, music21))
    names = _group_names(parts, music21)
    notes: list[Note] = []
    for part, group in zip(parts, names, strict=True):
        notes.extend(_part_notes(part, group, tempo, music21))
    return notes


def _metronome_marks(score, music21) -> list[tuple[float, float]]:
    out = []
    for mm in score.flatten().getElementsByClass(music21.tempo.MetronomeMark):
        try:
            bpm = mm.getQuarterBPM()
        except Exception:
            bpm = None
        if bpm:
            out.append((float(mm.getOffsetInHierarchy(score)) if mm.activeSite is not None else float(mm.offset),
                        float(bpm)))
    return out


def _base_id(part) -> str:
    pid = str(getattr(part, "id", "") or "")
    return pid.split("-Staff")[0] if "-Staff" in pid else pid


def _group_names(parts, music21) -> list[str]:
    """rh/lh for the staves of a two-staff part; otherwise the part's name, made unique."""
    staffs: dict[str, list[int]] = {}
    for i, part in enumerate(parts):
        if isinstance(part, music21.stream.PartStaff):
            staffs.setdefault(_base_id(part), []).append(i)
    multi = {k: v for k, v in staffs.items() if len(v) > 1}
    names: list[str] = []
    used: dict[str, int] = {}
    for i, part in enumerate(parts):
        base = (part.partName or "").strip() or (part.partAbbreviation or "").strip() or f"part {i + 1}"
        group = multi.get(_base_id(part)) if isinstance(part, music21.stream.PartStaff) else None
        if group is not None:
            k = group.index(i)
            if len(group) == 2:
                name = ("rh", "lh")[k]
                if len(multi) > 1:
                    name = f"{base} {name}"
            else:
                name = f"{base} staff {k + 1}"
        else:
            name = base
        used[name] = used.get(name, 0) + 1
        names.append(name if used[name] == 1 else f"{name} {used[name]}")
    return names


def _part_notes(part, group: str, tempo: _Tempo, music21) -> list[Note]:
    program = None
    try:
        inst = part.getInstrument(returnDefault=False)
        if inst is not None and inst.midiProgram is not None:
            program = int(inst.midiProgram)
    except Exception:
        program = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        part.stripTies(inPlace=True)  # the parsed score is this reader's own: no copy of every part
        flat = part.flatten()
    out: list[Note] = []
    pending: list = []  # grace notes waiting for their main note
    for el in flat.notes:
        pitches = [int(p.midi) for p in getattr(el, "pitches", ()) if p is not None]
        if not pitches:  # unpitched (percussion)
            continue
        q = float(el.offset)
        if el.duration.isGrace or float(el.quarterLength) == 0.0:
            pending.append(el)
            continue
        if pending:
            m = len(pending)
            for j, g in enumerate(pending):
                g_on = max(0.0, q - (m - j) * GRACE_QL)
                g_off = max(g_on, q - (m - j - 1) * GRACE_QL)
                out.extend(_notes(g, g_on, g_off, group, program, tempo))
            pending = []
        out.extend(_notes(el, q, q + float(el.quarterLength), group, program, tempo))
    for g in pending:  # grace notes at the very end: give them their own time
        q = float(g.offset)
        out.extend(_notes(g, q, q + GRACE_QL, group, program, tempo))
    return out


def _notes(el, q_on: float, q_off: float, group: str, program, tempo: _Tempo) -> list[Note]:
    on = tempo.seconds(q_on)
    off = max(on, tempo.seconds(q_off))
    vel = None
    try:
        v = el.volume.velocity if el.volume is not None else None
        vel = None if v is None else int(max(0, min(127, round(v))))
    except Exception:
        vel = None
    return [Note(onset=on, offset=off, pitch=int(p.midi), group=group, velocity=vel, program=program)
            for p in el.pitches if 0 <= int(p.midi) <= 127]
