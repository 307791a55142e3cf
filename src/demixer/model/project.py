"""The document: one recording, its analysis, its decomposition and the history of runs (DESIGN.md §3).

A :class:`Project` holds

* the audio (a :class:`~demixer.core.audio.Audio`) and its analysis (a :class:`~demixer.core.analysis.Analysis`:
  ``V`` K × N, ``params``, ``duration``, ``times``, ``freqs``), the score notes;
* the parameters: STFT (:class:`~demixer.core.stft.STFTParams`), score tolerances
  (:class:`~demixer.core.constraints.ScoreParams`) and run settings (:class:`RunParams`);
* the components (:class:`Component`: name, pitch, kind, source, locked, colour) and sources
  (:class:`Source`: name, colour); components whose source is "" form the ``residual`` source;
* the current factors ``W`` (K × R), ``H`` (R × N), the NAE encoder ``W_E`` (R × K) when the last run
  was an NAE, the constraint masks ``allow_W``/``allow_H`` and the initialisation ``W0``/``H0``;
* the run history (:class:`RunRecord`).

Changes are announced through :class:`~demixer.model.signals.Signal` attributes (``factors_changed``
with a :class:`Region` or None for "everything", ``components_changed``, ``sources_changed``,
``runs_changed``, ``audio_changed``, ``params_changed``). User edits go through
:mod:`demixer.model.edits` so that they can be undone.

This module is pure Python + numpy: no Qt, no I/O, nothing from the layers above it. A project is
made from a recording by ``demixer.engine.projects.project_from_audio`` (analysis + initialisation are
the engine's work) or loaded by ``demixer.io.project_file.load_project``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from demixer.core.constraints import ComponentInfo, ScoreInit, ScoreParams
from demixer.core.models import model_info, model_names
from demixer.core.notes import Note, pitch_name
from demixer.model.signals import Signal

if TYPE_CHECKING:  # core.stft imports scipy.signal (~1 s): only when a project is made without params
    from demixer.core.analysis import Analysis
    from demixer.core.audio import Audio
    from demixer.core.stft import STFTParams

__all__ = [
    "MAX_ITER",
    "MODEL_NAMES",
    "RESIDUAL",
    "RESIDUAL_COLOUR",
    "SOURCE_PALETTE",
    "Component",
    "Source",
    "RunParams",
    "RunRecord",
    "Region",
    "Project",
    "free_init",
]

RESIDUAL = "residual"
#: The model names a run may use (the engine's ``MODELS`` keys).
MODEL_NAMES: tuple[str, ...] = model_names()  # the one list: demixer.core.models
#: The most iterations a run may have (the Parameters dock's spin box; the project loader's cap).
MAX_ITER = 100_000
#: Source colours in order of appearance (colour-blind friendly, readable on a dark background).
SOURCE_PALETTE: tuple[str, ...] = (
    "#4c9be8",  # blue
    "#f28e2b",  # orange
    "#59a14f",  # green
    "#e15759",  # red
    "#b07aa1",  # purple
    "#edc948",  # yellow
    "#76b7b2",  # teal
    "#ff9da7",  # pink
)
RESIDUAL_COLOUR = "#9c9c9c"

_KINDS = ("pitch", "onset", "free")
_run_ids = itertools.count(1)


@dataclass
class Component:
    """Metadata of component r (the pair W[:, r], H[r, :]); ``source`` "" means the residual."""

    name: str
    pitch: int | None = None
    kind: str = "free"
    source: str = ""
    locked: bool = False
    colour: str = RESIDUAL_COLOUR

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"component kind must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        if self.pitch is not None and not 0 <= int(self.pitch) <= 127:
            raise ValueError(f"component pitch must be a MIDI number 0..127, got {self.pitch}")

    @property
    def label(self) -> str:
        """Short label for axes: the pitch name for pitch/onset components (onsets marked), else the name."""
        if self.pitch is not None and self.kind in ("pitch", "onset"):
            return pitch_name(self.pitch) + ("·on" if self.kind == "onset" else "")
        return self.name

    def info(self) -> ComponentInfo:
        return ComponentInfo(self.name, self.pitch, self.kind, self.source)


@dataclass
class Source:
    name: str
    colour: str = SOURCE_PALETTE[0]


@dataclass(frozen=True)
class RunParams:
    """How runs are made: model (``MODEL_NAMES``), iterations, seed (random initialisations), template
    normalisation, mask exponent α for the source views/export, optional log compression γ of V."""

    model: str = "nmf-kl"
    n_iter: int = 100
    seed: int = 0
    normalize: bool | str = False
    alpha: float = 2.0  # = engine.separation.SeparationSettings (tests/engine/test_models.py checks)
    compress: float | None = None

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if int(self.n_iter) < 1:
            raise ValueError(f"iterations must be at least 1, got {self.n_iter}")
        if int(self.seed) < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")

    def with_(self, **changes: Any) -> RunParams:
        return replace(self, **changes)


@dataclass
class RunRecord:
    """One finished (or cancelled) run: its loss after each iteration and how it stopped."""

    label: str
    model: str
    losses: list[float] = field(default_factory=list)
    n_iter: int = 0  # iterations done
    stopped: str = "finished"  # "finished", "cancelled" or "converged"
    initial_loss: float | None = None
    elapsed: float = 0.0
    id: int = field(default_factory=lambda: next(_run_ids))


@dataclass(frozen=True)
class Region:
    """A changed block of one of the project's arrays: ``target[rows[0]:rows[1], cols[0]:cols[1]]``.

    ``target`` is ``"W"``, ``"H"``, ``"allow_W"`` or ``"allow_H"``.
    """

    target: str
    rows: tuple[int, int]
    cols: tuple[int, int]

    def slices(self) -> tuple[slice, slice]:
        return slice(*self.rows), slice(*self.cols)


_ARRAY_TARGETS = ("W", "H", "allow_W", "allow_H")


def _colour_sources(names: Sequence[str]) -> list[Source]:
    return [Source(n, SOURCE_PALETTE[i % len(SOURCE_PALETTE)]) for i, n in enumerate(names)]


def free_init(V: np.ndarray, n_components: int = 16, seed: int = 0) -> ScoreInit:
    """A default initialisation without a score: ``n_components`` free components, seeded random W, H,
    nothing forbidden, no sources (every component is in the residual)."""
    from demixer.core.nmf import random_init  # scipy.sparse: not needed to show an empty window

    W0, H0 = random_init(V, int(n_components), rng=np.random.default_rng(int(seed)))
    comps = [ComponentInfo(f"free {i + 1}", None, "free", "") for i in range(int(n_components))]
    return ScoreInit(
        W0=W0,
        H0=H0,
        allow_W=np.ones(W0.shape, bool),
        allow_H=np.ones(H0.shape, bool),
        components=comps,
        sources=[],
    )


class Project:
    """The document. Made by ``engine.projects.project_from_audio`` (analyse + initialise) or :meth:`from_init`."""

    def __init__(
        self,
        audio: Audio,
        analysis: Analysis,
        *,
        components: Sequence[Component],
        sources: Sequence[Source],
        W: np.ndarray,
        H: np.ndarray,
        allow_W: np.ndarray | None = None,
        allow_H: np.ndarray | None = None,
        W0: np.ndarray | None = None,
        H0: np.ndarray | None = None,
        notes: Sequence[Note] = (),
        stft: STFTParams | None = None,
        score: ScoreParams | None = None,
        run: RunParams | None = None,
        score_path: str | None = None,
    ) -> None:
        self.factors_changed = Signal("factors_changed")  # (Region | None)
        self.components_changed = Signal("components_changed")
        self.sources_changed = Signal("sources_changed")
        self.runs_changed = Signal("runs_changed")
        self.audio_changed = Signal("audio_changed")
        self.params_changed = Signal("params_changed")
        self.notes_changed = Signal("notes_changed")  # the score's notes (or its alignment) changed

        self.audio = audio
        self.analysis = analysis
        self.notes: list[Note] = list(notes)
        self.score_path = score_path
        #: a score synchronised to the recording (model.score_edits.ScoreAlignment) or None
        self.score_alignment = None
        if stft is None:
            stft = getattr(analysis, "params", None)
        if stft is None:
            from demixer.core.stft import STFTParams

            stft = STFTParams()
        self.stft = stft
        self.score = score if score is not None else ScoreParams()
        self.run = run if run is not None else RunParams()
        V = np.asarray(analysis.V)
        K, N = V.shape
        W = np.asarray(W)
        H = np.asarray(H)
        R = len(components)
        if W.shape != (K, R) or H.shape != (R, N):
            raise ValueError(f"W {W.shape} and H {H.shape} do not fit V {V.shape} with {R} components")
        self.components: list[Component] = list(components)
        self.sources: list[Source] = list(sources)
        self.W = W
        self.H = H
        self.W_E: np.ndarray | None = None
        self.allow_W = np.ones(W.shape, bool) if allow_W is None else np.asarray(allow_W, bool)
        self.allow_H = np.ones(H.shape, bool) if allow_H is None else np.asarray(allow_H, bool)
        if self.allow_W.shape != W.shape or self.allow_H.shape != H.shape:
            raise ValueError("allow masks must have the shapes of W and H")
        self.W0 = W.copy() if W0 is None else np.asarray(W0)
        self.H0 = H.copy() if H0 is None else np.asarray(H0)
        self.runs: list[RunRecord] = []
        self._run_counter = 0

    # ------------------------------------------------------------------------------------ creation
    @classmethod
    def from_init(
        cls,
        audio: Audio,
        analysis: Analysis,
        init: ScoreInit,
        *,
        notes: Sequence[Note] = (),
        score: ScoreParams | None = None,
        run: RunParams | None = None,
        score_path: str | None = None,
    ) -> Project:
        """A project starting from ``init`` (score-informed or :func:`free_init`)."""
        sources = _colour_sources(init.sources)
        colour = {s.name: s.colour for s in sources}
        comps = [
            Component(c.name, c.pitch, c.kind, c.source, False, colour.get(c.source, RESIDUAL_COLOUR))
            for c in init.components
        ]
        W0 = np.asarray(init.W0)
        H0 = np.asarray(init.H0)
        return cls(
            audio,
            analysis,
            components=comps,
            sources=sources,
            W=W0.copy(),
            H=H0.copy(),
            allow_W=np.array(init.allow_W, bool),
            allow_H=np.array(init.allow_H, bool),
            W0=W0,
            H0=H0,
            notes=notes,
            stft=getattr(analysis, "params", None),
            score=score,
            run=run,
            score_path=score_path,
        )

    # ------------------------------------------------------------------------------------ shapes
    @property
    def V(self) -> np.ndarray:
        return self.analysis.V

    @property
    def n_bins(self) -> int:
        return int(self.analysis.V.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.analysis.V.shape[1])

    @property
    def n_components(self) -> int:
        return len(self.components)

    @property
    def duration(self) -> float:
        return float(self.analysis.duration)

    @property
    def sr(self) -> int:
        """The analysis sample rate (V's frequency axis goes up to sr / 2)."""
        return int(self.analysis.params.sr)

    @property
    def title(self) -> str:
        path = getattr(self.audio, "path", None)
        if not path:
            return "untitled"
        return str(path).replace("\\", "/").rsplit("/", 1)[-1]

    # ------------------------------------------------------------------------------------ sources
    def source_colour(self, name: str) -> str:
        for s in self.sources:
            if s.name == name:
                return s.colour
        return RESIDUAL_COLOUR

    def has_residual(self) -> bool:
        names = {s.name for s in self.sources}
        return any(not c.source or c.source not in names for c in self.components)

    def source_names(self) -> list[str]:
        """The named sources in order, then ``residual`` when some component belongs to none."""
        names = [s.name for s in self.sources]
        return names + [RESIDUAL] if self.has_residual() else names

    def source_components(self, name: str) -> np.ndarray:
        """Indices of the components of source ``name`` (``residual``: those in no named source)."""
        names = {s.name for s in self.sources}
        if name == RESIDUAL and name not in names:
            idx = [r for r, c in enumerate(self.components) if not c.source or c.source not in names]
        else:
            idx = [r for r, c in enumerate(self.components) if c.source == name]
        return np.array(idx, dtype=int)

    def component_infos(self) -> list[ComponentInfo]:
        return [c.info() for c in self.components]

    def component_colours(self) -> list[str]:
        return [self.source_colour(c.source) if c.source else RESIDUAL_COLOUR for c in self.components]

    @property
    def lock(self) -> np.ndarray:
        """Per-component lock flags (R,), for the engine's ``lock``."""
        return np.array([c.locked for c in self.components], dtype=bool)

    # ------------------------------------------------------------------------------------ changes
    def set_factors(
        self, W: np.ndarray, H: np.ndarray, W_E: np.ndarray | None = None, *, keep_encoder: bool = False
    ) -> None:
        """Replace W and H (and the NAE encoder: ``W_E``, or none unless ``keep_encoder``). The arrays are
        taken as they are (callers pass copies they will not touch again)."""
        W = np.asarray(W)
        H = np.asarray(H)
        if W.shape != self.W.shape or H.shape != self.H.shape:
            raise ValueError(f"new factors {W.shape}, {H.shape} do not match {self.W.shape}, {self.H.shape}")
        if W_E is not None and np.shape(W_E) != (self.n_components, self.n_bins):
            raise ValueError(
                f"encoder has shape {np.shape(W_E)}, expected {(self.n_components, self.n_bins)}"
            )
        self.W = W
        self.H = H
        if W_E is not None or not keep_encoder:
            self.W_E = None if W_E is None else np.asarray(W_E)
        self.factors_changed.emit(None)

    def array(self, target: str) -> np.ndarray:
        if target not in _ARRAY_TARGETS:
            raise ValueError(f"unknown array {target!r}; one of {', '.join(_ARRAY_TARGETS)}")
        return getattr(self, target)

    def write_region(self, region: Region, values: np.ndarray) -> None:
        """Write ``values`` into the block ``region`` of one array in place and announce it."""
        a = self.array(region.target)
        rs, cs = region.slices()
        a[rs, cs] = values
        self.factors_changed.emit(region)

    def add_run(self, record: RunRecord) -> None:
        self.runs.append(record)
        self.runs_changed.emit()

    def remove_run(self, record: RunRecord) -> None:
        self.runs = [r for r in self.runs if r.id != record.id]
        self.runs_changed.emit()

    def next_run_label(self, model_label: str) -> str:
        """ "#n <model label>", n counting the runs started in this project."""
        self._run_counter += 1
        return f"#{self._run_counter} {model_label}"

    @property
    def run_counter(self) -> int:
        """Runs started in this project so far (numbers the run labels; kept in project files)."""
        return self._run_counter

    @run_counter.setter
    def run_counter(self, value: int) -> None:
        self._run_counter = max(0, int(value))

    def set_run_params(self, run: RunParams) -> None:
        if run != self.run:
            self.run = run
            self.params_changed.emit()

    def run_inputs(self) -> dict[str, Any]:
        """Keyword arguments of an engine ``JobSpec`` for a run from the current state with ``self.run``."""
        W_E0 = None
        if model_info(self.run.model).encoder and self.W_E is not None:
            W_E0 = self.W_E
        return dict(
            V=self.V,
            W0=self.W,
            H0=self.H,
            model=self.run.model,
            n_iter=int(self.run.n_iter),
            allow_W=self.allow_W,
            allow_H=self.allow_H,
            lock=self.lock if self.lock.any() else None,
            normalize=self.run.normalize,
            W_E0=W_E0,
        )

    def __repr__(self) -> str:
        return (
            f"Project({self.title!r}, V {self.n_bins}×{self.n_frames}, R={self.n_components}, "
            f"sources={self.source_names()}, runs={len(self.runs)})"
        )
