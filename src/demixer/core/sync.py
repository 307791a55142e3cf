"""Score–audio synchronisation (DESIGN.md §2.5b): warp a note list's time axis onto a recording's.

    feats  = audio_features(signal, sr)            # once per recording (chroma + onset features)
    align  = synchronise(notes, feats, anchors=[(score_t, audio_t), ...])
    warped = warp_notes(notes, align)              # the notes in the recording's time

Features. Both sides are reduced to the same two 12-dimensional features on a 20 ms grid: a chroma
(energy per pitch class, log-compressed, unit norm; silence becomes the uniform vector so that a rest in
the score matches a pause in the recording), onsets per semitone band (the rise of each band's energy,
held for a short decay after it, after Ewert, Müller & Grosche 2009; kept per pitch, not folded, so that
an arpeggio over octaves of one pitch class is still told apart) and whether the frame sounds at all.
The score's side is synthesised from the notes with a few harmonics per note. The local cost is the
cosine distance of the chromas plus weighted distances of the onsets and of the sounding flags.

Warping. Dynamic time warping with steps (1,0), (0,1), (1,1) (diagonal weight 2: every monotonic path
has the same length, so no tempo is preferred), first on a coarse grid (``coarse`` × 20 ms) over the
whole matrix, then on the fine grid inside a band around the coarse path: cost O(N·M / coarse²) +
O(N·band), memory likewise. The score is padded with a silent frame at each end, so the recording's
lead-in and trailing silence are absorbed there. Each row is computed with whole-array operations (the
horizontal steps through a running minimum), so no compiled extension is needed.

Anchors ``(score_time, audio_time)`` pin the warp: the path is split at them and each segment is warped
on its own with both ends fixed, so adding an anchor only re-warps the features between its neighbours.

Confidence: how much cheaper the path is than the average pairing of the same frames (the cost of
matching the score to the recording at random), mapped to [0, 1]. A score of another piece finds no
path much cheaper than chance and gets a low confidence (the margin is measured, not wide: see
``_REL_MATCH``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from demixer.core.notes import Note
from demixer.core.stft import _window, n_frames_for, rfft

__all__ = [
    "SyncParams",
    "Features",
    "Alignment",
    "audio_features",
    "score_features",
    "synchronise",
    "warp_notes",
    "warp_times",
    "sounding_duration",
]


@dataclass(frozen=True)
class SyncParams:
    """Settings of the synchronisation (defaults serve any piece; none is tuned to one).

    ``hop_s``: the fine grid; ``coarse``: the coarse grid's factor; ``band_s``: half-width of the fine
    search band around the coarse path; ``onset_weight``: weight of the onset features against the
    chroma in the local cost; ``onset_decay_s``: how long an onset feature is held after its rise;
    ``harmonics``: relative weights of the harmonics synthesised for each score note;
    ``silence_db``: frames this far below the recording's loud frames count as silence.
    """

    hop_s: float = 0.02
    coarse: int = 5
    band_s: float = 0.6
    onset_weight: float = 1.0
    onset_decay_s: float = 0.1
    harmonics: tuple[float, ...] = (1.0, 0.5, 0.33, 0.25, 0.2, 0.17)
    silence_db: float = 40.0
    n_fft_s: float = 0.093
    step_penalty: float = 0.3
    activity_weight: float = 1.0
    gamma: float = 1e4

    def __post_init__(self) -> None:
        for name in ("hop_s", "band_s", "onset_decay_s", "silence_db", "n_fft_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.coarse, int) and self.coarse >= 1):
            raise ValueError(f"coarse must be a whole number >= 1, got {self.coarse!r}")
        if not (isinstance(self.onset_weight, (int, float)) and self.onset_weight >= 0):
            raise ValueError(f"onset_weight must be >= 0, got {self.onset_weight!r}")


@dataclass(eq=False)
class Features:
    """Chroma (12 × N) and onset (bands × N) features, float64, on a ``hop_s`` grid from time 0."""

    chroma: np.ndarray
    onset: np.ndarray
    hop_s: float
    #: per frame: has sound (audio) or notes (score)
    active: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def n_frames(self) -> int:
        return int(self.chroma.shape[1])

    @property
    def duration(self) -> float:
        return self.n_frames * self.hop_s


@dataclass(eq=False)
class Alignment:
    """A monotonic warp from score time to audio time.

    ``score_times`` / ``audio_times``: the warping path (seconds, both non-decreasing, same length);
    :meth:`to_audio` maps any score time through it (linear in between, the global tempo outside).
    ``anchors``: the ``(score_time, audio_time)`` pairs it was pinned to. ``confidence`` in [0, 1]:
    below about 0.3 the score does not match the recording (see :attr:`matches`). ``score_span`` /
    ``audio_span``: the first and last note time in each axis.
    """

    score_times: np.ndarray
    audio_times: np.ndarray
    confidence: float
    anchors: tuple[tuple[float, float], ...] = ()
    score_span: tuple[float, float] = (0.0, 0.0)
    #: the path cost relative to chance (0 = a perfect match, 1 = no better than chance)
    relative_cost: float = 1.0

    #: below this confidence the score is taken for another piece (measured, DESIGN.md §2.5b)
    THRESHOLD = 0.3

    @property
    def matches(self) -> bool:
        return self.confidence >= self.THRESHOLD

    def to_audio(self, t) -> np.ndarray | float:
        """Audio time(s) of score time(s) ``t``."""
        x = np.asarray(t, dtype=np.float64)
        s, a = self.score_times, self.audio_times
        y = np.interp(x, s, a)
        if s.size >= 2:
            slope = 1.0 / self.tempo_ratio  # audio seconds per score second
            y = np.where(x < s[0], a[0] + (x - s[0]) * slope, y)
            y = np.where(x > s[-1], a[-1] + (x - s[-1]) * slope, y)
        return float(y) if np.ndim(y) == 0 else y

    @property
    def lead_in(self) -> float:
        """Audio time of the score's first note."""
        return float(self.to_audio(self.score_span[0]))

    @property
    def tempo_ratio(self) -> float:
        """Score duration over audio duration of the notes' span (> 1: the recording is faster)."""
        s0, s1 = self.score_span
        if s1 <= s0:
            return 1.0
        a0 = float(np.interp(s0, self.score_times, self.audio_times))
        a1 = float(np.interp(s1, self.score_times, self.audio_times))
        return (s1 - s0) / max(a1 - a0, 1e-9)


# --------------------------------------------------------------------------------------------------
# Features


def _fold(P: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Rows of ``P`` (one per MIDI pitch in ``pitches``) summed per pitch class → 12 × N."""
    out = np.zeros((12, P.shape[1]))
    np.add.at(out, pitches % 12, P)
    return out


def _normalise_chroma(C: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm columns; columns whose norm is below ``floor`` blend into the uniform vector."""
    norm = np.sqrt((C * C).sum(axis=0))
    active = norm > floor
    C = C + max(floor, 1e-12) * (1.0 / math.sqrt(12.0))  # uniform share: dominates only quiet frames
    C = C / np.sqrt((C * C).sum(axis=0))
    return C, active


def _decay(O: np.ndarray, n: int) -> np.ndarray:
    """Each onset value held over ``n`` frames after it, falling linearly (a causal smoothing)."""
    if n <= 1:
        return O
    out = O.copy()
    for k in range(1, n):
        w = 1.0 - k / n
        out[:, k:] = np.maximum(out[:, k:], w * O[:, :-k])
    return out


def _normalise_onsets(O: np.ndarray) -> np.ndarray:
    """Onset vectors scaled so that the strong ones have norm 1 (weak ones stay weak)."""
    norm = np.sqrt((O * O).sum(axis=0))
    ref = np.percentile(norm[norm > 0], 90) if np.any(norm > 0) else 1.0
    return O / max(ref, 1e-12) / np.maximum(1.0, norm / max(ref, 1e-12))


_MIN_PITCH, _MAX_PITCH = 21, 108


def _band_energies(x: np.ndarray, n_fft: int, hop: int, M: np.ndarray, block: int = 2048) -> np.ndarray:
    """``M`` @ |STFT|² of ``x`` (centred frames as :func:`demixer.core.stft.stft`), a block of frames at
    a time so that memory stays small for long recordings."""
    n_frames = n_frames_for(x.size, hop)
    half = n_fft // 2
    total = max((n_frames - 1) * hop + n_fft, half + x.size)
    padded = np.zeros(total, dtype=np.float32)
    padded[half: half + x.size] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    win = _window("hann", n_fft, np.float32)
    out = np.empty((M.shape[0], n_frames))
    for i in range(0, n_frames, block):
        spec = rfft(frames[i: i + block] * win)
        power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
        out[:, i: i + block] = M @ power.T
    return out


def audio_features(signal: np.ndarray, sr: float, params: SyncParams | None = None) -> Features:
    """Chroma and onset features of a mono signal (1-D float array at ``sr`` Hz)."""
    p = params or SyncParams()
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("audio_features needs a mono signal of at least 2 samples")
    hop = max(1, int(round(p.hop_s * sr)))
    n_fft = max(64, 2 * int(round(p.n_fft_s * sr / 2)))
    hop = min(hop, n_fft // 2)
    n_bins = n_fft // 2 + 1
    freqs = np.arange(n_bins) * (sr / n_fft)
    with np.errstate(divide="ignore"):
        pitch = np.round(69.0 + 12.0 * np.log2(freqs / 440.0))
    keep = np.flatnonzero((pitch >= _MIN_PITCH) & (pitch <= _MAX_PITCH + 24) & (freqs > 0))
    pitches = np.arange(_MIN_PITCH, _MAX_PITCH + 25)
    M = np.zeros((pitches.size, n_bins), dtype=np.float32)
    M[(pitch[keep] - _MIN_PITCH).astype(int), keep] = 1.0
    P = _band_energies(x, n_fft, hop, M)
    ref = float(np.percentile(P.sum(axis=0), 95)) or 1.0
    L = np.log1p(P * (p.gamma / ref))  # log compression relative to the loud frames
    C = _fold(L, pitches)
    floor = float(np.log1p(1e4 * 10 ** (-p.silence_db / 10.0))) * 12.0 ** 0.5
    chroma, active = _normalise_chroma(C, floor)
    D = np.diff(L, axis=1, prepend=L[:, :1])
    O = _decay(np.maximum(D, 0.0), max(1, int(round(p.onset_decay_s / (hop / sr)))))
    return Features(chroma=chroma, onset=_normalise_onsets(O), hop_s=hop / sr, active=active)


def score_features(notes: Sequence[Note], hop_s: float, params: SyncParams | None = None,
                   n_frames: int | None = None) -> Features:
    """Chroma and onset features synthesised from ``notes`` on a ``hop_s`` grid (frame i at i·hop_s):
    each note sounds with ``params.harmonics`` from its onset frame to its offset frame and is an onset
    (held ``onset_decay_s``, as the recording's) at its first frame, whether or not it repeats a pitch."""
    p = params or SyncParams()
    notes = list(notes)
    end = max((n.offset for n in notes), default=0.0)
    N = n_frames if n_frames is not None else int(math.ceil(end / hop_s)) + 1
    pitches = np.arange(_MIN_PITCH, _MAX_PITCH + 25)
    roll = np.zeros((pitches.size, N))
    onsets = np.zeros((pitches.size, N))
    offsets_h = [int(round(12 * math.log2(h + 1))) for h in range(len(p.harmonics))]
    for n in notes:
        a = int(round(n.onset / hop_s))
        b = max(a + 1, int(round(n.offset / hop_s)))
        if a >= N:
            continue
        for off, w in zip(offsets_h, p.harmonics, strict=True):
            k = int(n.pitch) + off - _MIN_PITCH
            if 0 <= k < pitches.size:
                roll[k, a:b] = np.maximum(roll[k, a:b], w)
                onsets[k, a] = max(onsets[k, a], w)
    C = _fold(np.log1p(100.0 * roll), pitches)
    chroma, active = _normalise_chroma(C, 1e-3)
    O = _decay(onsets, max(1, int(round(p.onset_decay_s / hop_s))))
    return Features(chroma=chroma, onset=_normalise_onsets(O), hop_s=hop_s, active=active)


# --------------------------------------------------------------------------------------------------
# Dynamic time warping


def _stack(f: Features, weight: float, activity: float = 1.0) -> np.ndarray:
    """Frames as rows [chroma | √w·onset | √(2a)·active]: with :func:`_costs` the local cost is
    (1 − chroma·chroma) + w/2·‖onset − onset‖² + a·|active − active| (sound against silence costs a)."""
    act = np.asarray(f.active, dtype=np.float64)[None, :]
    return np.ascontiguousarray(
        np.concatenate([f.chroma, math.sqrt(weight) * f.onset, math.sqrt(2.0 * activity) * act]).T
    )


def _costs(S: np.ndarray, A: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of the local cost c(i, j) = (1 − s_i·a_j) + ½‖o_i − o_j‖² for rows of S, A (o: all but the
    12 chroma columns, already weighted by :func:`_stack`)."""
    so = (S[:, 12:] ** 2).sum(axis=1)
    ao = (A[:, 12:] ** 2).sum(axis=1)
    base_s = 1.0 + 0.5 * so  # (w/2)(‖o_s‖² + ‖o_a‖²) with the √w already in the rows
    return base_s, 0.5 * ao


def _row_cost(S: np.ndarray, A: np.ndarray, i: int, lo: int, hi: int, bs, ba) -> np.ndarray:
    s = S[i]
    dot = A[lo:hi, :12] @ s[:12] + A[lo:hi, 12:] @ s[12:]
    return np.maximum(bs[i] + ba[lo:hi] - dot, 0.0)  # (1 − chroma·) + (‖o_s‖²+‖o_a‖²)/2·w − w·o_s·o_a


def _dtw_band(S: np.ndarray, A: np.ndarray, lo: np.ndarray, hi: np.ndarray, weight: float,
              penalty: np.ndarray | None = None, free_end: bool = False
              ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """DTW of score rows S (N × d) against audio rows A (M × d) from (0, 0) to (N−1, M−1), row i
    restricted to columns [lo[i], hi[i]) (non-decreasing, lo[0] = 0, hi[-1] = M, overlapping rows).
    ``penalty[i]``: added to every horizontal or vertical step into row i (a diagonal step costs 2c, the
    others c + penalty). ``free_end``: the path may end in any row of the last column (the one with the
    lowest cost per unit of path length): the recording covers only the beginning of the score.
    Returns (path rows, path cols, path cost, mean cost of the visited band cells)."""
    N, M = S.shape[0], A.shape[0]
    bs, ba = _costs(S, A, weight)
    # the choices per row, ragged (row i holds hi[i] − lo[i] cells): a rectangle N × the widest row was
    # 13 GiB for a 60-minute recording whose coarse path had one long horizontal run (issue 14)
    start = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.asarray(hi, np.int64) - np.asarray(lo, np.int64), out=start[1:])
    back = np.zeros(int(start[-1]), dtype=np.int8)  # 0 diagonal, 1 up, 2 left
    cost_sum = 0.0
    cost_n = 0
    prev = None
    plo = phi = 0
    inf = np.inf
    pen = np.zeros(N) if penalty is None else penalty
    last_col = np.full(N, np.inf)
    for i in range(N):
        a, b = int(lo[i]), int(hi[i])
        c = _row_cost(S, A, i, a, b, bs, ba)
        lam = float(pen[i])
        cost_sum += float(c.sum())
        cost_n += c.size
        cl = c + lam
        if prev is None:
            cand = np.full(b - a, inf)
            if a == 0:
                cand[0] = c[0]
            step = np.zeros(b - a, dtype=np.int8)
        else:
            # prev_ext[k] = D[i-1, a-1+k] for k in [0, b-a]: D[i-1, j-1] (diagonal) is prev_ext[:-1],
            # D[i-1, j] (up) is prev_ext[1:] — one padded copy of the previous row serves both
            ext = np.full(b - a + 1, inf)
            s0, s1 = max(a - 1, plo), min(b, phi)
            if s1 > s0:
                ext[s0 - a + 1:s1 - a + 1] = prev[s0 - plo:s1 - plo]
            dgc = ext[:-1] + 2.0 * c
            upc = ext[1:] + cl
            step = (upc < dgc).astype(np.int8)
            cand = np.minimum(dgc, upc)
        # horizontal steps: d_j = min(cand_j, d_{j-1} + c_j) = S_j + cummin(cand_k − S_k)
        Sc = np.cumsum(cl)
        d = Sc + np.minimum.accumulate(cand - Sc)
        # the choice of each cell, decided against its left neighbour (rounding in the running sums
        # must not make a cell look as if reached from the left when it was not)
        from_left = np.empty_like(d)
        from_left[0] = inf
        np.add(d[:-1], c[1:], out=from_left[1:])  # (d + c) + λ, in the order the running sum was checked
        from_left[1:] += lam
        left = from_left < cand
        d = np.minimum(cand, from_left)
        step[left] = 2
        back[start[i] : start[i] + b - a] = step
        if b == M:
            last_col[i] = d[-1]
        prev, plo, phi = d, a, b
    end = N - 1
    if free_end:
        end = int(np.argmin(last_col / (np.arange(N) + 1 + M)))
    total = float(last_col[end])
    # backtrack
    rows: list[int] = []
    cols: list[int] = []
    i, j = end, M - 1
    while True:
        rows.append(i)
        cols.append(j)
        if i == 0 and j == 0:
            break
        s = back[start[i] + j - int(lo[i])]
        if i == 0:
            s = 2
        if s == 0:
            i, j = i - 1, j - 1
        elif s == 1:
            i -= 1
        else:
            j -= 1
    return np.array(rows[::-1]), np.array(cols[::-1]), total, cost_sum / max(cost_n, 1)


def _band_from_coarse(fr: np.ndarray, cc: np.ndarray, k: int, N: int, M: int, radius: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Fine-grid column ranges per fine row from a coarse path (fine row of each coarse cell ``fr``,
    coarse column ``cc``; factor ``k``), widened by ``radius`` frames each side."""
    lo = np.full(N, M, dtype=np.int64)
    hi = np.zeros(N, dtype=np.int64)
    for d in range(k):  # each coarse cell covers fine rows fr .. fr + k − 1 and columns cc·k .. cc·k + k − 1
        r = np.minimum(fr + d, N - 1)
        np.minimum.at(lo, r, cc * k)
        np.maximum.at(hi, r, cc * k + k)
    filled = hi > 0
    idx = np.flatnonzero(filled)
    lo = np.interp(np.arange(N), idx, lo[idx]).astype(np.int64)
    hi = np.interp(np.arange(N), idx, hi[idx]).astype(np.int64)
    lo = np.clip(lo - radius, 0, M - 1)
    hi = np.clip(hi + radius, 1, M)
    lo = np.minimum.accumulate(lo[::-1])[::-1]
    hi = np.maximum.accumulate(hi)
    lo[0] = 0
    hi[-1] = M
    hi[:-1] = np.maximum(hi[:-1], lo[1:] + 1)  # consecutive rows overlap
    return lo, hi


def _silence_row(d: int) -> np.ndarray:
    row = np.zeros(d)
    row[:12] = 1.0 / math.sqrt(12.0)
    return row


def _dtw_segment(Sf: Features, Af: Features, s0: int, s1: int, a0: int, a1: int, p: SyncParams,
                 pad_start: bool, pad_end: bool, penalty: float = 0.0, coarse_only: bool = False,
                 free_end: bool = False) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Coarse-to-fine DTW of score frames [s0, s1) against audio frames [a0, a1), both ends fixed;
    with ``pad_start`` / ``pad_end`` a silent score frame is added before / after (it absorbs the
    recording's lead-in / trailing silence). Returns fine path (score frames, audio frames, both
    absolute, padding rows left out), path cost per unit length and chance cost. ``penalty`` is added
    to each horizontal or vertical step except on the padding rows (a lead-in costs nothing);
    ``coarse_only``: the coarse path alone (in fine frames, every ``coarse``-th)."""
    k = p.coarse
    S = _stack(Sf, p.onset_weight, p.activity_weight)[s0:s1]
    A = _stack(Af, p.onset_weight, p.activity_weight)[a0:a1]
    d = S.shape[1]
    parts = [S]
    if pad_start:
        parts.insert(0, _silence_row(d)[None])
    if pad_end:
        parts.append(_silence_row(d)[None])
    S = np.concatenate(parts)
    N, M = S.shape[0], A.shape[0]

    def pens(n: int) -> np.ndarray:
        out = np.full(n, float(penalty))
        if pad_start:
            out[0] = 0.0
        if pad_end:
            out[-1] = 0.0
        return out

    radius = max(1, int(round(p.band_s / Sf.hop_s)))
    pr, pc, total = _dtw_levels(S, A, pens(N), pad_start, pad_end, k, radius, p.onset_weight, free_end,
                                coarse_only)
    chance = _chance(_pool_padded(S, k, pad_start, pad_end) if k > 1 else S, _pool_rows(A, k) if k > 1 else A)
    off = 1 if pad_start else 0
    pr = pr - off
    real = (pr >= 0) & (pr < s1 - s0)  # the padding rows' pairs are the lead-in and the trailing silence
    return pr[real] + s0, pc[real] + a0, total / (int(pr.max()) + 1 + M), chance


#: a DTW level with more cells than this is guided by a coarser one
_FULL_CELLS = 1_500_000


def _pool_padded(S: np.ndarray, k: int, pad_start: bool, pad_end: bool) -> np.ndarray:
    """Score rows pooled by ``k``; the padding rows stay rows of their own."""
    core = S[1 if pad_start else 0: S.shape[0] - (1 if pad_end else 0)]
    return np.concatenate([S[:1]] * pad_start + [_pool_rows(core, k)] + [S[-1:]] * pad_end)


def _dtw_levels(S: np.ndarray, A: np.ndarray, pen: np.ndarray, pad_start: bool, pad_end: bool, k: int,
                radius: int, weight: float, free_end: bool, coarse_only: bool = False
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Multi-level DTW: a level too large for a full matrix (``_FULL_CELLS``) is searched in a band of
    ``radius`` frames around the path of the level ``k`` times coarser (recursively), so cost and memory
    grow linearly with the length. ``coarse_only``: the next coarser level's path (in this level's
    frames). Returns (rows, cols, path cost)."""
    N, M = S.shape[0], A.shape[0]
    if k == 1 or (N * M <= _FULL_CELLS and not coarse_only) or min(N, M) < 4 * k:
        pr, pc, total, _ = _dtw_band(S, A, np.zeros(N, dtype=np.int64), np.full(N, M, dtype=np.int64), weight,
                                     pen, free_end)
        return pr, pc, total
    Sc = _pool_padded(S, k, pad_start, pad_end)
    Ac = _pool_rows(A, k)
    penc = np.full(Sc.shape[0], float(pen.max()) if pen.size else 0.0)
    if pad_start:
        penc[0] = 0.0
    if pad_end:
        penc[-1] = 0.0
    cr, cc, ctotal = _dtw_levels(Sc, Ac, penc, pad_start, pad_end, k, max(3, radius // k), weight, free_end)
    off = 1 if pad_start else 0
    # coarse row r (after the start padding) covers fine rows off + (r − off)·k …
    fine_r = np.where(cr < off, 0, off + (cr - off) * k)
    fine_r = np.where(cr == Sc.shape[0] - 1, N - 1, fine_r) if pad_end else np.minimum(fine_r, N - 1)
    if coarse_only:
        return fine_r, np.minimum(cc * k, M - 1), ctotal * k
    lo, hi = _band_from_coarse(fine_r, cc, k, N, M, radius)
    pr, pc, total, _ = _dtw_band(S, A, lo, hi, weight, pen, free_end)
    return pr, pc, total


def _chance(S: np.ndarray, A: np.ndarray) -> float:
    """The local cost averaged over every pair of a score row and an audio row (from the means)."""
    ms, ma = S.mean(axis=0), A.mean(axis=0)
    return float(1.0 - ms[:12] @ ma[:12] + 0.5 * (S[:, 12:] ** 2).sum(axis=1).mean()
                 + 0.5 * (A[:, 12:] ** 2).sum(axis=1).mean() - ms[12:] @ ma[12:])


def _pool_rows(X: np.ndarray, k: int) -> np.ndarray:
    n = X.shape[0]
    m = -(-n // k)
    pad = m * k - n
    if pad:
        X = np.concatenate([X, np.repeat(X[-1:], pad, axis=0)])
    B = X.reshape(m, k, X.shape[1])
    C = B[:, :, :12].mean(axis=1)
    C /= np.maximum(np.sqrt((C * C).sum(axis=1, keepdims=True)), 1e-12)
    O = B[:, :, 12:].max(axis=1)
    return np.concatenate([C, O], axis=1)


# --------------------------------------------------------------------------------------------------
# Public


def _check_anchors(anchors: Iterable[Sequence[float]], s_end: float, a_end: float) -> list[tuple[float, float]]:
    out = sorted((float(s), float(a)) for s, a in anchors)
    for s, a in out:
        if not (math.isfinite(s) and math.isfinite(a)) or s < 0 or a < 0:
            raise ValueError(f"anchor ({s}, {a}) must hold two finite times >= 0")
        if a > a_end:
            raise ValueError(f"anchor audio time {a:.3f} s is past the recording's end ({a_end:.3f} s)")
    for (s, a), (s2, a2) in zip(out, out[1:], strict=False):
        if not (s2 > s and a2 > a):
            raise ValueError(f"anchors ({s:.3f}, {a:.3f}) and ({s2:.3f}, {a2:.3f}) cross or coincide: "
                             "an anchor later in the score must be later in the recording")
    return out


def _warp(notes: list[Note], audio: Features, anchors: list[tuple[float, float]], p: SyncParams,
          scale: float, penalty: float, coarse_only: bool, subsequence: bool = False
          ) -> tuple[np.ndarray, np.ndarray, float]:
    """One DTW of the notes with their times divided by ``scale`` (a global tempo ratio) through the
    anchors. Returns the path (score frames of the scaled score, audio frames) and the relative cost."""
    h = audio.hop_s
    if scale != 1.0:
        notes = [dataclasses.replace(n, onset=n.onset / scale, offset=n.offset / scale) for n in notes]
    score = score_features(notes, h, p)
    N, M = score.n_frames, audio.n_frames
    cuts = [(0, 0)]
    for s, a in anchors:
        i = min(N - 1, int(round(s / scale / h)))
        j = min(M - 1, int(round(a / h)))
        if i > cuts[-1][0] and j > cuts[-1][1]:
            cuts.append((i, j))
    cuts.append((N, M))
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    costs: list[tuple[float, float, int]] = []
    for k in range(len(cuts) - 1):
        (s0, a0), (s1, a1) = cuts[k], cuts[k + 1]
        first, last = k == 0, k == len(cuts) - 2
        # a segment ends where the next begins (the anchor cell belongs to the next one)
        s1e = s1 if last else s1 + 1
        a1e = a1 if last else a1 + 1
        pr, pc, cost, chance = _dtw_segment(score, audio, s0, s1e, a0, a1e, p, first, last and not subsequence,
                                            penalty, coarse_only, free_end=last and subsequence)
        if not last:
            keep = ~((pr == s1) & (pc == a1)) & (pr <= s1)
            pr, pc = pr[keep], pc[keep]
        rows.append(pr)
        cols.append(pc)
        costs.append((cost, chance, max(1, pr.size)))
    w = np.array([c[2] for c in costs], dtype=float)
    cost = float(np.dot([c[0] for c in costs], w) / w.sum())
    chance = float(np.dot([c[1] for c in costs], w) / w.sum())
    return np.concatenate(rows), np.concatenate(cols), cost / max(chance, 1e-12)


#: relative path costs (path cost over chance) that map to confidence 0 and 1. Measured on the dev and
#: dev-performed sets (8 recordings, every score against every recording): the right score gave
#: 0.31–0.47 (0.47: a fast ragtime), a wrong one 0.50–0.71, so confidence 0.3 sits at 0.49.
_REL_MATCH, _REL_CHANCE = 0.35, 0.55


#: a score longer than this many times the recording's sounding part is aligned as a sub-sequence
SUBSEQUENCE_RATIO = 2.0


def sounding_duration(f: Features) -> float:
    """Seconds from the first to the last sounding frame."""
    act = np.flatnonzero(f.active)
    return float((act[-1] - act[0] + 1) * f.hop_s) if act.size else 0.0


def _span_ratio(s_t: np.ndarray, a_t: np.ndarray, s0: float, s1: float) -> float:
    a0, a1 = np.interp([s0, s1], s_t, a_t)
    return (s1 - s0) / max(float(a1 - a0), 1e-9) if s1 > s0 else 1.0


def synchronise(
    notes: Sequence[Note],
    audio: Features,
    anchors: Iterable[Sequence[float]] = (),
    params: SyncParams | None = None,
    subsequence: bool | None = None,
) -> Alignment:
    """Warp ``notes`` (score time) onto the recording whose :func:`audio_features` are ``audio``.

    ``anchors``: ``(score_time, audio_time)`` pairs the warp must pass through (strictly increasing in
    both). ``subsequence``: the recording plays only the beginning of the score (the warp may end
    anywhere in the score; later notes map past the recording's end). None: when the score, at its
    notated tempo, lasts more than ``SUBSEQUENCE_RATIO`` times the recording (beyond the supported tempo
    range). Returns an :class:`Alignment`; map notes with :func:`warp_notes`.

    Two passes: a coarse warp gives the global tempo; the score is scaled by it, so that the second,
    coarse-to-fine warp can charge ``params.step_penalty`` for each step off the diagonal (a local
    tempo far from the global one) without preferring any global tempo.
    """
    p = params or SyncParams()
    notes = list(notes)
    if not notes:
        raise ValueError("score has no notes")
    h = audio.hop_s
    span = (min(n.onset for n in notes), max(n.offset for n in notes))
    anchor_list = _check_anchors(anchors, span[1], audio.duration)
    if subsequence is None:
        subsequence = span[1] - span[0] > SUBSEQUENCE_RATIO * sounding_duration(audio)
    scale = 1.0
    if p.step_penalty > 0:
        pr, pc, _ = _warp(notes, audio, anchor_list, p, 1.0, 0.0, True, subsequence)
        s_t, a_t = _path_to_curve(pr, pc, h)
        end = min(span[1], float(s_t[-1])) if subsequence else span[1]
        scale = float(np.clip(_span_ratio(s_t, a_t, span[0], end), 0.25, 4.0))
    pr, pc, rel = _warp(notes, audio, anchor_list, p, scale, p.step_penalty, False, subsequence)
    s_t, a_t = _path_to_curve(pr, pc, h)
    s_t = s_t * scale
    confidence = float(np.clip((_REL_CHANCE - rel) / (_REL_CHANCE - _REL_MATCH), 0.0, 1.0))
    for s, a in anchor_list:  # exact, not only to the frame
        s_t, a_t = _pin(s_t, a_t, s, a)
    if subsequence:  # the tempo and lead-in describe the part that was played
        span = (span[0], min(span[1], float(s_t[-1])))
    return Alignment(score_times=s_t, audio_times=a_t, confidence=confidence, anchors=tuple(anchor_list),
                     score_span=span, relative_cost=rel)


def _path_to_curve(pr: np.ndarray, pc: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """A DTW path (frames) → a strictly increasing score-time axis and its audio times: each score
    frame maps to the middle of the audio frames it is paired with."""
    uniq, start = np.unique(pr, return_index=True)
    end = np.r_[start[1:], pr.size]
    first = pc[start]
    last = pc[end - 1]
    # frames are instants (i·h); a score frame paired with a run of audio frames maps to its middle
    a = 0.5 * (first + last) * h
    s = uniq * h
    return s.astype(np.float64), np.maximum.accumulate(a.astype(np.float64))


def _pin(s_t: np.ndarray, a_t: np.ndarray, s: float, a: float) -> tuple[np.ndarray, np.ndarray]:
    keep = s_t != s
    s_t = np.r_[s_t[keep], s]
    a_t = np.r_[a_t[keep], a]
    order = np.argsort(s_t, kind="stable")
    s_t, a_t = s_t[order], a_t[order]
    i = int(np.searchsorted(s_t, s))
    a_t[:i] = np.minimum(a_t[:i], a)
    a_t[i + 1:] = np.maximum(a_t[i + 1:], a)
    return s_t, a_t


def warp_times(times, alignment: Alignment) -> np.ndarray:
    """Score times → audio times (never negative)."""
    return np.maximum(np.asarray(alignment.to_audio(np.asarray(times, dtype=np.float64))), 0.0)


def warp_notes(notes: Sequence[Note], alignment: Alignment, min_duration: float = 0.02) -> list[Note]:
    """The notes in the recording's time (same order; other fields unchanged)."""
    notes = list(notes)
    if not notes:
        return []
    on = warp_times([n.onset for n in notes], alignment)
    off = warp_times([n.offset for n in notes], alignment)
    off = np.maximum(off, on + min_duration)
    return [dataclasses.replace(n, onset=float(a), offset=float(b)) for n, a, b in zip(notes, on, off, strict=True)]
