"""Score-informed constraints: score notes → initial W, H and their allow masks (DESIGN.md §2.3).

Conventions (shared with :mod:`demixer.core.stft`): frame ``n`` of the centred STFT is centred at
``n * hop / sr`` seconds; bin ``k`` has frequency ``k * sr / n_fft`` Hz and there are
``K = n_fft // 2 + 1`` bins.

The masks follow DESIGN.md §1: an entry of ``W0``/``H0`` that is not allowed is exactly 0, and every
allowed entry starts positive, so multiplicative updates keep the constraint for ever.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from demixer.core.notes import Note, pitch_name, pitch_to_hz

__all__ = [
    "ComponentInfo",
    "OnsetPolicy",
    "ScoreInit",
    "ScoreParams",
    "activation_regions",
    "apply_allow",
    "build_score_constraints",
    "default_onset_policy",
    "harmonic_template",
    "onset_enabled",
    "onset_verdict",
    "is_struck_or_plucked",
    "onset_template",
    "split_by_pitch",
]

#: Frame-boundary slack, in frames: a region boundary within this distance of a frame centre counts as
#: lying on it (so float rounding of e.g. ``0.3 - 0.1`` cannot exclude a frame that is exactly on it).
#: At the defaults (22050 Hz, hop 512) it is about 23 ns.
_FRAME_SLACK = 1e-6

ONSET_TEMPLATE_VALUE = 0.1


# --------------------------------------------------------------------------------------------------
# Small validators (private)


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value: object, *, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and v <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return v


def _check_float_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}") from exc
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating-point dtype, got {dt}")
    return dt


def _check_stft_sizes(n_bins: object, sr: object, n_fft: object) -> tuple[int, float, int]:
    n_fft_i = _check_int("n_fft", n_fft, minimum=2)
    n_bins_i = _check_int("n_bins", n_bins)
    if n_bins_i != n_fft_i // 2 + 1:
        raise ValueError(
            f"n_bins must be n_fft // 2 + 1 = {n_fft_i // 2 + 1} for n_fft {n_fft_i}, got {n_bins_i}"
        )
    sr_f = _check_real("sr", sr, positive=True)
    return n_bins_i, sr_f, n_fft_i


# --------------------------------------------------------------------------------------------------
# Templates


def harmonic_template(
    pitch: float,
    n_bins: int,
    sr: float,
    n_fft: int,
    tol: float = 0.05,
    n_harmonics: int | None = None,
    dtype: object = np.float32,
    lobe_bins: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic comb for MIDI ``pitch``: returns ``(template, allow)``, shapes ``(n_bins,)``.

    With ``f0 = pitch_to_hz(pitch)``, harmonic ``m = 1, 2, …`` is used while ``m * f0 < sr / 2``
    (and ``m <= n_harmonics`` when given). Bin ``k`` belongs to harmonic ``m`` when
    ``|k * sr / n_fft - m * f0| <= tol * m * f0`` (evaluated literally, in float64); the bin nearest
    to ``m * f0`` (``round(m * f0 * n_fft / sr)``) always belongs to it too, and so does every bin
    strictly within ``lobe_bins`` bins of ``m * f0`` (``|k - m * f0 * n_fft / sr| < lobe_bins``): a
    partial's energy spreads over the window's main lobe, ±2 bins for the Hann window (its zeros are at
    exactly ±2), so a low partial whose relative band is narrower than that lobe keeps the bins its
    energy lands in (issue 15, note s15c: unseen chorales +0.19 dB; 0 gives the band or the nearest bin
    only). A bin's value is ``1 / m`` for the lowest harmonic it belongs to (the max over overlapping
    harmonics) and it is allowed.

    Bins at or above the Nyquist frequency are never used (for even ``n_fft`` the last bin, exactly at
    Nyquist, is always 0; a nearest bin that would be the Nyquist bin becomes the bin below it).
    Every other entry is exactly 0 and not allowed. A pitch with ``f0 >= sr / 2`` gets an all-zero,
    all-False template.
    """
    n_bins, sr, n_fft = _check_stft_sizes(n_bins, sr, n_fft)
    pitch_f = _check_real("pitch", pitch)
    tol = _check_real("tol", tol, minimum=0.0)
    if tol >= 1.0:
        raise ValueError(f"tol is a relative frequency tolerance and must be < 1, got {tol}")
    if n_harmonics is not None:
        n_harmonics = _check_int("n_harmonics", n_harmonics)
    lobe = _check_real("lobe_bins", lobe_bins, minimum=0.0)
    dt = _check_float_dtype(dtype)

    template = np.zeros(n_bins, dtype=dt)
    allow = np.zeros(n_bins, dtype=bool)
    f0 = pitch_to_hz(pitch_f)
    nyquist = sr / 2.0
    if not f0 < nyquist:
        return template, allow
    m_max = math.ceil(nyquist / f0)  # upper bound; the loop checks m * f0 < nyquist exactly
    if n_harmonics is not None:
        m_max = min(m_max, n_harmonics)
    k_last = (n_fft - 1) // 2  # last bin strictly below Nyquist
    bin_hz = sr / n_fft
    values = np.zeros(n_bins, dtype=np.float64)
    for m in range(1, m_max + 1):
        fm = m * f0
        if not fm < nyquist:
            break
        half = tol * fm
        x = fm / bin_hz  # m * f0 in bins
        k_lo = max(0, min(math.floor((fm - half) / bin_hz) - 1, math.floor(x - lobe)))
        k_hi = min(k_last, max(math.ceil((fm + half) / bin_hz) + 1, math.ceil(x + lobe)))
        ks = np.arange(k_lo, k_hi + 1)
        inside = np.abs(ks * sr / n_fft - fm) <= half
        k_near = min(int(math.floor(fm * n_fft / sr + 0.5)), k_last)
        inside |= ks == k_near
        if lobe > 0:
            inside |= np.abs(ks - x) < lobe
        sel = ks[inside]
        np.maximum.at(values, sel, 1.0 / m)
    allow[:] = values > 0.0
    template[allow] = values[allow]
    return template, allow


def onset_template(
    n_bins: int, value: float = ONSET_TEMPLATE_VALUE, dtype: object = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Broadband onset template: ``(template, allow)``, ``value`` in every bin, every bin allowed."""
    n_bins = _check_int("n_bins", n_bins)
    value = _check_real("value", value, positive=True)
    dt = _check_float_dtype(dtype)
    return np.full(n_bins, value, dtype=dt), np.ones(n_bins, dtype=bool)


# --------------------------------------------------------------------------------------------------
# Activation regions


def _frame_bounds(start_s: float, end_s: float, sr: float, hop: int) -> tuple[int, int]:
    """Unclipped first and last frame whose centre ``n * hop / sr`` lies in ``[start_s, end_s]``."""
    scale = sr / hop
    lo = math.ceil(start_s * scale - _FRAME_SLACK)
    hi = math.floor(end_s * scale + _FRAME_SLACK)
    return lo, hi


def _intervals_array(intervals_s: object) -> np.ndarray:
    arr = np.asarray(intervals_s, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"intervals_s must be a sequence of (onset, offset) pairs, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("intervals_s must be finite")
    if np.any(arr[:, 1] < arr[:, 0]):
        raise ValueError("every interval needs onset <= offset")
    return arr


def activation_regions(
    intervals_s: Iterable[tuple[float, float]] | np.ndarray,
    n_frames: int,
    sr: float,
    hop: int,
    pre: float,
    post: float,
) -> np.ndarray:
    """Frames allowed by a list of ``(onset, offset)`` intervals in seconds, as a bool array ``(n_frames,)``.

    Frame ``n`` (centre time ``t = n * hop / sr``) is allowed when ``onset - pre <= t <= offset + post``
    for at least one interval: a closed interval, so a frame exactly on a boundary is included. The
    comparison is done in frame units, ``ceil((onset - pre) * sr / hop) <= n <= floor((offset + post)
    * sr / hop)``, with a slack of 1e-6 frame so that float rounding of a boundary that coincides with a
    frame centre cannot exclude that frame. Regions are clipped to ``0 … n_frames - 1``; an interval
    entirely outside contributes nothing.
    """
    n_frames = _check_int("n_frames", n_frames)
    sr = _check_real("sr", sr, positive=True)
    hop = _check_int("hop", hop)
    pre = _check_real("pre", pre, minimum=0.0)
    post = _check_real("post", post, minimum=0.0)
    arr = _intervals_array(intervals_s)
    return _regions(arr, n_frames, sr, hop, pre, post)


def _regions(arr: np.ndarray, n_frames: int, sr: float, hop: int, pre: float, post: float) -> np.ndarray:
    diff = np.zeros(n_frames + 1, dtype=np.int64)
    for onset, offset in arr:
        lo, hi = _frame_bounds(onset - pre, offset + post, sr, hop)
        lo, hi = max(lo, 0), min(hi, n_frames - 1)
        if lo <= hi:
            diff[lo] += 1
            diff[hi + 1] -= 1
    return np.cumsum(diff[:-1]) > 0


# --------------------------------------------------------------------------------------------------
# Onset policy

#: (first, last, struck_or_plucked) General MIDI program ranges, 0-based, inclusive.
_GM_FAMILIES: tuple[tuple[int, int, bool], ...] = (
    (0, 7, True),  # pianos
    (8, 15, True),  # chromatic percussion
    (16, 23, False),  # organs
    (24, 31, True),  # guitars
    (32, 39, True),  # basses (fretless too: plucked)
    (40, 44, False),  # violin, viola, cello, contrabass, tremolo strings
    (45, 47, True),  # pizzicato strings, harp, timpani
    (48, 55, False),  # ensembles, choirs
    (56, 63, False),  # brass
    (64, 71, False),  # reed
    (72, 79, False),  # pipe
    (80, 95, False),  # synth lead, synth pad
    (104, 108, True),  # sitar, banjo, shamisen, koto, kalimba
    (109, 111, False),  # bagpipe, fiddle, shanai
    (112, 119, True),  # percussive
)


def is_struck_or_plucked(program: int | None) -> bool | None:
    """Whether General MIDI ``program`` (0–127) is a struck or plucked instrument.

    True for pianos, chromatic percussion, guitars, basses, pizzicato strings, harp, timpani, plucked
    ethnic instruments (104–108) and percussive (112–119); False for organs, bowed strings, ensembles,
    brass, reeds, pipes, synth leads/pads and sustained ethnic instruments (109–111); None when the
    family says nothing (synth effects 96–103, sound effects 120–127) or ``program`` is None.
    """
    if program is None:
        return None
    p = _check_int("program", program, minimum=0)
    if p > 127:
        raise ValueError(f"program must be a General MIDI program 0..127, got {p}")
    for first, last, struck in _GM_FAMILIES:
        if first <= p <= last:
            return struck
    return None


def onset_verdict(group: str, notes: Sequence[Note]) -> bool | None:
    """What the instruments say about onset templates for a group: True for struck/plucked, False for
    sustained, None when the score does not say (no note has a program whose family decides).

    Each note votes with :func:`is_struck_or_plucked` of its program; notes whose program is unknown (None,
    or a family that says nothing) do not vote. True when at least half of the voting notes are
    struck/plucked, False when most are sustained.
    """
    del group  # the decision depends on the instruments only
    struck = sustained = 0
    for note in notes:
        verdict = is_struck_or_plucked(note.program)
        if verdict is True:
            struck += 1
        elif verdict is False:
            sustained += 1
    if struck == sustained == 0:
        return None
    return struck >= sustained


def default_onset_policy(group: str, notes: Sequence[Note]) -> bool:
    """Default for ``ScoreParams.onset_templates``: onset templates for struck/plucked groups only.

    :func:`onset_verdict` when the programs decide; True when no note votes (CSV scores, most piano MIDI
    files), so that the group *gets* onset components. With the default settings the staged fit
    (:mod:`demixer.core.refine`, :func:`demixer.engine.separation.fit`) then decides such groups from
    the audio — onset templates help struck/plucked instruments and cost sustained ones (DESIGN.md
    §2.3, data README) — and silences the onset components of groups whose notes do not decay.
    """
    verdict = onset_verdict(group, notes)
    return True if verdict is None else verdict


OnsetPolicy = bool | Mapping[str, bool] | Callable[[str, Sequence[Note]], bool]


# --------------------------------------------------------------------------------------------------
# Parameters and result


@dataclass(frozen=True)
class ComponentInfo:
    """Metadata of one component (DESIGN.md §1). ``source`` is the group name, "" when none."""

    name: str
    pitch: int | None
    kind: str  # "pitch" | "onset" | "free"
    source: str

    def __post_init__(self) -> None:
        if self.kind not in ("pitch", "onset", "free"):
            raise ValueError(f"component kind must be 'pitch', 'onset' or 'free', got {self.kind!r}")


@dataclass(frozen=True)
class ScoreParams:
    """Parameters of :func:`build_score_constraints` (DESIGN.md §2.3; FMP C8S3 defaults).

    ``onset_templates``: True/False for every group; a mapping group → bool (missing groups → False);
    or a callable ``(group, notes_of_group) -> bool``. Default: :func:`default_onset_policy`.
    ``split_pitch``: when set, every note is regrouped by pitch (``< split_pitch`` → "low", else
    "high"), replacing the score's own groups; use it for scores without groups.

    Defaults (measured on the dev set, benchmarks/bench_quality.py): ``tol_pitch`` 4 % (±68 cents; FMP
    uses 5 %, which lets a band reach well into the next semitone's; 3 % is too narrow for the stretched
    partials of a piano); ``n_harmonics`` 20 — above the 10th harmonic the bands of one comb merge into
    a broadband block, and more of them let a low note's template soak up its neighbours' energy;
    ``tol_note_pre`` 0.25 s and ``tol_note_post``
    0.5 s exceed the timing errors a score may carry (±200 ms), since the staged fit re-aligns the
    notes and then uses its own, tighter, margins (:class:`demixer.core.refine.RefineParams`).
    """

    tol_pitch: float = 0.04
    n_harmonics: int | None = 20
    tol_note_pre: float = 0.25
    tol_note_post: float = 0.5
    onset_templates: OnsetPolicy = field(default=default_onset_policy)
    tol_onset_pre: float = 0.2
    tol_onset_post: float = 0.1
    per_group: bool = True
    split_pitch: int | None = None

    def __post_init__(self) -> None:
        tol = _check_real("tol_pitch", self.tol_pitch, minimum=0.0)
        if tol >= 1.0:
            raise ValueError(f"tol_pitch must be < 1, got {tol}")
        if self.n_harmonics is not None:
            _check_int("n_harmonics", self.n_harmonics)
        for name in ("tol_note_pre", "tol_note_post", "tol_onset_pre", "tol_onset_post"):
            _check_real(name, getattr(self, name), minimum=0.0)
        ot = self.onset_templates
        if not (isinstance(ot, (bool, np.bool_, Mapping)) or callable(ot)):
            raise ValueError(f"onset_templates must be a bool, a mapping or a callable, got {ot!r}")
        if self.split_pitch is not None:
            sp = _check_int("split_pitch", self.split_pitch, minimum=0)
            if sp > 128:
                raise ValueError(f"split_pitch must be a MIDI number 0..128, got {sp}")


@dataclass
class ScoreInit:
    """Initial factors and masks from a score: ``W0`` K × R, ``H0`` R × N, masks of the same shapes."""

    W0: np.ndarray
    H0: np.ndarray
    allow_W: np.ndarray
    allow_H: np.ndarray
    components: list[ComponentInfo]
    sources: list[str]

    @property
    def n_components(self) -> int:
        return len(self.components)


# --------------------------------------------------------------------------------------------------
# Score → constraints


def split_by_pitch(notes: Iterable[Note], split_pitch: int) -> list[Note]:
    """Regroup notes by pitch: ``pitch < split_pitch`` → group "low", else "high" (other fields kept)."""
    sp = _check_int("split_pitch", split_pitch, minimum=0)
    if sp > 128:
        raise ValueError(f"split_pitch must be a MIDI number 0..128, got {sp}")
    out = []
    for note in notes:
        if not isinstance(note, Note):
            raise ValueError(f"notes must be Note objects, got {type(note).__name__}")
        out.append(dataclasses.replace(note, group="low" if note.pitch < sp else "high"))
    return out


def onset_enabled(policy: OnsetPolicy, group: str, notes: Sequence[Note]) -> bool:
    """Whether ``policy`` (a ``ScoreParams.onset_templates`` value) gives ``group`` onset templates."""
    if isinstance(policy, (bool, np.bool_)):
        return bool(policy)
    if isinstance(policy, Mapping):
        return bool(policy.get(group, False))
    return bool(policy(group, tuple(notes)))


def _unique_name(base: str, used: set[str]) -> str:
    name, i = base, 2
    while name in used:
        name = f"{base} ({i})"
        i += 1
    used.add(name)
    return name


def build_score_constraints(
    notes: Iterable[Note],
    *,
    n_bins: int,
    n_frames: int,
    sr: float,
    n_fft: int,
    hop: int,
    params: ScoreParams | None = None,
    dtype: object = np.float32,
    lobe_bins: float = 2.0,
) -> ScoreInit:
    """Score-informed initialisation (Ewert & Müller 2012; DESIGN.md §2.3).

    ``lobe_bins``: :func:`harmonic_template`'s main-lobe bins — 2 for a separation (the bands hold the
    energy of a low partial); 0 for a dictionary that must tell neighbouring low pitches apart, whose
    partials lie less than a lobe apart (the transcription's: ``core.transcribe.pitch_dictionary``).

    Pitch components: one per distinct (group, pitch) when ``params.per_group``, else one per pitch
    (whose source is its notes' group when they all share one, else ""). Template from
    :func:`harmonic_template`; activation allowed over ``[onset - tol_note_pre, offset + tol_note_post]``
    of each of its notes (:func:`activation_regions`). Onset components: one per pitch component whose
    notes' group has onset templates enabled (``params.onset_templates``), broadband template 0.1,
    activation allowed over ``[onset - tol_onset_pre, onset + tol_onset_post]`` of those notes.
    ``W0``/``H0`` are the template / 1.0 where allowed and exactly 0 elsewhere.

    Sources are the non-empty groups in order of first appearance in ``notes``; components are the
    pitch components sorted by (source order, pitch) — source "" last — then the onset components in
    the same order. Names are ``"<pitch name> <source>"`` (``"C4 rh"``), ``+ " onset"`` for onsets,
    without the source part when the source is "".

    Notes are clipped to the ``n_frames`` frames. Notes that cannot constrain anything are ignored:
    a note whose allowed pitch region contains no frame (it starts after the audio ends) and a note
    whose fundamental is at or above Nyquist (it would have an empty template). So every component
    has at least one allowed bin and one allowed frame: no component is created with an all-False
    activation (a (group, pitch) whose notes are all ignored gets no component; an onset component
    whose onset regions are all outside the frames is dropped). Raises ValueError when ``notes`` is
    empty ("score has no notes") or when every note is ignored.
    """
    params = ScoreParams() if params is None else params
    if not isinstance(params, ScoreParams):
        raise ValueError(f"params must be a ScoreParams, got {type(params).__name__}")
    n_bins, sr, n_fft = _check_stft_sizes(n_bins, sr, n_fft)
    n_frames = _check_int("n_frames", n_frames)
    hop = _check_int("hop", hop)
    dt = _check_float_dtype(dtype)

    note_list = list(notes)
    if not note_list:
        raise ValueError("score has no notes")
    for note in note_list:
        if not isinstance(note, Note):
            raise ValueError(f"notes must be Note objects, got {type(note).__name__}")
    if params.split_pitch is not None:
        note_list = split_by_pitch(note_list, params.split_pitch)

    nyquist = sr / 2.0
    kept: list[Note] = []
    for note in note_list:
        lo, _ = _frame_bounds(note.onset - params.tol_note_pre, note.offset, sr, hop)
        if lo <= n_frames - 1 and pitch_to_hz(note.pitch) < nyquist:
            kept.append(note)
    if not kept:
        raise ValueError(
            f"none of the score's {len(note_list)} notes lies within the {n_frames} frames "
            f"(0 .. {(n_frames - 1) * hop / sr:.3f} s) with a fundamental below Nyquist ({nyquist:g} Hz)"
        )

    sources: list[str] = []
    notes_by_group: dict[str, list[Note]] = {}
    for note in kept:
        notes_by_group.setdefault(note.group, []).append(note)
        if note.group and note.group not in sources:
            sources.append(note.group)
    onset_on = {g: onset_enabled(params.onset_templates, g, gn) for g, gn in notes_by_group.items()}

    # Pitch components: key → notes.
    by_key: dict[tuple[str | None, int], list[Note]] = {}
    for note in kept:
        key = (note.group if params.per_group else None, int(note.pitch))
        by_key.setdefault(key, []).append(note)

    def source_of(key_notes: list[Note]) -> str:
        groups = {n.group for n in key_notes}
        return key_notes[0].group if len(groups) == 1 else ""

    rank = {s: i for i, s in enumerate(sources)}
    entries = []  # (source, pitch, notes)
    for (_, pitch), key_notes in by_key.items():
        entries.append((source_of(key_notes), pitch, key_notes))
    entries.sort(key=lambda e: (rank.get(e[0], len(sources)), e[1]))

    columns_W: list[np.ndarray] = []
    columns_aW: list[np.ndarray] = []
    rows_aH: list[np.ndarray] = []
    components: list[ComponentInfo] = []
    used: set[str] = set()

    for source, pitch, key_notes in entries:
        tmpl, allow = harmonic_template(
            pitch, n_bins, sr, n_fft, tol=params.tol_pitch, n_harmonics=params.n_harmonics, dtype=dt,
            lobe_bins=lobe_bins,
        )
        iv = np.array([(n.onset, n.offset) for n in key_notes], dtype=np.float64)
        region = _regions(iv, n_frames, sr, hop, params.tol_note_pre, params.tol_note_post)
        base = f"{pitch_name(pitch)} {source}" if source else pitch_name(pitch)
        components.append(ComponentInfo(_unique_name(base, used), pitch, "pitch", source))
        columns_W.append(tmpl)
        columns_aW.append(allow)
        rows_aH.append(region)

    o_tmpl, o_allow = onset_template(n_bins, ONSET_TEMPLATE_VALUE, dtype=dt)
    for source, pitch, key_notes in entries:
        onset_notes = [n for n in key_notes if onset_on[n.group]]
        if not onset_notes:
            continue
        iv = np.array([(n.onset, n.onset) for n in onset_notes], dtype=np.float64)
        region = _regions(iv, n_frames, sr, hop, params.tol_onset_pre, params.tol_onset_post)
        if not region.any():
            continue
        base = f"{pitch_name(pitch)} {source} onset" if source else f"{pitch_name(pitch)} onset"
        components.append(ComponentInfo(_unique_name(base, used), pitch, "onset", source))
        columns_W.append(o_tmpl)
        columns_aW.append(o_allow)
        rows_aH.append(region)

    allow_W = np.stack(columns_aW, axis=1)
    W0 = np.stack(columns_W, axis=1).astype(dt, copy=False)
    W0[~allow_W] = 0
    allow_H = np.stack(rows_aH, axis=0)
    H0 = allow_H.astype(dt)
    return ScoreInit(W0=W0, H0=H0, allow_W=allow_W, allow_H=allow_H, components=components, sources=sources)


def apply_allow(W: np.ndarray, allow: np.ndarray) -> np.ndarray:
    """``W`` with every entry that ``allow`` forbids set to exactly 0 (a new array; dtype kept)."""
    W = np.asarray(W)
    allow = np.asarray(allow)
    if allow.dtype != np.bool_:
        raise ValueError(f"allow must be a boolean mask, got dtype {allow.dtype}")
    if W.shape != allow.shape:
        raise ValueError(f"allow has shape {allow.shape} but the array has shape {W.shape}")
    if W.dtype.kind not in "fiuc":
        raise ValueError(f"array must be numeric, got dtype {W.dtype}")
    return np.where(allow, W, W.dtype.type(0))
