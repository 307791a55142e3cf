"""The document layer: pure Python + numpy, no Qt (DESIGN.md §3)."""

from demixer.model.edits import ApplyRunResult, ArrayPatch, Edit, PatchEdit
from demixer.model.project import (
    MODEL_NAMES,
    RESIDUAL,
    Component,
    Project,
    Region,
    RunParams,
    RunRecord,
    Source,
    free_init,
)
from demixer.model.signals import Signal

__all__ = [
    "MODEL_NAMES",
    "RESIDUAL",
    "ApplyRunResult",
    "ArrayPatch",
    "Component",
    "Edit",
    "PatchEdit",
    "Project",
    "Region",
    "RunParams",
    "RunRecord",
    "Signal",
    "Source",
    "free_init",
]
