"""Score-informed separation, headless (DESIGN.md §2.3, §2.5): audio + score → sources.

    analyse()   mono downmix at the analysis rate → STFT → V
    initialise() score → components, templates, allowed regions (W0, H0, allow_W, allow_H)
    fit()       runs the model as a :class:`~demixer.engine.job.Job`
    stems()     soft masks from W·H per source, applied to every channel of the file's own STFT

The CLI's ``separate`` and the GUI run exactly these steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from demixer.core.constraints import ComponentInfo, ScoreInit, ScoreParams, build_score_constraints, split_by_pitch
from demixer.core.masks import group_indices, resample_masks, separate, soft_masks, source_models
from demixer.core.notes import Note
from demixer.core.stft import STFTParams, bin_freqs, frame_times, log_compress, magnitude, stft
from demixer.engine.job import Job, JobSpec, Snapshot
from demixer.io.audio import Audio, analysis_signal

__all__ = ["SeparationSettings", "Analysis", "analyse", "initialise", "fit", "stems", "separate_audio", "RESIDUAL"]

RESIDUAL = "residual"


@dataclass(frozen=True)
class SeparationSettings:
    """Everything that decides a separation. Defaults are what ``demixer separate`` uses."""

    stft: STFTParams = field(default_factory=STFTParams)
    model: str = "nmf-kl"
    n_iter: int = 100
    score: ScoreParams = field(default_factory=ScoreParams)
    alpha: float = 1.0  # mask exponent: 1 = ratio of magnitudes, 2 = Wiener-like
    compress: float | None = None  # fit log(1 + γ|X|) instead of |X| when set
    normalize: bool | str = False
    seed: int = 0  # reserved for random parts of an initialisation (score-informed init is deterministic)

    def with_(self, **changes) -> SeparationSettings:
        return replace(self, **changes)


@dataclass(eq=False)
class Analysis:
    """The analysis STFT of a piece: V (K × N) from the mono downmix at ``params.sr``."""

    params: STFTParams
    V: np.ndarray
    duration: float

    @property
    def n_bins(self) -> int:
        return self.V.shape[0]

    @property
    def n_frames(self) -> int:
        return self.V.shape[1]

    @property
    def times(self) -> np.ndarray:
        return frame_times(self.n_frames, self.params.sr, self.params.hop)

    @property
    def freqs(self) -> np.ndarray:
        return bin_freqs(self.params.n_fft, self.params.sr)


def analyse(audio: Audio, params: STFTParams | None = None, compress: float | None = None) -> Analysis:
    """Magnitude spectrogram of the mono downmix, resampled to the analysis rate."""
    params = params or STFTParams()
    x = analysis_signal(audio, params.sr)
    if x.size < 2:
        raise ValueError("audio is too short to analyse (fewer than 2 samples at the analysis rate)")
    V = magnitude(stft(x, params.n_fft, params.hop, params.window))
    if compress:
        V = log_compress(V, compress)
    return Analysis(params=params, V=V, duration=audio.duration)


def initialise(notes: Sequence[Note], analysis: Analysis, score: ScoreParams | None = None) -> ScoreInit:
    """Components, templates and allowed regions from a score for this analysis grid."""
    score = score or ScoreParams()
    notes = list(notes)
    if not notes:
        raise ValueError("score has no notes")
    if score.split_pitch is not None:
        notes = split_by_pitch(notes, score.split_pitch)
    p = analysis.params
    return build_score_constraints(
        notes, n_bins=p.n_bins, n_frames=analysis.n_frames, sr=p.sr, n_fft=p.n_fft, hop=p.hop, params=score,
    )


def fit(
    analysis: Analysis,
    init: ScoreInit,
    settings: SeparationSettings,
    progress: Callable[[Snapshot], None] | None = None,
    job_out: list | None = None,
) -> Snapshot:
    """Run the model from the score's initialisation. Returns the final snapshot, whose ``losses`` hold
    the whole loss curve. ``job_out``, if given, receives the Job (so another thread can cancel it)."""
    spec = JobSpec(
        V=analysis.V, W0=init.W0, H0=init.H0, model=settings.model, n_iter=settings.n_iter,
        allow_W=init.allow_W, allow_H=init.allow_H, normalize=settings.normalize,
    )
    job = Job(spec)
    if job_out is not None:
        job_out.append(job)
    curve: list[float] = []
    last = None
    for snap in job.snapshots():
        curve.extend(snap.losses)
        if progress is not None:
            progress(snap)
        last = snap
    assert last is not None
    last.losses = curve
    return last


def source_names(components: Sequence[ComponentInfo], sources: Sequence[str]) -> tuple[list[str], list]:
    """Output names in order (the residual last, if any component has no source) and index groups."""
    groups, has_residual = group_indices([c.source or None for c in components], list(sources))
    names = [s if s else "source" for s in sources]
    if has_residual:
        names.append(RESIDUAL)
    return names, groups


def masks_for(W, H, components, sources, alpha: float = 1.0) -> tuple[list[str], np.ndarray]:
    names, groups = source_names(components, sources)
    return names, soft_masks(source_models(W, H, groups), alpha)


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
    they add up to the input. The residual (components with no source) is included when non-empty."""
    names, masks = masks_for(W, H, components, sources, alpha)
    p = analysis.params
    if audio.sr == p.sr:
        q = p
    else:
        q = p.scaled_to(audio.sr)
    X = stft(audio.samples, q.n_fft, q.hop, q.window)
    if q is not p or X.shape[-1] != masks.shape[-1]:
        masks = resample_masks(
            masks, analysis.freqs, analysis.times, bin_freqs(q.n_fft, q.sr), frame_times(X.shape[-1], q.sr, q.hop)
        ).astype(np.float32)
    out: dict[str, np.ndarray] = {}
    for name, signal in zip(names, separate(X, masks, audio.n_samples, q.n_fft, q.hop, q.window), strict=True):
        out[name] = np.asarray(signal, dtype=np.float32)
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
    final = fit(analysis, init, settings, progress)
    out = stems(audio, analysis, final.W, final.H, init.components, init.sources, settings.alpha)
    return out, final, init
