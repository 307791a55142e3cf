"""Synchronise a score to a recording, headless (DESIGN.md §2.5b): what ``demixer align``, ``demixer
separate`` and the window's alignment run.

    result = align_score(audio, notes)            # coarse-to-fine DTW, then the note-level refinement
    result.notes, result.alignment                # warped (and refined) notes, the warp
    result = align_score(audio, notes, anchors=[(4.0, 6.1)], features=result.features)   # re-warp

1. :func:`demixer.core.sync.synchronise` warps the score's time axis (global tempo, lead-in, rubato);
2. the staged fit's scout (:func:`scout_refine`, the same scout and :func:`demixer.core.refine.align_notes`
   as in :func:`demixer.engine.separation.fit_staged`) moves each note's onset and offset to where its
   pitch's activation rises and falls. ``demixer separate`` skips this step here, because its staged fit
   runs that same scout anyway.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from demixer.core.constraints import ScoreParams, build_score_constraints
from demixer.core.notes import Note
from demixer.core.refine import RefineParams, align_notes, component_notes
from demixer.core.stft import STFTParams, frame_times, magnitude, stft
from demixer.core.sync import (
    Alignment,
    Features,
    SyncParams,
    audio_features,
    sounding_duration,
    synchronise,
    warp_notes,
)
from demixer.engine.job import JobSpec, run_job
from demixer.io.audio import Audio, analysis_signal
from demixer.io.score import clip_notes

__all__ = [
    "AlignResult", "ScoreMismatch", "align_score", "mismatch_reason", "scout_refine", "check_recording", "ANALYSIS_SR",
    "ALREADY_ALIGNED_S", "ALREADY_ALIGNED_TEMPO", "MIN_ONSETS", "already_aligned", "too_few_onsets",
]

ANALYSIS_SR = 22050
SCOUT_ITERATIONS = 25  # the staged fit's scout at its default 100 iterations × 25 %


#: when the warp keeps the tempo (within 5 %) and moves the onsets by less than this (median), the score
#: is aligned already, at least roughly, and is kept exactly as given (the staged fit's scout moves notes
#: by up to 0.25 s). Measured: aligned dev scores and their ±50–200 ms jittered versions move by 6–119 ms;
#: a score of another piece by 270 ms and more (bench_align.py notes).
ALREADY_ALIGNED_S = 0.15
ALREADY_ALIGNED_TEMPO = 0.05
#: with fewer distinct onsets than this there is too little to synchronise (or to judge a match)
MIN_ONSETS = 8


def too_few_onsets(notes: Sequence[Note]) -> bool:
    return len({round(n.onset, 3) for n in notes}) < MIN_ONSETS


def already_aligned(notes: Sequence[Note], alignment: Alignment) -> bool:
    """Whether ``alignment`` leaves ``notes`` where they are (tempo within 5 %, median onset move under
    0.15 s): the score was aligned (or roughly aligned) already and is kept as given."""
    notes = list(notes)
    if not notes:
        return True
    on = np.array([n.onset for n in notes])
    moved = np.abs(np.asarray(alignment.to_audio(on)).reshape(-1) - on)
    return bool(float(np.median(moved)) <= ALREADY_ALIGNED_S
                and abs(alignment.tempo_ratio - 1) <= ALREADY_ALIGNED_TEMPO)


class ScoreMismatch(ValueError):
    """The score does not fit the recording (another piece, another passage, an excerpt): ``str(e)``
    is a one-line reason."""


@dataclass(eq=False)
class AlignResult:
    notes: list[Note]
    alignment: Alignment
    features: Features = field(repr=False)
    #: the notes after the warp, before the note-level refinement
    warped: list[Note] = field(default_factory=list, repr=False)
    #: notes left out because the warp puts them past the recording's end (a recording of the score's
    #: beginning: sub-sequence alignment), and notes cut at that end
    n_dropped: int = 0
    n_clipped: int = 0


def mismatch_reason(alignment: Alignment) -> str:
    return (f"the score does not match the recording (match confidence {alignment.confidence:.2f}, "
            f"needs {Alignment.THRESHOLD:.2f}): is it the same piece and passage?")


def check_recording(features: Features) -> None:
    """Refuse a silent recording (nothing to align to)."""
    if sounding_duration(features) <= 0.0:
        raise ScoreMismatch("the recording is silent: nothing to align the score to")


#: frames × components × iterations up to which the scout runs the dense kernel when scipy.sparse is not
#: loaded yet: measured on a 20 s chorale (883 × 27 × 25): dense 0.13 s, constraint-aware 0.05 s plus
#: 0.27 s to import scipy.sparse (its array-API layer) — most of `demixer align`'s 1 s budget.
SCOUT_DENSE_WORK = 1.5e6


def _scout_method(n_frames: int, n_components: int, n_iter: int) -> str:
    small = n_frames * n_components * n_iter <= SCOUT_DENSE_WORK
    return "dense" if small and "scipy.sparse" not in sys.modules else "auto"


def scout_refine(signal: np.ndarray, sr: int, notes: Sequence[Note], *, n_iter: int = SCOUT_ITERATIONS,
                 refine: RefineParams | None = None, score: ScoreParams | None = None,
                 model: str = "nmf-kl") -> list[Note]:
    """The staged fit's scout on its own: a short score-informed fit of the pitch components on the
    scout's fine grid, then :func:`~demixer.core.refine.align_notes` from its activations."""
    refine = refine or RefineParams()
    score = replace(score or ScoreParams(), onset_templates=False, split_pitch=None)
    n_fft = max(16, 2 * int(round(refine.scout_window_s * sr / 2)))
    hop = max(1, min(n_fft // 2, int(round(refine.scout_hop_s * sr))))
    q = STFTParams(n_fft=n_fft, hop=hop, sr=sr)
    V = magnitude(stft(signal, q.n_fft, q.hop, q.window))
    notes = list(notes)
    init = build_score_constraints(notes, n_bins=q.n_bins, n_frames=V.shape[1], sr=q.sr, n_fft=q.n_fft,
                                   hop=q.hop, params=score)
    snap = run_job(JobSpec(V=V, W0=init.W0, H0=init.H0, allow_W=init.allow_W, allow_H=init.allow_H,
                           n_iter=n_iter, model=model, label="scout", track_loss=False,
                           method=_scout_method(V.shape[1], init.W0.shape[1], n_iter)))
    rows = component_notes(init.components, notes, score.per_group)
    return align_notes(notes, snap.H, rows, frame_times(V.shape[1], q.sr, q.hop), max_shift=refine.max_shift,
                       min_shift=refine.min_shift, threshold=refine.threshold, lag=refine.lag)


def align_score(
    audio: Audio,
    notes: Sequence[Note],
    *,
    anchors: Iterable[Sequence[float]] = (),
    refine: bool = True,
    features: Features | None = None,
    params: SyncParams | None = None,
    check: bool = True,
    signal: np.ndarray | None = None,
) -> AlignResult:
    """Warp ``notes`` onto ``audio`` (then refine each note with the scout unless ``refine`` is False).

    ``anchors``: ``(score_time, audio_time)`` pairs the warp passes through. ``features``: the
    recording's features from an earlier call (re-warping through new anchors then skips the audio
    analysis). With ``check`` a score that does not match (:attr:`Alignment.matches`) raises
    :class:`ScoreMismatch`. A score much longer than the recording is aligned as a sub-sequence (the
    recording plays its beginning, :func:`~demixer.core.sync.synchronise`); the notes past the
    recording's end are left out (``n_dropped``). ``notes`` and ``warped`` keep the input's order
    less those left out. ``signal``: ``analysis_signal(audio, ANALYSIS_SR)`` if the caller has it
    (``demixer separate`` analyses the same signal for its fit): the downmix and resampling are not redone.
    """
    notes = list(notes)
    if not notes:
        raise ValueError("score has no notes")
    if signal is None and (features is None or refine):
        signal = analysis_signal(audio, ANALYSIS_SR)
    if features is None:
        features = audio_features(signal, ANALYSIS_SR, params)
    anchors = list(anchors)
    if check:
        check_recording(features)
    alignment = synchronise(notes, features, anchors, params)
    if check and not alignment.matches:
        raise ScoreMismatch(mismatch_reason(alignment))
    warped = warp_notes(notes, alignment)
    duration = features.n_frames * features.hop_s if audio is None else audio.duration
    kept, n_clipped, n_dropped = clip_notes(warped, duration)
    if not kept:
        raise ScoreMismatch("no note of the score falls within the recording")
    out = kept
    if refine:
        out = scout_refine(signal, ANALYSIS_SR, kept)
    return AlignResult(notes=out, alignment=alignment, features=features, warped=kept,
                       n_dropped=n_dropped, n_clipped=n_clipped)
