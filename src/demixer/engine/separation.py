r"""Score-informed separation, headless (DESIGN.md §2.3, §2.5): audio + score → sources.

    analyse()   mono downmix at the analysis rate → STFT → V
    initialise() score → components, templates, allowed regions (W0, H0, allow_W, allow_H)
    fit()       runs the model as :class:`~demixer.engine.job.Job`\ s: by default the staged procedure of
                :mod:`demixer.core.refine` (scout and align → templates → activations), else one joint fit
    stems()     soft masks from W·H per source, applied to every channel of the file's own STFT

The CLI's ``separate`` and the GUI run exactly these steps.
"""

from __future__ import annotations

import threading
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
from demixer.core.masks import group_indices, resample_masks, separate, soft_masks, source_models
from demixer.core.notes import Note
from demixer.core.refine import (
    RefineParams,
    align_notes,
    component_notes,
    decay_stats,
    is_decaying,
    note_activations,
    split_iterations,
)
from demixer.core.stft import STFTParams, bin_freqs, frame_times, log_compress, magnitude, stft
from demixer.engine.job import Job, JobSpec, Snapshot, run_job

__all__ = [
    "SeparationSettings",
    "Analysis",
    "ScorePlan",
    "RefineParams",
    "analyse",
    "initialise",
    "fit",
    "stems",
    "separate_audio",
    "RESIDUAL",
]

RESIDUAL = "residual"


@dataclass(frozen=True)
class SeparationSettings:
    """Everything that decides a separation. Defaults are what ``demixer separate`` uses.

    Defaults measured on the dev set (benchmarks/bench_quality.py): a 4096-point window with hop 1024
    (186 ms / 46 ms at 22050 Hz) resolves the harmonics of the lower voices better than 2048 while the
    staged fit aligns notes on its own finer scout grid; ``n_iter`` is the total over the stages of
    ``refine`` (25 % scout, 50 % templates, 25 % activations); mask exponent 1.5, between the ratio
    mask and the Wiener-like 2.
    """

    stft: STFTParams = field(default_factory=lambda: STFTParams(n_fft=4096, hop=1024))
    model: str = "nmf-kl"
    n_iter: int = 100
    score: ScoreParams = field(default_factory=ScoreParams)
    alpha: float = 1.5  # mask exponent: 1 = ratio of magnitudes, 2 = Wiener-like
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
    since (painted constraints), the fit respects them and runs one joint fit instead."""

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


def initialise(notes: Sequence[Note], analysis: Analysis, score: ScoreParams | None = None) -> ScoreInit:
    """Components, templates and allowed regions from a score for this analysis grid."""
    score = score or ScoreParams()
    notes = list(notes)
    if not notes:
        raise ValueError("score has no notes")
    if score.split_pitch is not None:
        notes = split_by_pitch(notes, score.split_pitch)
    p = analysis.params
    init = build_score_constraints(
        notes, n_bins=p.n_bins, n_frames=analysis.n_frames, sr=p.sr, n_fft=p.n_fft, hop=p.hop, params=score,
    )
    by_group: dict[str, list[Note]] = {}
    for n in notes:
        by_group.setdefault(n.group, []).append(n)
    onset_groups = {g: onset_enabled(score.onset_templates, g, gn) for g, gn in by_group.items()}
    auto = frozenset(
        g for g, gn in by_group.items()
        if score.onset_templates is default_onset_policy and onset_verdict(g, gn) is None
    )
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
    """Run the model from the score's initialisation. Returns the final snapshot, whose ``losses`` hold
    the whole loss curve. ``job_out``, if given, receives the Job (so another thread can cancel it).

    With ``settings.refine`` (the default), an NMF model and an unedited :class:`ScorePlan` from
    :func:`initialise`, this is the staged fit (:func:`fit_staged`); otherwise one joint fit of W and H.
    """
    if int(settings.n_iter) < 0:
        raise ValueError(f"iterations must be >= 0, got {settings.n_iter}")
    if (
        settings.refine is not None
        and settings.model in ("nmf", "nmf-kl")
        and int(settings.n_iter) > 0
        and isinstance(init, ScorePlan)
        and init.unedited()
    ):
        return fit_staged(analysis, init, settings, progress, job_out)
    spec = JobSpec(
        V=analysis.V, W0=init.W0, H0=init.H0, model=settings.model, n_iter=settings.n_iter,
        allow_W=init.allow_W, allow_H=init.allow_H, normalize=settings.normalize,
    )
    return run_job(spec, progress, job_out)


class StagedRun:
    r"""Runs the stages of a fit as successive :class:`Job`\ s and reports them as one run: snapshots
    count iterations over all stages (``n_iter`` is the total), only the last stage's final snapshot is
    ``done``, and :meth:`cancel` (thread-safe) stops the current stage and skips the rest. Snapshots of
    stages on another grid (the scout) carry ``placeholder`` W and H: the model's initial state."""

    #: snapshots per second at most (as :class:`Job`); 0 = every iteration
    MAX_RATE = 10.0

    def __init__(self, total: int, progress, placeholder: tuple[np.ndarray, np.ndarray], max_rate: float | None = None):
        self.total = int(total)
        self.progress = progress
        self.placeholder = placeholder
        self.max_rate = self.MAX_RATE if max_rate is None else float(max_rate)
        self.offset = 0
        self.curve: list[float] = []
        self.elapsed = 0.0
        self.first = True
        self._cancel = threading.Event()
        self._job: Job | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._cancel.set()
            if self._job is not None:
                self._job.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self, spec: JobSpec, *, own_grid: bool = True, last: bool = False) -> Snapshot:
        """Run one stage; returns its final snapshot (global numbering; ``done`` only when ``last`` or
        cancelled). ``own_grid`` False: the stage's W and H are not the model's (see class doc)."""
        job = Job(spec, max_rate=self.max_rate)
        with self._lock:
            self._job = job
            if self._cancel.is_set():
                job.cancel()
        final = None
        for snap in job.snapshots():
            self.curve.extend(snap.losses)
            cancelled = snap.stopped == "cancelled"
            out = Snapshot(
                iteration=self.offset + snap.iteration,
                n_iter=self.total,
                losses=list(snap.losses),
                W=snap.W if own_grid else self.placeholder[0].copy(),
                H=snap.H if own_grid else self.placeholder[1].copy(),
                W_E=snap.W_E,
                done=snap.done and (last or cancelled),
                stopped=snap.stopped if (last or cancelled) else "",
                elapsed=self.elapsed + snap.elapsed,
                initial_loss=snap.initial_loss if self.first else None,
            )
            self.first = False
            if self.progress is not None:
                self.progress(out)
            final = (out, snap)
        assert final is not None
        out, snap = final
        self.offset += snap.iteration
        self.elapsed += snap.elapsed
        if not own_grid:  # hand the stage's own result to the caller, not the placeholder
            out = replace(out, W=snap.W, H=snap.H)
        return out

    def finish(self, snap: Snapshot, W: np.ndarray | None = None, H: np.ndarray | None = None) -> Snapshot:
        """The run's final snapshot: ``done``, the whole loss curve, the model's W and H."""
        snap.done = True
        if not snap.stopped:
            snap.stopped = "cancelled" if self.cancelled else "finished"
        if W is not None:
            snap.W, snap.H = W, H
        snap.losses = list(self.curve)
        return snap


def _scout_analysis(analysis: Analysis, refine: RefineParams) -> Analysis:
    """The scout's analysis: the same signal on a finer time grid (or ``analysis`` itself when it has no
    signal or already is that grid)."""
    p = analysis.params
    n_fft = max(16, 2 * int(round(refine.scout_window_s * p.sr / 2)))
    hop = max(1, min(n_fft // 2, int(round(refine.scout_hop_s * p.sr))))
    if analysis.signal is None or (n_fft == p.n_fft and hop == p.hop) or analysis.signal.size < 2:
        return analysis
    q = STFTParams(n_fft=n_fft, hop=hop, window=p.window, sr=p.sr)
    V = magnitude(stft(analysis.signal, q.n_fft, q.hop, q.window))
    if analysis.compress:
        V = log_compress(V, analysis.compress)
    return Analysis(params=q, V=V, duration=analysis.duration, signal=analysis.signal, compress=analysis.compress)


def fit_staged(
    analysis: Analysis,
    init: ScorePlan,
    settings: SeparationSettings,
    progress: Callable[[Snapshot], None] | None = None,
    job_out: list | None = None,
) -> Snapshot:
    """The staged fit (:mod:`demixer.core.refine`): scout and align, templates, activations.

    1. scout: a joint fit of the pitch components alone on a finer grid, with the score's tolerances;
       its activations re-align every note's onset and offset and measure each group's decay, which
       decides onset templates for groups in ``init.auto_onsets`` (decaying → on, else their onset
       components stay silent);
    2. templates: W alone, H held at the structured activation of the aligned notes;
    3. activations: H alone, within the aligned regions.

    The loss curve joins the stages (the scout's losses are on its own grid). Components are those of
    ``init``, in its order, so W and H fit ``init.components`` and ``stems`` as usual. The final
    snapshot's ``extra`` holds the decisions: ``onset_groups`` (group → onset templates used),
    ``decay`` (group → :class:`~demixer.core.refine.Decay` of its notes) and ``notes`` (the aligned
    notes).
    """
    refine = settings.refine or RefineParams()
    n_scout, n_tmpl, n_act = split_iterations(settings.n_iter, refine)
    W0 = np.where(init.allow_W, init.W0, 0).astype(init.W0.dtype, copy=False)
    H0 = np.where(init.allow_H, init.H0, 0).astype(init.H0.dtype, copy=False)
    run = StagedRun(int(settings.n_iter), progress, (W0, H0))
    if job_out is not None:
        job_out.append(run)
    per_group = init.score.per_group
    notes = list(init.notes)
    onset_groups = dict(init.onset_groups)
    common = dict(model=settings.model, normalize=settings.normalize)
    snap = None
    decay: dict = {}

    if n_scout > 0:
        scout = _scout_analysis(analysis, refine)
        q = scout.params
        s_init = build_score_constraints(
            notes, n_bins=q.n_bins, n_frames=scout.n_frames, sr=q.sr, n_fft=q.n_fft, hop=q.hop,
            params=replace(init.score, onset_templates=False, split_pitch=None),
        )
        snap = run.run(
            JobSpec(V=scout.V, W0=s_init.W0, H0=s_init.H0, allow_W=s_init.allow_W, allow_H=s_init.allow_H,
                    n_iter=n_scout, label="scout", **common),
            own_grid=False,
        )
        if run.cancelled:
            return run.finish(snap, W0, H0)
        rows = component_notes(s_init.components, notes, per_group)
        if refine.align:
            notes = align_notes(
                notes, snap.H, rows, scout.times, max_shift=refine.max_shift, min_shift=refine.min_shift,
                threshold=refine.threshold, lag=refine.lag,
            )
        decay = decay_stats(notes, snap.H, rows, scout.times)
        for g in init.auto_onsets:
            verdict = is_decaying(decay.get(g), refine.struck_decay_db_s, refine.struck_falling)
            if verdict is not None:
                onset_groups[g] = verdict

    p = analysis.params
    rows = component_notes(init.components, notes, per_group, onset_groups)
    allow_H, H_struct = note_activations(
        init.components, notes, rows, n_frames=analysis.n_frames, sr=p.sr, hop=p.hop, params=refine,
        dtype=H0.dtype,
    )
    W, H = W0, H_struct
    if n_tmpl > 0:
        snap = run.run(
            JobSpec(V=analysis.V, W0=W, H0=H, allow_W=init.allow_W, allow_H=allow_H, n_iter=n_tmpl,
                    update_H=False, label="templates", **common),
            last=n_act == 0,
        )
        W, H = snap.W, snap.H
        if run.cancelled:
            return run.finish(snap)
    if n_act > 0:
        snap = run.run(
            JobSpec(V=analysis.V, W0=W, H0=H, allow_W=init.allow_W, allow_H=allow_H, n_iter=n_act,
                    update_W=False, label="activations", **common),
            last=True,
        )
    assert snap is not None
    final = run.finish(snap)
    final.extra.update(onset_groups=dict(onset_groups), decay=dict(decay), notes=notes)
    return final


def source_names(components: Sequence[ComponentInfo], sources: Sequence[str]) -> tuple[list[str], list]:
    """Output names in order (the residual last, if any component has no source) and index groups."""
    groups, has_residual = group_indices([c.source or None for c in components], list(sources))
    names = [s if s else "source" for s in sources]
    if has_residual:
        names.append(RESIDUAL)
    return names, groups


def masks_for(W, H, components, sources, alpha: float = 1.0) -> tuple[list[str], np.ndarray]:
    names, groups = source_names(components, sources)
    return names, soft_masks(source_models(W, H, groups), alpha, active=[len(g) > 0 for g in groups])


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
