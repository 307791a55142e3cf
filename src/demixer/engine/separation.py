r"""Score-informed separation, headless (DESIGN.md §2.3, §2.5): audio + score → sources.

    analyse()   mono downmix at the analysis rate → STFT → V
    initialise() score → components, templates, allowed regions (W0, H0, allow_W, allow_H)
    fit()       runs :class:`demixer.engine.fit.Fit`, the one fit entry point: the staged procedure of
                :mod:`demixer.core.refine` (scout and align → templates → activations), else one joint fit
    stems()     soft masks from W·H per source, applied to every channel of the file's own STFT

The CLI's ``separate`` runs exactly these steps; the window's Run runs the same ``Fit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from demixer.core.analysis import Analysis, analyse
from demixer.core.audio import Audio
from demixer.core.constraints import (
    ComponentInfo,
    ScoreInit,
    ScoreParams,
    build_score_constraints,
    default_onset_policy,
    onset_enabled,
    onset_verdict,
    split_by_pitch,
)
from demixer.core.masks import group_indices, resample_masks, separate_blocks, soft_masks, source_models
from demixer.core.notes import Note
from demixer.core.refine import RefineParams
from demixer.core.stft import STFTParams, bin_freqs, frame_times, log_compress, spectrogram
from demixer.engine.job import Snapshot

__all__ = [
    "SeparationSettings",
    "Analysis",
    "ScorePlan",
    "RefineParams",
    "analyse",
    "initialise",
    "fit",
    "stems",
    "stem_blocks",
    "separate_audio",
    "RESIDUAL",
]

RESIDUAL = "residual"


@dataclass(frozen=True)
class SeparationSettings:
    """Everything that decides a separation. Defaults are what ``demixer separate`` uses.

    Defaults measured on the dev set (benchmarks/bench_quality.py): a 5120-point window with hop 1024
    (232 ms / 46 ms at 22050 Hz). Longer windows resolve the partials of the lower voices (a bass's even
    harmonics beside the tenor's): the ideal-mask ceiling of the chorales rises from 10.05 dB at 4096 to
    10.62 at 8192, and the fitted chorales gain steadily with the window on the dev, unseen and performed
    sets, while struck notes want a shorter window (the unseen piano loses from 6144 on). With the
    main-lobe pitch bands (:func:`~demixer.core.constraints.harmonic_template`) 5120–7168 is a plateau of
    the all-sources mean; 5120 is its cheapest point and the one where no category loses on any set
    against 4096 (dev 9.62 → 9.71, unseen 11.91 → 11.95 dB: DESIGN §2.1, issue 15's note s15c); hop 512
    gained ≤ 0.05 dB for twice the frames. The staged fit
    aligns notes on its own finer scout grid; ``n_iter`` is the total over the stages of
    ``refine`` (25 % scout, 50 % templates, 25 % activations, in which the templates of struck groups are
    refitted; without a struck group the activation stage is one iteration: :class:`RefineParams`); mask exponent 2
    (Wiener-like: the models' magnitudes squared as power estimates), which beat 1.5 on the dev set and on unseen pieces
    (benchmarks/make_unseen.py; issue 15's note: +0.04 / +0.11 dB over all sources, +0.10 / +0.34 dB on
    piano; 2.5 and 3 lose on chorales).
    """

    stft: STFTParams = field(default_factory=lambda: STFTParams(n_fft=5120, hop=1024))
    model: str = "nmf-kl"
    n_iter: int = 100
    score: ScoreParams = field(default_factory=ScoreParams)
    alpha: float = 2.0  # mask exponent: 1 = ratio of magnitudes, 2 = Wiener-like
    compress: float | None = None  # fit log(1 + γ|X|) instead of |X| when set
    normalize: bool | str = False
    seed: int = 0  # reserved for random parts of an initialisation (score-informed init is deterministic)
    refine: RefineParams | None = field(default_factory=RefineParams)  # None: one joint fit of W and H

    def with_(self, **changes) -> SeparationSettings:
        return replace(self, **changes)


@dataclass(eq=False)
class ScorePlan(ScoreInit):
    """A :class:`ScoreInit` that remembers where it came from, for the staged fit: the notes (after any
    ``split_pitch``), the score parameters, which groups have onset templates, and which of those were
    decided by default because the score names no instrument (``auto_onsets``: the fit decides them
    from the audio). ``allow_W0`` / ``allow_H0`` are the masks as made: when the masks have been edited
    since (painted constraints), every stage of the fit respects the edits (:mod:`demixer.engine.fit`)."""

    notes: list[Note] = field(default_factory=list)
    score: ScoreParams = field(default_factory=ScoreParams)
    onset_groups: dict[str, bool] = field(default_factory=dict)
    auto_onsets: frozenset[str] = frozenset()
    allow_W0: np.ndarray | None = None
    allow_H0: np.ndarray | None = None

    def unedited(self) -> bool:
        return (
            self.allow_W0 is not None
            and self.allow_H0 is not None
            and np.array_equal(self.allow_W, self.allow_W0)
            and np.array_equal(self.allow_H, self.allow_H0)
        )


def score_notes(notes: Sequence[Note], score: ScoreParams) -> list[Note]:
    """The notes as the components are made from them (regrouped by pitch when ``score.split_pitch``)."""
    notes = list(notes)
    return split_by_pitch(notes, score.split_pitch) if score.split_pitch is not None and notes else notes


def onset_plan(notes: Sequence[Note], score: ScoreParams) -> tuple[dict[str, bool], frozenset[str]]:
    """(group → onset templates on, groups the audio decides because the score names no instrument)."""
    by_group: dict[str, list[Note]] = {}
    for n in notes:
        by_group.setdefault(n.group, []).append(n)
    onset_groups = {g: onset_enabled(score.onset_templates, g, gn) for g, gn in by_group.items()}
    auto = frozenset(
        g for g, gn in by_group.items()
        if score.onset_templates is default_onset_policy and onset_verdict(g, gn) is None
    )
    return onset_groups, auto


def initialise(notes: Sequence[Note], analysis: Analysis, score: ScoreParams | None = None) -> ScoreInit:
    """Components, templates and allowed regions from a score for this analysis grid."""
    score = score or ScoreParams()
    notes = score_notes(notes, score)
    if not notes:
        raise ValueError("score has no notes")
    p = analysis.params
    init = build_score_constraints(
        notes, n_bins=p.n_bins, n_frames=analysis.n_frames, sr=p.sr, n_fft=p.n_fft, hop=p.hop, params=score,
    )
    onset_groups, auto = onset_plan(notes, score)
    return ScorePlan(
        W0=init.W0, H0=init.H0, allow_W=init.allow_W, allow_H=init.allow_H, components=init.components,
        sources=init.sources, notes=notes, score=score, onset_groups=onset_groups, auto_onsets=auto,
        allow_W0=init.allow_W.copy(), allow_H0=init.allow_H.copy(),
    )


def fit(
    analysis: Analysis,
    init: ScoreInit,
    settings: SeparationSettings,
    progress: Callable[[Snapshot], None] | None = None,
    job_out: list | None = None,
) -> Snapshot:
    """Run the model from the score's initialisation through :class:`demixer.engine.fit.Fit` (the one
    fit entry point): the staged fit for a :class:`ScorePlan` (painted masks respected in every stage),
    else one joint fit. Returns the final snapshot, whose ``losses`` hold the whole loss curve.
    ``job_out``, if given, receives the Fit (so another thread can cancel it)."""
    from demixer.engine.fit import Fit, FitState  # engine.fit builds on this module

    staged = isinstance(init, ScorePlan)
    runner = Fit(analysis, init.notes if staged else None, settings, FitState.from_init(init),
                 "staged" if staged else "warm")
    if job_out is not None:
        job_out.append(runner)
    return runner.run(progress)


def _scout_analysis(analysis: Analysis, refine: RefineParams) -> Analysis:
    """The scout's analysis: the same signal on a finer time grid (or ``analysis`` itself when it has no
    signal or already is that grid)."""
    p = analysis.params
    n_fft = max(16, 2 * int(round(refine.scout_window_s * p.sr / 2)))
    hop = max(1, min(n_fft // 2, int(round(refine.scout_hop_s * p.sr))))
    if analysis.signal is None or (n_fft == p.n_fft and hop == p.hop) or analysis.signal.size < 2:
        return analysis
    q = STFTParams(n_fft=n_fft, hop=hop, window=p.window, sr=p.sr)
    V = spectrogram(analysis.signal, q.n_fft, q.hop, q.window)
    if analysis.compress:
        V = log_compress(V, analysis.compress)
    # no signal: the scout's analysis is only fitted, and a caller may then drop the signal (the CLI does)
    return Analysis(params=q, V=V, duration=analysis.duration, signal=None, compress=analysis.compress)


def source_names(components: Sequence[ComponentInfo], sources: Sequence[str]) -> tuple[list[str], list]:
    """Output names in order (the residual last, if any component has no source) and index groups."""
    groups, has_residual = group_indices([c.source or None for c in components], list(sources))
    names = [s if s else "source" for s in sources]
    if has_residual:
        names.append(RESIDUAL)
    return names, groups


def masks_for(W, H, components, sources, alpha: float = 1.0) -> tuple[list[str], np.ndarray]:
    names, groups = source_names(components, sources)
    return names, soft_masks(source_models(W, H, groups), alpha, active=[len(g) > 0 for g in groups], overwrite=True)


#: frames per block of the stem stage (the masks, every channel's STFT and the overlap-add of one block)
STEM_BLOCK_FRAMES = 256


def stem_blocks(
    signal,
    sr: int,
    n_samples: int,
    analysis: Analysis,
    W: np.ndarray,
    H: np.ndarray,
    components: Sequence[ComponentInfo],
    sources: Sequence[str],
    alpha: float = 1.0,
    block: int = STEM_BLOCK_FRAMES,
):
    """The masked sources of a recording, a block at a time: returns (names, generator of
    ``(first sample, [block of each source])``), blocks (channels × n) float32 in time order.

    ``signal`` is the recording's samples (channels × n) at ``sr`` Hz, or a callable ``(s0, s1) →
    samples[:, s0:s1]`` zero-padded outside (a file read as it goes). The masks are made per block of
    frames from W·H (resampled from the analysis grid to the file's when the rates differ), so memory
    does not grow with the length of the recording."""
    names, groups = source_names(components, sources)
    active = [len(g) > 0 for g in groups]  # a source with no components is silent (DESIGN.md §2.5)
    p = analysis.params
    q = p if sr == p.sr else p.scaled_to(sr)
    W = np.asarray(W)
    H = np.asarray(H)
    same_grid = q is p and H.shape[1] == -(-int(n_samples) // q.hop) + 1
    dt_a = p.hop / p.sr
    n_a = H.shape[1]
    f_src, f_dst = analysis.freqs, bin_freqs(q.n_fft, q.sr)

    def masks_for(f0: int, f1: int) -> np.ndarray:
        if same_grid:
            return soft_masks(source_models(W, H[:, f0:f1], groups), alpha, active).astype(np.float32, copy=False)
        t = frame_times(f1, q.sr, q.hop)[f0:f1]
        i0 = max(0, min(n_a - 1, int(np.floor(t[0] / dt_a))))
        i1 = max(i0 + 1, min(n_a, int(np.floor(t[-1] / dt_a)) + 2))
        m = soft_masks(source_models(W, H[:, i0:i1], groups), alpha, active)
        t_src = frame_times(n_a, p.sr, p.hop)[i0:i1]
        return resample_masks(m, f_src, t_src, f_dst, t).astype(np.float32)

    gen = separate_blocks(signal, masks_for, int(n_samples), q.n_fft, q.hop, q.window, block=block)
    return names, gen


def stems(
    audio: Audio,
    analysis: Analysis,
    W: np.ndarray,
    H: np.ndarray,
    components: Sequence[ComponentInfo],
    sources: Sequence[str],
    alpha: float = 1.0,
) -> dict[str, np.ndarray]:
    """Masked sources of ``audio`` (each channels × samples, float32, the input's length and rate);
    they add up to the input. The residual (components with no source) is included when non-empty.
    Made block by block (:func:`stem_blocks`): only the outputs grow with the length."""
    names, gen = stem_blocks(audio.samples, audio.sr, audio.n_samples, analysis, W, H, components, sources, alpha)
    out = {name: np.empty((audio.channels, audio.n_samples), dtype=np.float32) for name in names}
    for t0, blocks in gen:
        for name, b in zip(names, blocks, strict=True):
            out[name][:, t0 : t0 + b.shape[-1]] = b
    return out


def separate_audio(
    audio: Audio,
    notes: Sequence[Note],
    settings: SeparationSettings | None = None,
    progress: Callable[[Snapshot], None] | None = None,
) -> tuple[dict[str, np.ndarray], Snapshot, ScoreInit]:
    """The whole pipeline: returns (stems by name, final snapshot, initialisation)."""
    settings = settings or SeparationSettings()
    analysis = analyse(audio, settings.stft, settings.compress)
    init = initialise(notes, analysis, settings.score)
    final = fit(analysis, init, settings, progress)  # the one fit entry point, as `demixer separate`
    out = stems(audio, analysis, final.W, final.H, init.components, init.sources, settings.alpha)
    return out, final, init
