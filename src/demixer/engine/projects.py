"""Making a project from a recording (DESIGN.md §3): analysis and initialisation are engine work, so
the factory lives here and the document (``demixer.model.project``) never imports upward."""

from __future__ import annotations

from collections.abc import Sequence

from demixer.core.audio import Audio
from demixer.core.notes import Note
from demixer.engine.separation import SeparationSettings, analyse, initialise
from demixer.model.project import Project, RunParams, free_init

__all__ = ["project_from_audio"]


def project_from_audio(
    audio: Audio,
    notes: Sequence[Note] | None = None,
    settings: SeparationSettings | None = None,
    *,
    n_free: int = 16,
    score_path: str | None = None,
) -> Project:
    """Analyse ``audio`` and initialise from ``notes`` (score-informed) or, without notes, with
    ``n_free`` seeded random free components (default :class:`SeparationSettings` when None). Raises
    ValueError for audio that cannot be analysed or a score whose notes constrain nothing."""
    settings = settings if settings is not None else SeparationSettings()
    run = RunParams(
        model=settings.model,
        n_iter=max(1, int(settings.n_iter)),
        seed=int(settings.seed),
        normalize=settings.normalize,
        alpha=float(settings.alpha),
        compress=settings.compress,
    )
    analysis = analyse(audio, settings.stft, settings.compress)
    notes = list(notes or [])
    if notes:
        init = initialise(notes, analysis, settings.score)
    else:
        init = free_init(analysis.V, n_free, run.seed)
    return Project.from_init(audio, analysis, init, notes=notes, score=settings.score, run=run, score_path=score_path)
