"""Who plays which note: voices and hands for a note list without groups (DESIGN.md §2.7).

Both assignments walk the notes event by event (an *event* is the notes whose onsets lie within
``chord_tol`` of the event's first onset) and keep the ``beam`` cheapest partial assignments (a beam
search over the Viterbi trellis whose state is each part's recent pitches and held notes). The new
notes of an event, sorted from the top, are given to the parts (ordered from the top) by a monotone
map — the higher note never goes to the lower part — so within an event nothing crosses; the costs
decide everything else:

* **voices** (N parts, one note at a time each): the leap from the voice's previous pitch (voice
  leading), a voice that still holds a note taking another one, two new notes to one voice, and a new
  note crossing a held or previous note of another voice. With all N voices free and N notes this is
  the pitch rank; with fewer notes, continuity decides which voices sing.
* **hands** (``rh`` above ``lh``, up to five notes each): a hand's notes that sound together must lie
  within ``reach`` semitones (the new notes and those it still holds), a hand stays near the range it
  just played in, a hand mostly plays one line or chord at a time, a new note may not cross the other
  hand's held notes, a hand that has been playing a line (one note at a time) keeps doing so, and a
  weak pull of each hand towards its usual register breaks ties when the music gives no evidence.
  This beats a fixed split at middle C wherever the hands share a register (an Alberti bass reaching
  above the melody's lowest notes, a melody dipping below C4).

numpy-free pure Python (core: no I/O, no printing). Notes keep every field but ``group``.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from demixer.core.notes import Note

__all__ = [
    "VoiceParams",
    "HandParams",
    "voice_names",
    "assign_voices",
    "assign_hands",
    "hand_margins",
    "split_hands",
    "events",
]

HANDS = ("rh", "lh")


def voice_names(n: int) -> list[str]:
    """Group names of ``n`` voices from the top: soprano, alto, tenor, bass for 4, else voice1 … voiceN."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of voices must be a whole number >= 1, got {n!r}")
    return ["soprano", "alto", "tenor", "bass"] if n == 4 else [f"voice{i + 1}" for i in range(n)]


@dataclass(frozen=True)
class VoiceParams:
    """Costs of :func:`assign_voices` (in semitones of leap). ``busy``: a voice that still holds a
    note (ending later than ``overlap`` s after the new onset) takes another; ``double``: two new notes
    to one voice; ``cross``: per semitone a new note lies above a higher voice's current pitch or below
    a lower one's. ``enter``: a voice that has not sung yet takes its first note after the piece has
    begun (else a silent voice would always be the cheapest). ``home``: per semitone from the voice's
    usual register, spread evenly over ``home_range`` (top voice first): a tie-breaker. ``forget``:
    seconds after which a resting voice's last pitch counts half."""

    chord_tol: float = 0.035
    overlap: float = 0.08
    busy: float = 14.0
    double: float = 20.0
    cross: float = 3.0
    enter: float = 4.0
    home: float = 0.05
    home_range: tuple[float, float] = (74.0, 46.0)
    forget: float = 2.0
    beam: int = 24


@dataclass(frozen=True)
class HandParams:
    """Costs of :func:`assign_hands`. ``reach``: semitones a hand spans without cost (a tenth is
    ``16``; most hands: ``12``–``14``); ``span``: cost per semitone beyond it; ``move``: per semitone
    a new note lies outside the range the hand played in the last ``memory`` s (after a longer rest:
    from its last mean pitch, which ``forget`` s halve); ``busy``: per new note while the hand still
    holds an earlier one (a hand mostly plays one line or one chord at a time); ``cross``: per
    semitone a new note crosses the other hand's held notes; ``crowd``: per note beyond five in a
    hand; ``home``: per semitone from the hand's usual register (``rh_home`` / ``lh_home``);
    ``texture``: per note beyond one that a hand playing a line takes at once — a hand whose last
    ``memory`` s hold at least two onsets, each a single note (an octave doubling counts as one), keeps
    playing single notes (an Alberti bass does not take the melody's note that dips into its range);
    ``shadow``: a new note two octaves below another new note of the same hand, when that upper note
    lies within ``shadow`` semitones of the range the hand has just played in, counts in the hand's
    span as if it lay only ``shadow`` semitones below the upper note (None: where it lies) — drafts
    often add a note's subharmonic two octaves down, which would otherwise push the hand's real chord
    to the other hand; a hand reaching up for a note far from where it plays (a melody note two
    octaves over its bass), or down for a note where the other hand plays, gets no such relief.

    Later passes (up to ``passes`` in all, stopping when nothing changes): the fixed usual registers
    are replaced by where each hand plays *here* — the median pitch of the hand's notes starting within
    ``register_window`` s whose margin (:func:`hand_margins`) in the previous pass was at least
    ``sure`` — at ``register`` per semitone of each new note (a hand with no such notes near keeps its
    usual register). A wrongly placed note early on then no longer sets the range a hand keeps for the
    rest of a passage (the memory of the first pass reinforces itself), and uncertain notes (small
    margin) do not vote on the registers."""

    chord_tol: float = 0.035
    overlap: float = 0.08
    reach: int = 12
    span: float = 4.0
    move: float = 0.5
    cross: float = 4.0
    crowd: float = 10.0
    home: float = 0.05
    rh_home: float = 69.0
    lh_home: float = 50.0
    forget: float = 2.0
    memory: float = 1.0
    busy: float = 1.5
    texture: float = 2.0
    shadow: int | None = 6
    beam: int = 24
    passes: int = 3
    sure: float = 5.0
    register_window: float = 4.0
    register: float = 0.15


def _check_notes(notes: Iterable[Note]) -> list[Note]:
    out = list(notes)
    for n in out:
        if not isinstance(n, Note):
            raise ValueError(f"notes must be Note objects, got {type(n).__name__}")
    return out


def events(notes: Sequence[Note], chord_tol: float) -> list[list[int]]:
    """Indices of ``notes`` grouped into events (onsets within ``chord_tol`` s of the event's first),
    in time order; within an event from the highest pitch down."""
    order = sorted(range(len(notes)), key=lambda i: (notes[i].onset, -notes[i].pitch))
    out: list[list[int]] = []
    start = -math.inf
    for i in order:
        if out and notes[i].onset - start <= chord_tol:
            out[-1].append(i)
        else:
            out.append([i])
            start = notes[i].onset
    for ev in out:
        ev.sort(key=lambda i: -notes[i].pitch)
    return out


def _monotone_maps(m: int, parts: int) -> Iterable[tuple[int, ...]]:
    """Non-decreasing maps of ``m`` notes (top first) to ``parts`` parts (top first)."""
    return itertools.combinations_with_replacement(range(parts), m)


# ------------------------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class _VoiceState:
    last: tuple[float | None, ...]  # last pitch of each voice
    last_t: tuple[float, ...]  # when it ended (offset)
    busy_until: tuple[float, ...]


def assign_voices(
    notes: Iterable[Note],
    n_voices: int,
    params: VoiceParams | None = None,
    extra: Sequence[Sequence[float]] | None = None,
) -> list[Note]:
    """The notes with ``group`` set to one of :func:`voice_names` (``n_voices``), in the input order.
    ``extra[i][v]``: a further cost of giving note ``i`` to voice ``v`` (e.g.
    :func:`demixer.engine.draft.timbre_costs`)."""
    params = params or VoiceParams()
    names = voice_names(n_voices)
    note_list = _check_notes(notes)
    if not note_list:
        return []
    if extra is not None and (len(extra) != len(note_list) or any(len(r) != n_voices for r in extra)):
        raise ValueError("extra costs must give one cost per voice for every note")
    V = n_voices
    evs = events(note_list, params.chord_tol)
    top, bottom = params.home_range
    homes = [top - (top - bottom) * v / max(1, V - 1) for v in range(V)]
    start = _VoiceState((None,) * V, (-math.inf,) * V, (-math.inf,) * V)
    beam: list[tuple[float, _VoiceState, tuple]] = [(0.0, start, ())]
    for ev in evs:
        t = note_list[ev[0]].onset
        pitches = [note_list[i].pitch for i in ev]
        m = len(ev)
        cand = []
        ecost = [[float(x) for x in extra[i]] for i in ev] if extra is not None else None
        maps = list(_monotone_maps(m, V)) if m <= 8 else [tuple(min(V - 1, k * V // m) for k in range(m))]
        for cost, st, path in beam:
            for mp in maps:
                c = cost
                used: dict[int, int] = {}
                for j, (x, v) in enumerate(zip(pitches, mp, strict=True)):
                    used[v] = used.get(v, 0) + 1
                    c += params.home * abs(x - homes[v])
                    if ecost is not None:
                        c += ecost[j][v]
                    ref = st.last[v]
                    if ref is None:
                        c += params.enter if any(x is not None for x in st.last) else 0.0
                    else:
                        rest = max(0.0, t - st.last_t[v])
                        w = 0.5 ** (rest / params.forget) if rest > 0 else 1.0
                        c += abs(x - ref) * (0.5 + 0.5 * w)
                    if st.busy_until[v] > t + params.overlap:
                        c += params.busy
                    # crossing the current pitches of the voices that take no new note
                    for u in range(V):
                        y = st.last[u]
                        if y is None or u in mp:
                            continue
                        if u < v and x > y:
                            c += params.cross * (x - y)
                        elif u > v and x < y:
                            c += params.cross * (y - x)
                for k in used.values():
                    if k > 1:
                        c += params.double * (k - 1)
                last = list(st.last)
                last_t = list(st.last_t)
                busy = list(st.busy_until)
                for i, v in zip(ev, mp, strict=True):
                    n = note_list[i]
                    if last[v] is None or busy[v] <= t + params.overlap or n.pitch > (last[v] or 0):
                        last[v] = n.pitch
                    last_t[v] = max(last_t[v], n.offset) if busy[v] > t + params.overlap else n.offset
                    busy[v] = max(busy[v], n.offset) if busy[v] > t + params.overlap else n.offset
                cand.append((c, _VoiceState(tuple(last), tuple(last_t), tuple(busy)), (path, ev, mp)))
        cand.sort(key=lambda e: e[0])
        beam = _dedupe(cand, params.beam)
    return _apply(note_list, beam[0][2], names)


def _dedupe(cand: list, width: int) -> list:
    """The ``width`` cheapest candidates with distinct states (sorted by cost already)."""
    seen = set()
    out = []
    for c in cand:
        if c[1] in seen:
            continue
        seen.add(c[1])
        out.append(c)
        if len(out) >= width:
            break
    return out


def _apply(notes: list[Note], path, names: Sequence[str]) -> list[Note]:
    group = [""] * len(notes)
    while path:
        path, ev, mp = path
        for i, v in zip(ev, mp, strict=True):
            group[i] = names[v]
    return [dataclasses.replace(n, group=g) for n, g in zip(notes, group, strict=True)]


# ------------------------------------------------------------------------------------------- hands
@dataclass(frozen=True)
class _HandState:
    recent: tuple[tuple[tuple[int, float], ...], tuple[tuple[int, float], ...]]  # (pitch, onset)
    last: tuple[tuple[float, float] | None, tuple[float, float] | None]  # (mean pitch, time) of the last notes
    held: tuple[tuple[tuple[int, float], ...], tuple[tuple[int, float], ...]]  # (pitch, offset)


_HAND_START = _HandState(((), ()), (None, None), ((), ()))

#: where each hand plays around time t: (rh, lh) pitch, either None (no evidence: no cost)
Registers = Callable[[float], tuple[float | None, float | None]]


def _chord_size(pitches: Iterable[int]) -> int:
    """Notes in a chord, an octave doubling counted once."""
    s = set(pitches)
    return sum(1 for x in s if x - 12 not in s)


def _spanned(
    params: HandParams, new: list[int], recent: tuple[tuple[int, float], ...], other: tuple[tuple[int, float], ...]
) -> list[int]:
    """The pitches a hand's new notes stretch it over: a note two octaves below another, which lies
    within ``params.shadow`` of the hand's recent range (``recent``: (pitch, onset) pairs), counts as
    lying ``params.shadow`` semitones below that note (:class:`HandParams`) — unless the lower note lies
    inside the range the other hand has just played in (``other``), where it is the other hand's."""
    d = params.shadow
    if d is None or not recent:
        return new
    lo = min(q for q, _ in recent) - d
    hi = max(q for q, _ in recent) + d
    o_lo = min((q for q, _ in other), default=None)
    o_hi = max((q for q, _ in other), default=None)
    s = set(new)
    return [
        x + 24 - d
        if x + 24 in s and lo <= x + 24 <= hi and (o_lo is None or not o_lo <= x <= o_hi)
        else x
        for x in new
    ]


def _plays_a_line(recent: tuple[tuple[int, float], ...]) -> bool:
    """Whether a hand's recent notes ((pitch, onset) pairs) are at least two onsets of one note each."""
    by_onset: dict[float, list[int]] = {}
    for q, o in recent:
        by_onset.setdefault(o, []).append(q)
    return len(by_onset) >= 2 and all(_chord_size(ps) == 1 for ps in by_onset.values())


def _hand_step(
    params: HandParams, notes: list[Note], st: _HandState, ev: list[int], hands: Sequence[int],
    registers: Registers | None,
) -> tuple[float, _HandState]:
    """The cost of giving the notes ``ev`` (one event) the hands ``hands`` (0 = rh, 1 = lh) after the
    state ``st``, and the state after it."""
    t = notes[ev[0]].onset
    held = tuple(tuple(h for h in st.held[k] if h[1] > t + params.overlap) for k in (0, 1))
    recent = tuple(tuple(r for r in st.recent[k] if r[1] >= t - params.memory) for k in (0, 1))
    parts: tuple[list[int], list[int]] = ([], [])
    for i, h in zip(ev, hands, strict=True):
        parts[h].append(notes[i].pitch)
    here = registers(t) if registers is not None else None
    homes = (params.rh_home, params.lh_home)
    c = 0.0
    for h in (0, 1):
        new = parts[h]
        if not new:
            continue
        together = list(new) + [q for q, _ in held[h]]
        stretched = _spanned(params, new, recent[h], recent[1 - h]) + [q for q, _ in held[h]]
        span = max(stretched) - min(stretched)
        c += params.span * max(0, span - params.reach)
        c += params.crowd * max(0, len(together) - 5)
        if held[h]:
            c += params.busy * len(new)
        if params.texture and len(new) > 1 and _plays_a_line(recent[h]):
            c += params.texture * (_chord_size(new) - 1)
        if recent[h]:  # distance to the range the hand has just played in
            lo = min(q for q, _ in recent[h])
            hi = max(q for q, _ in recent[h])
            c += params.move * sum(max(0, lo - x, x - hi) for x in new) / len(new)
        elif st.last[h] is not None:  # after a rest: where it was, counting less
            ref, when = st.last[h]
            w = 0.5 ** (max(0.0, t - when) / params.forget)
            c += params.move * abs(sum(new) / len(new) - ref) * (0.25 + 0.75 * w)
        if here is None or here[h] is None:  # no sure notes of this hand near: its usual register
            c += params.home * abs(sum(new) / len(new) - homes[h])
        else:
            c += params.register * sum(abs(x - here[h]) for x in new) / len(new)
        other = [q for q, _ in held[1 - h]]
        if other:
            if h == 0:  # rh below the held lh notes
                c += params.cross * max(0, max(other) - min(new))
            else:  # lh above the held rh notes
                c += params.cross * max(0, max(new) - min(other))
    new_recent = [list(recent[0]), list(recent[1])]
    new_held = [list(held[0]), list(held[1])]
    last = list(st.last)
    for i, h in zip(ev, hands, strict=True):
        new_held[h].append((notes[i].pitch, notes[i].offset))
        new_recent[h].append((notes[i].pitch, t))
    for h in (0, 1):
        if parts[h]:
            last[h] = (sum(parts[h]) / len(parts[h]), t)
    state = _HandState(
        (tuple(sorted(new_recent[0])), tuple(sorted(new_recent[1]))),
        (last[0], last[1]),
        (tuple(sorted(new_held[0])), tuple(sorted(new_held[1]))),
    )
    return c, state


def _hand_pass(
    notes: list[Note], evs: list[list[int]], params: HandParams, registers: Registers | None
) -> tuple[list[int], list[float]]:
    """One beam search: each note's hand (0 = rh, 1 = lh) and its margin — how much the cost of the
    chosen assignment rises when that note alone goes to the other hand (the rest of the path kept)."""
    beam: list[tuple[float, _HandState, tuple]] = [(0.0, _HAND_START, ())]
    for ev in evs:
        m = len(ev)
        cand = []
        for cost, st, path in beam:
            for k_rh in range(m + 1):
                hands = (0,) * k_rh + (1,) * (m - k_rh)
                c, state = _hand_step(params, notes, st, ev, hands, registers)
                cand.append((cost + c, state, (path, ev, hands)))
        cand.sort(key=lambda e: e[0])
        beam = _dedupe(cand, params.beam)
    hand = [0] * len(notes)
    path = beam[0][2]
    while path:
        path, ev, hands = path
        for i, h in zip(ev, hands, strict=True):
            hand[i] = h
    # re-score the chosen path, then with one note flipped (until the states meet again)
    states = [_HAND_START]
    total = [0.0]
    for ev in evs:
        c, state = _hand_step(params, notes, states[-1], ev, [hand[i] for i in ev], registers)
        states.append(state)
        total.append(total[-1] + c)
    margin = [0.0] * len(notes)
    for e, ev in enumerate(evs):
        for i in ev:
            flipped = {i: 1 - hand[i]}
            st, c = states[e], total[e]
            for e2 in range(e, len(evs)):
                dc, st = _hand_step(params, notes, st, evs[e2], [flipped.get(j, hand[j]) for j in evs[e2]], registers)
                c += dc
                if e2 > e and st == states[e2 + 1]:
                    c += total[-1] - total[e2 + 1]
                    break
            margin[i] = c - total[-1]
    return hand, margin


def _local_registers(notes: list[Note], hand: list[int], sure: list[bool], window: float) -> Registers:
    """Per hand, the median pitch of its sure notes starting within ``window`` s of t."""
    onsets = [n.onset for n in notes]
    by_hand = [
        sorted((onsets[i], notes[i].pitch) for i in range(len(notes)) if sure[i] and hand[i] == h) for h in (0, 1)
    ]
    keys = [[o for o, _ in b] for b in by_hand]

    def registers(t: float) -> tuple[float | None, float | None]:
        out: list[float | None] = []
        for b, k in zip(by_hand, keys, strict=True):
            lo = bisect.bisect_left(k, t - window)
            hi = bisect.bisect_right(k, t + window)
            out.append(statistics.median(p for _, p in b[lo:hi]) if hi > lo else None)
        return out[0], out[1]

    return registers


def hand_margins(notes: Iterable[Note], params: HandParams | None = None) -> tuple[list[Note], list[float]]:
    """:func:`assign_hands` and each note's margin (the cost, in the assignment's units, that giving
    that note alone to the other hand adds: small = the music does not decide)."""
    params = params or HandParams()
    note_list = _check_notes(notes)
    if not note_list:
        return [], []
    evs = events(note_list, params.chord_tol)
    hand, margin = _hand_pass(note_list, evs, params, None)
    for _ in range(params.passes - 1):
        sure = [m >= params.sure for m in margin]
        registers = _local_registers(note_list, hand, sure, params.register_window)
        again, margin = _hand_pass(note_list, evs, params, registers)
        if again == hand:
            break
        hand = again
    return [dataclasses.replace(n, group=HANDS[h]) for n, h in zip(note_list, hand, strict=True)], margin


def assign_hands(notes: Iterable[Note], params: HandParams | None = None) -> list[Note]:
    """The notes with ``group`` ``rh`` or ``lh`` (see the module docstring), in the input order."""
    return hand_margins(notes, params)[0]


def split_hands(notes: Iterable[Note], split: int = 60) -> list[Note]:
    """The fixed split the hand assignment must beat: ``pitch >= split`` → ``rh``, else ``lh``."""
    return [dataclasses.replace(n, group="rh" if n.pitch >= split else "lh") for n in _check_notes(notes)]
