r"""The one fit: what ``demixer separate`` runs and what the window's Run runs (DESIGN.md §2.5c).

    fit = Fit(analysis, notes, settings, FitState.from_project(...) or FitState.from_init(init),
              mode="staged" | "warm", align=None)
    fit.mode, fit.reason, fit.stages        what will run (a "staged" request can fall back to "warm")
    for snap in fit.snapshots(): ...        live W, H on the project's grid, through every stage
    fit.cancel()                            from any thread; stops between two iterations
    fit.result                              a :class:`FitResult` once the last snapshot is out

Modes:

* ``staged`` — the score-informed pipeline of :mod:`demixer.core.refine`: [sync →] scout and align →
  templates → activations, from the given W (the score's templates on a first Run).
* ``warm`` — one joint fit of W and H from the given state (the window's Run → Refine, a project
  without a score, a model without a staged fit, or ``settings.refine`` None).

Painted constraints hold in every stage. The user's masks are compared with the masks the score makes
for the same components: an entry the score allows and the user forbade (a *painted zero*) is forbidden
in every stage — W or H there is exactly 0 in every snapshot and in the result; an entry the user allowed
where the score does not (a *painted allow*) is added to every stage's own region (scout: resampled to
its grid, initial value 1 for H and the project's W; templates: held at the structured activation's
``tail``; activations: free). Entries the user left as the score made them follow each stage's own
region, so a project whose masks are unedited gives exactly the staged fit of the score.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from demixer.core.constraints import ComponentInfo, build_score_constraints
from demixer.core.notes import Note
from demixer.core.refine import (
    align_notes,
    component_notes,
    decay_stats,
    is_decaying,
    note_activations,
    refit_iterations,
    split_iterations,
)
from demixer.engine.job import Job, JobSpec, Snapshot
from demixer.engine.models import model_info
from demixer.engine.separation import (
    Analysis,
    ScoreInit,
    ScorePlan,
    SeparationSettings,
    _scout_analysis,
    initialise,
    onset_plan,
    score_notes,
)

__all__ = ["MODES", "FitState", "FitResult", "Fit", "choose_mode", "project_fit", "project_settings", "AlignHook"]

MODES = ("staged", "warm")
#: the synchronisation hook (branch ``sync``): (analysis, notes) → the notes warped to the recording
AlignHook = Callable[[Analysis, list[Note]], list[Note]]


def choose_mode(has_score: bool, model: str) -> str:
    """The mode a Run asks for: ``staged`` for a project with a score and a model that has a staged fit
    (every Run, not only the first: a warm refine after a staged fit lowers the separation — dev bwv255
    7.77 dB staged, 6.91 after 100 more joint iterations, 7.74 after a second staged Run), else ``warm``
    (refine from the current W, H; the window's Run → Refine asks for it)."""
    return "staged" if has_score and model_info(model).staged else "warm"


@dataclass(frozen=True, eq=False)
class FitState:
    """The project's current state on its analysis grid: factors, masks, components, locks.

    ``masks_edited``: whether the user changed the masks since the score made them; None = find out
    (compare with the score's masks for these components, which costs one initialisation)."""

    W: np.ndarray
    H: np.ndarray
    allow_W: np.ndarray
    allow_H: np.ndarray
    components: Sequence[ComponentInfo]
    lock: np.ndarray | None = None
    W_E: np.ndarray | None = None
    masks_edited: bool | None = None

    @classmethod
    def from_init(cls, init: ScoreInit, masks_edited: bool | None = None) -> FitState:
        """The state a score's initialisation starts from (``masks_edited`` known for a ScorePlan)."""
        if masks_edited is None and isinstance(init, ScorePlan) and init.allow_W0 is not None:
            masks_edited = not init.unedited()
        return cls(init.W0, init.H0, init.allow_W, init.allow_H, list(init.components), masks_edited=masks_edited)

    @classmethod
    def from_project(cls, project, masks_edited: bool | None = None) -> FitState:
        """The state of a :class:`demixer.model.project.Project` (copies are made by the fit's jobs)."""
        lock = project.lock
        return cls(
            project.W, project.H, project.allow_W, project.allow_H, [c.info() for c in project.components],
            lock=lock if lock.any() else None, W_E=project.W_E, masks_edited=masks_edited,
        )

    def check(self, analysis: Analysis) -> None:
        K, N = analysis.V.shape
        R = len(self.components)
        if np.shape(self.W) != (K, R) or np.shape(self.H) != (R, N):
            raise ValueError(
                f"W {np.shape(self.W)} and H {np.shape(self.H)} do not fit V {(K, N)} with {R} components"
            )
        if np.shape(self.allow_W) != (K, R) or np.shape(self.allow_H) != (R, N):
            raise ValueError("allow masks must have the shapes of W and H")
        if self.lock is not None and np.shape(self.lock) != (R,):
            raise ValueError(f"lock must have one entry per component ({R}), got shape {np.shape(self.lock)}")


def project_settings(project) -> SeparationSettings:
    """The :class:`SeparationSettings` of a project (its STFT, score parameters and run parameters):
    for a project made by ``engine.projects.project_from_audio(audio, notes, settings)`` with unchanged run parameters,
    the settings it was made with, so the window's Run and ``demixer separate`` fit alike."""
    r = project.run
    return SeparationSettings().with_(
        stft=project.stft, score=project.score, model=r.model, n_iter=int(r.n_iter), alpha=float(r.alpha),
        compress=r.compress, normalize=r.normalize, seed=int(r.seed),
    )


def project_fit(project, mode: str | None = None, *, align: AlignHook | None = None,
                max_rate: float | None = None) -> Fit:
    """The Fit the window's Run makes for ``project``: ``mode`` None → :func:`choose_mode` (staged for a
    project with a score, else warm). Read ``fit.mode`` / ``fit.reason`` to say which runs."""
    settings = project_settings(project)
    if mode is None:
        mode = choose_mode(bool(project.notes), settings.model)
    return Fit(project.analysis, project.notes or None, settings, FitState.from_project(project), mode,
               align=align, max_rate=max_rate)


@dataclass(eq=False)
class FitResult:
    """What a finished (or cancelled) fit leaves: apply ``W``, ``H`` (and ``W_E``) as one undo step.

    ``allow_H`` is the region the last stage fitted in (on the project grid): after a staged fit H may be
    nonzero where the score's tolerances said no (aligned notes moved) — a window that wants the next warm
    run to keep those entries applies this mask with the factors; painted zeros are false in it."""

    W: np.ndarray
    H: np.ndarray
    W_E: np.ndarray | None
    mode: str
    stopped: str  # "finished", "converged" or "cancelled"
    stage: str  # the stage reached
    n_iter: int  # iterations done, over all stages
    losses: list[float]
    elapsed: float
    allow_W: np.ndarray
    allow_H: np.ndarray
    notes: list[Note] = field(default_factory=list)  # the notes after synchronisation and alignment
    onset_groups: dict = field(default_factory=dict)
    decay: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Stage:
    name: str
    n_iter: int


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view: a job uses it without copying (the fit never writes V)."""
    v = np.asarray(a).view()
    v.flags.writeable = False
    return v


def _key(c: ComponentInfo) -> tuple:
    return (c.kind, c.pitch, c.source)


class _ToProjectGrid:
    """Resamples a stage's W, H from its own grid (the scout's) to the project grid for display: linear
    in frequency and time, rows matched by component; rows the stage has not keep the start state; masked
    by the project's allow masks (so painted zeros are exact here too)."""

    def __init__(self, stage: Analysis, project: Analysis, rows: list[tuple[int, int]], start, allow):
        def weights(src_step: float, dst: np.ndarray, n_src: int):
            pos = dst / src_step
            i0 = np.clip(np.floor(pos).astype(np.int64), 0, n_src - 1)
            i1 = np.minimum(i0 + 1, n_src - 1)
            w = np.clip(pos - i0, 0.0, 1.0).astype(np.float32)
            return i0, i1, w

        sp = stage.params
        self.f = weights(sp.sr / sp.n_fft, project.freqs, stage.n_bins)
        self.t = weights(sp.hop / sp.sr, project.times, stage.n_frames)
        self.src = np.array([j for j, _ in rows], dtype=np.int64)
        self.dst = np.array([r for _, r in rows], dtype=np.int64)
        self.W0, self.H0 = start
        self.allow_W, self.allow_H = allow

    def __call__(self, W_s: np.ndarray, H_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W, H = self.W0.copy(), self.H0.copy()
        if self.src.size:
            i0, i1, w = self.f
            Ws = W_s[:, self.src]
            W[:, self.dst] = Ws[i0] * (1 - w)[:, None] + Ws[i1] * w[:, None]
            i0, i1, w = self.t
            Hs = H_s[self.src]
            H[self.dst] = Hs[:, i0] * (1 - w) + Hs[:, i1] * w
        W[~self.allow_W] = 0
        H[~self.allow_H] = 0
        return W, H


class Fit:
    """One fit of a project (see the module docstring). Create it (validates), then iterate
    :meth:`snapshots` in one thread; :meth:`cancel` from any. Duck-types :class:`~demixer.engine.job.Job`
    (``snapshots``, ``cancel``, ``cancelled``), so a worker that runs jobs runs fits."""

    #: snapshots per second at most per stage (as :class:`Job`); 0 = every iteration
    MAX_RATE = 10.0

    def __init__(
        self,
        analysis: Analysis,
        notes: Sequence[Note] | None,
        settings: SeparationSettings,
        state: FitState,
        mode: str = "staged",
        *,
        align: AlignHook | None = None,
        max_rate: float | None = None,
        track_loss: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fit mode {mode!r}; choose one of {', '.join(MODES)}")
        if int(settings.n_iter) < 0:
            raise ValueError(f"iterations must be >= 0, got {settings.n_iter}")
        self.info = model_info(settings.model)
        state.check(analysis)
        self.analysis = analysis
        self.settings = settings
        self.state = state
        self.notes = score_notes(notes or [], settings.score)
        self.align = align
        self.max_rate = self.MAX_RATE if max_rate is None else float(max_rate)
        #: False: nobody reads the loss curve (a quiet ``demixer separate``); losses may be NaN
        self.track_loss = bool(track_loss)
        self.requested = mode
        self.mode, self.reason = self._resolve(mode)
        self.n_iter = int(settings.n_iter)
        if self.mode == "staged":
            n_scout, n_tmpl, n_act = split_iterations(self.n_iter, settings.refine)
            stages = [_Stage("sync", 0)] if align is not None else []
            parts = (("scout", n_scout), ("templates", n_tmpl), ("activations", n_act))
            stages += [_Stage(n, k) for n, k in parts if k > 0]
        else:
            stages = [_Stage("joint", self.n_iter)]
        self.stages: list[_Stage] = stages
        self.result: FitResult | None = None
        self._cancel = threading.Event()
        self._job: Job | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ control
    def _resolve(self, mode: str) -> tuple[str, str]:
        if mode == "warm":
            return "warm", ""
        if not self.notes:
            return "warm", "no score"
        if not self.info.staged:
            return "warm", f"{self.info.label} has no staged fit"
        if self.settings.refine is None:
            return "warm", "the staged fit is switched off"
        if int(self.settings.n_iter) == 0:
            return "warm", "no iterations"
        return "staged", ""

    def cancel(self) -> None:
        """Stop after the current iteration (thread-safe); later stages are skipped."""
        with self._lock:
            self._cancel.set()
            if self._job is not None:
                self._job.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self, progress: Callable[[Snapshot], None] | None = None) -> Snapshot:
        """Iterate to the end; ``progress(snapshot)`` for each. Returns the final snapshot with the whole
        loss curve in ``losses``."""
        final = None
        for snap in self.snapshots():
            if progress is not None:
                progress(snap)
            final = snap
        assert final is not None and self.result is not None
        return replace(final, losses=list(self.result.losses), extra=dict(final.extra))

    # ------------------------------------------------------------------------------ running
    def snapshots(self) -> Iterator[Snapshot]:
        """Snapshots through every stage, in order: ``iteration``/``n_iter`` count over all stages,
        ``stage``/``stage_iteration``/``stage_n_iter`` within the current one, ``losses`` since the previous
        snapshot, W and H on the project's grid. Only the last is ``done``; it carries the result's W, H."""
        self._t0 = time.perf_counter()
        self._offset = 0
        self._curve: list[float] = []
        self._first = True
        st = self.state
        self._W0 = np.where(st.allow_W, st.W, 0).astype(np.asarray(st.W).dtype, copy=False)
        self._H0 = np.where(st.allow_H, st.H, 0).astype(np.asarray(st.H).dtype, copy=False)
        if self.mode == "staged":
            yield from self._staged()
        else:
            yield from self._warm()

    def _snap(self, index: int, raw: Snapshot, W, H, *, resampled: bool = False, done_in_stage: int = 0) -> Snapshot:
        stage = self.stages[index]
        out = Snapshot(
            iteration=self._offset + raw.iteration, n_iter=self.n_iter, losses=list(raw.losses), W=W, H=H,
            W_E=raw.W_E, elapsed=time.perf_counter() - self._t0,
            initial_loss=raw.initial_loss if self._first else None, stage=stage.name, stage_index=index,
            n_stages=len(self.stages), stage_iteration=done_in_stage + raw.iteration, stage_n_iter=stage.n_iter,
            mode=self.mode, resampled=resampled,
        )
        self._first = False
        return out

    def _stage(self, name: str, spec: JobSpec, display=None, *, done_in_stage: int = 0, last_part: bool = True):
        """Run one stage's job, yielding its snapshots (all but a final one that ends the fit); returns
        (last raw job snapshot, last converted snapshot). A stage made of several jobs (parts) runs them
        one after the other: ``done_in_stage`` iterations of the stage are done before this part, and
        only the stage's ``last_part`` can end the fit."""
        index = next(i for i, s in enumerate(self.stages) if s.name == name)
        job = Job(replace(spec, label=name, track_loss=self.track_loss), max_rate=self.max_rate)
        with self._lock:
            self._job = job
            if self._cancel.is_set():
                job.cancel()
        ends = index == len(self.stages) - 1 and last_part
        raw = out = None
        try:
            for raw in job.snapshots():
                self._curve.extend(raw.losses)
                W, H = display(raw.W, raw.H) if display is not None else (raw.W, raw.H)
                out = self._snap(index, raw, W, H, resampled=display is not None, done_in_stage=done_in_stage)
                if raw.done and (ends or raw.stopped == "cancelled"):
                    break  # the fit's final snapshot is made by _final, with the result's factors
                yield out
        finally:  # the stage's working arrays (as large as V) go before the next stage makes its own
            job.close()
            with self._lock:
                if self._job is job:
                    self._job = None
        assert raw is not None
        self._offset += raw.iteration
        return raw, out

    def _final(self, out: Snapshot, W, H, W_E, stopped: str, allow_W, allow_H, **extra) -> Snapshot:
        if self.cancelled:
            stopped = "cancelled"
        final = replace(out, W=W, H=H, W_E=W_E, done=True, stopped=stopped or "finished",
                        elapsed=time.perf_counter() - self._t0, extra=dict(extra))
        self.result = FitResult(
            W=W, H=H, W_E=W_E, mode=self.mode, stopped=final.stopped, stage=final.stage, n_iter=final.iteration,
            losses=list(self._curve), elapsed=final.elapsed, allow_W=allow_W, allow_H=allow_H,
            notes=list(extra.get("notes", [])), onset_groups=dict(extra.get("onset_groups", {})),
            decay=dict(extra.get("decay", {})),
        )
        if extra:
            final.extra["mode"] = self.mode
        return final

    def _warm(self) -> Iterator[Snapshot]:
        st, s = self.state, self.settings
        lock = st.lock if (st.lock is not None and self.info.lock and np.any(st.lock)) else None
        spec = JobSpec(
            V=_readonly(self.analysis.V), W0=st.W, H0=st.H, model=s.model, n_iter=self.n_iter, allow_W=st.allow_W,
            allow_H=st.allow_H, lock=lock, normalize=s.normalize,
            W_E0=st.W_E if self.info.encoder else None,
        )
        raw, out = yield from self._stage("joint", spec)
        masks = np.array(st.allow_W, bool), np.array(st.allow_H, bool)
        yield self._final(out, raw.W, raw.H, raw.W_E, raw.stopped, *masks)

    # ------------------------------------------------------------------------------ staged
    def _edits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(painted zeros W, painted allows W, painted zeros H, painted allows H) against the masks the
        score makes for these components (components the score does not make: all painted), or None when
        the masks are as the score made them."""
        st = self.state
        if st.masks_edited is False:
            return None
        plan = initialise(self.notes, self.analysis, replace(self.settings.score, split_pitch=None))
        row_of = {_key(c): r for r, c in enumerate(plan.components)}
        base_W = np.zeros(np.shape(st.allow_W), bool)
        base_H = np.zeros(np.shape(st.allow_H), bool)
        for r, c in enumerate(st.components):
            j = row_of.get(_key(c))
            if j is not None:
                base_W[:, r] = plan.allow_W[:, j]
                base_H[r] = plan.allow_H[j]
        aW, aH = np.asarray(st.allow_W, bool), np.asarray(st.allow_H, bool)
        if st.masks_edited is None and np.array_equal(aW, base_W) and np.array_equal(aH, base_H):
            return None
        return base_W & ~aW, aW & ~base_W, base_H & ~aH, aH & ~base_H

    def _staged(self) -> Iterator[Snapshot]:
        a, s, st = self.analysis, self.settings, self.state
        refine = s.refine
        W0, H0 = self._W0, self._H0
        lock = st.lock if (st.lock is not None and np.any(st.lock)) else None
        common = dict(model=s.model, normalize=s.normalize)
        per_group = s.score.per_group
        notes = list(self.notes)
        onset_groups, auto = onset_plan(notes, s.score)
        edits = self._edits()
        decay: dict = {}
        out = None
        names = [x.name for x in self.stages]

        # Stage 0 — synchronisation (DESIGN §2.5b): warp the score's times to the recording's.
        if self.align is not None:
            notes = list(self.align(a, notes))
            raw = Snapshot(0, 0, [], W0, H0)
            out = self._snap(0, raw, W0.copy(), H0.copy())
            yield out

        if "scout" in names and not self.cancelled:
            scout = _scout_analysis(a, refine)
            q = scout.params
            sc = build_score_constraints(
                notes, n_bins=q.n_bins, n_frames=scout.n_frames, sr=q.sr, n_fft=q.n_fft, hop=q.hop,
                params=replace(s.score, onset_templates=False, split_pitch=None),
            )
            row_of = {_key(c): r for r, c in enumerate(st.components)}
            rows = [(j, row_of[_key(c)]) for j, c in enumerate(sc.components) if _key(c) in row_of]
            sW0, sH0, s_aW, s_aH = sc.W0, sc.H0, sc.allow_W, sc.allow_H
            if edits is not None and rows and scout is not a:
                sW0, sH0, s_aW, s_aH = self._edits_on_scout(scout, rows, edits, sW0, sH0, s_aW, s_aH)
            elif edits is not None and rows:  # same grid: the edits apply as they are
                sW0, sH0, s_aW, s_aH = sW0.copy(), sH0.copy(), s_aW.copy(), s_aH.copy()
                for j, r in rows:
                    s_aW[:, j] = (s_aW[:, j] & ~edits[0][:, r]) | edits[1][:, r]
                    s_aH[j] = (s_aH[j] & ~edits[2][r]) | edits[3][r]
                    new_W = edits[1][:, r] & (sW0[:, j] == 0)
                    sW0[new_W, j] = np.asarray(st.W)[new_W, r]
                    sH0[j, edits[3][r] & (sH0[j] == 0)] = 1.0
            masks = np.array(st.allow_W, bool), np.array(st.allow_H, bool)
            display = _ToProjectGrid(scout, a, rows, (W0, H0), masks)
            raw, out = yield from self._stage(
                "scout",
                JobSpec(V=_readonly(scout.V), W0=sW0, H0=sH0, allow_W=s_aW, allow_H=s_aH,
                        n_iter=self.stages[names.index("scout")].n_iter, **common),
                display,
            )
            if self.cancelled:  # the scout's factors are on its own grid: the usable state is the start
                yield self._final(out, W0, H0, None, "cancelled", *masks)
                return
            srows = component_notes(sc.components, notes, per_group)
            if refine.align:
                notes = align_notes(
                    notes, raw.H, srows, scout.times, max_shift=refine.max_shift, min_shift=refine.min_shift,
                    threshold=refine.threshold, lag=refine.lag,
                )
            decay = decay_stats(notes, raw.H, srows, scout.times)
            for g in auto:
                verdict = is_decaying(decay.get(g), refine.struck_decay_db_s, refine.struck_falling)
                if verdict is not None:
                    onset_groups[g] = verdict
            # Only the aligned notes and the decay statistics go on: the scout's analysis (a V as large
            # as the project's) and its factors are released before the template stage makes its arrays.
            del scout, sc, display, raw, sW0, sH0, s_aW, s_aH

        p = a.params
        rows = component_notes(st.components, notes, per_group, onset_groups)
        allow_H, H = note_activations(
            st.components, notes, rows, n_frames=a.n_frames, sr=p.sr, hop=p.hop, params=refine, dtype=H0.dtype,
        )
        if edits is not None:  # painted zeros stay out, painted allows come in (held at ``tail``)
            _, _, zero_H, add_H = edits
            allow_H &= ~zero_H
            H[zero_H] = 0
            H[add_H & ~allow_H] = refine.tail
            allow_H |= add_H
        allow_W = np.asarray(st.allow_W, bool)
        W = W0
        W_E = None
        extra = lambda: dict(onset_groups=dict(onset_groups), decay=dict(decay), notes=notes)  # noqa: E731
        stopped = "finished"
        if "templates" in names and not self.cancelled:
            raw, out = yield from self._stage(
                "templates",
                JobSpec(V=_readonly(a.V), W0=W, H0=H, allow_W=allow_W, allow_H=allow_H, lock=lock, update_H=False,
                        n_iter=self.stages[names.index("templates")].n_iter, **common),
            )
            W, H, stopped = raw.W, raw.H, raw.stopped
        if "activations" in names and not self.cancelled:
            n_act = self.stages[names.index("activations")].n_iter
            # struck or plucked groups: their templates are refitted with these activations (DESIGN §2.5c)
            struck = {g for g, on in onset_groups.items() if on}
            keep = np.array([c.source not in struck for c in st.components], dtype=bool)
            if lock is not None:
                keep |= np.asarray(lock, bool)
            if keep.all():  # nothing to refit: a few iterations of H from the structured activation
                k = 0
                if refine.held_iter is not None and refine.held_iter < n_act:
                    self.n_iter -= n_act - refine.held_iter
                    n_act = refine.held_iter
                    self.stages[names.index("activations")] = _Stage("activations", n_act)
            else:
                k = refit_iterations(n_act, refine)
            parts = [(n_act - 2 * k, False), (k, True), (k, False)] if k > 0 else [(n_act, False)]
            done = 0
            for i, (n, update_W) in enumerate(parts):
                if self.cancelled:  # between two parts: the last snapshot is out, the final one adds no loss
                    out = replace(out, losses=[])
                    break
                spec = JobSpec(V=_readonly(a.V), W0=W, H0=H, allow_W=allow_W, allow_H=allow_H, n_iter=n,
                               lock=keep if update_W else lock, update_W=update_W, update_H=not update_W, **common)
                raw, out = yield from self._stage("activations", spec, done_in_stage=done,
                                                  last_part=i == len(parts) - 1)
                W, H, stopped = raw.W, raw.H, raw.stopped
                done += raw.iteration
        if out is None:  # nothing ran (cannot happen with n_iter > 0; kept for safety)
            out = self._snap(0, Snapshot(0, 0, [], W, H), W, H)
        H = np.where(allow_H, H, 0).astype(H.dtype, copy=False)
        yield self._final(out, W, H, W_E, stopped, allow_W.copy(), allow_H, **extra())

    def _edits_on_scout(self, scout: Analysis, rows, edits, sW0, sH0, s_aW, s_aH):
        """The painted edits on the scout's grid (nearest project bin and frame of each scout bin and
        frame), applied to the scout's masks and start values."""
        a, st = self.analysis, self.state
        pp = a.params
        fi = np.clip(np.rint(scout.freqs / (pp.sr / pp.n_fft)).astype(np.int64), 0, a.n_bins - 1)
        ti = np.clip(np.rint(scout.times / (pp.hop / pp.sr)).astype(np.int64), 0, a.n_frames - 1)
        zero_W, add_W, zero_H, add_H = edits
        sW0, sH0, s_aW, s_aH = sW0.copy(), sH0.copy(), s_aW.copy(), s_aH.copy()
        Wp = np.asarray(st.W)
        for j, r in rows:
            zw, aw = zero_W[fi, r], add_W[fi, r]
            zh, ah = zero_H[r, ti], add_H[r, ti]
            new_W = aw & ~s_aW[:, j]
            s_aW[:, j] = (s_aW[:, j] & ~zw) | aw
            sW0[new_W, j] = Wp[fi[new_W], r]
            new_H = ah & ~s_aH[j]
            s_aH[j] = (s_aH[j] & ~zh) | ah
            sH0[j, new_H] = 1.0
        return sW0, sH0, s_aW, s_aH

