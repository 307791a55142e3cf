"""Undoable edits of a :class:`~demixer.model.project.Project` (DESIGN.md §3).

Every user action that changes the document is an :class:`Edit`: ``do(project)`` applies it,
``undo(project)`` restores exactly what was there before, and ``do`` may be called again after
``undo`` (redo). Edits are plain Python; the GUI wraps each one in a ``QUndoCommand``
(``demixer.gui.undo``), so one edit is one undo step.

Edits that change part of an array store only the bounding box of the change (:class:`ArrayPatch`:
the block's values before and after), so a brush stroke on a 60 s spectrogram costs the size of the
stroke, not of W or H. :class:`PatchEdit` applies a list of patches and is the base for painting
edits. :class:`ApplyRunResult` replaces W and H wholesale with a run's result and records the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from demixer.model.project import Project, Region, RunRecord

__all__ = ["Edit", "ArrayPatch", "PatchEdit", "ApplyRunResult"]


class Edit:
    """Base class. Subclasses implement :meth:`do` and :meth:`undo` and set :attr:`text` (shown in the
    Edit menu as "Undo <text>").

    ``merge_key`` (optional): consecutive edits with the same non-None key may be merged into one undo
    step by :meth:`merge` (e.g. the dabs of one brush stroke); the default never merges.
    """

    text: str = "edit"
    merge_key: str | None = None

    def do(self, project: Project) -> None:
        raise NotImplementedError

    def undo(self, project: Project) -> None:
        raise NotImplementedError

    def merge(self, other: Edit) -> bool:
        """Absorb ``other`` (already done) into this edit; return True if it was absorbed."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


@dataclass(eq=False)
class ArrayPatch:
    """The change of one block ``target[r0:r1, c0:c1]`` of a project array: values before and after."""

    target: str  # "W", "H", "allow_W" or "allow_H"
    rows: tuple[int, int]
    cols: tuple[int, int]
    before: np.ndarray
    after: np.ndarray

    @property
    def region(self) -> Region:
        return Region(self.target, self.rows, self.cols)

    @classmethod
    def capture(
        cls,
        project: Project,
        target: str,
        new_values: np.ndarray,
        box: tuple[int, int, int, int] | None = None,
    ) -> ArrayPatch | None:
        """The patch that turns ``project.<target>`` into ``new_values`` (full-size array), cut to the
        bounding box of the entries that differ (or to ``box`` = (r0, r1, c0, c1) when given). None when
        nothing differs."""
        current = project.array(target)
        new_values = np.asarray(new_values, dtype=current.dtype)
        if new_values.shape != current.shape:
            raise ValueError(f"{target}: new values have shape {new_values.shape}, expected {current.shape}")
        if box is None:
            diff = current != new_values
            if not diff.any():
                return None
            rows = np.flatnonzero(diff.any(axis=1))
            cols = np.flatnonzero(diff.any(axis=0))
            box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        r0, r1, c0, c1 = box
        return cls(target, (r0, r1), (c0, c1), current[r0:r1, c0:c1].copy(), new_values[r0:r1, c0:c1].copy())

    def apply(self, project: Project, forward: bool = True) -> None:
        project.write_region(self.region, self.after if forward else self.before)

    @property
    def nbytes(self) -> int:
        return int(self.before.nbytes + self.after.nbytes)


class PatchEdit(Edit):
    """An edit made of bounding-box patches (applied in order; undone in reverse order)."""

    def __init__(self, patches: Sequence[ArrayPatch], text: str = "edit") -> None:
        self.patches = [p for p in patches if p is not None]
        self.text = text

    def do(self, project: Project) -> None:
        for p in self.patches:
            p.apply(project, forward=True)

    def undo(self, project: Project) -> None:
        for p in reversed(self.patches):
            p.apply(project, forward=False)


class ApplyRunResult(Edit):
    """Replace W and H (and the NAE encoder) with a run's result and add the run to the history.

    ``do`` keeps copies of the previous W, H and encoder, so ``undo`` restores them bit for bit; the
    new arrays are copied on the way in and out, so later in-place edits of the project cannot alter
    what a redo puts back. ``allow_H`` (optional): the activation mask the run fitted in (a staged fit's
    aligned note regions, DESIGN.md §2.5c), applied in the same step as a bounding-box patch, so that
    H is zero wherever the mask is and a later run keeps what this one found.
    """

    def __init__(
        self,
        W_new: np.ndarray,
        H_new: np.ndarray,
        W_E: np.ndarray | None,
        run_record: RunRecord,
        text: str | None = None,
        allow_H: np.ndarray | None = None,
    ) -> None:
        self.W_new = np.array(W_new, copy=True)
        self.H_new = np.array(H_new, copy=True)
        self.W_E = None if W_E is None else np.array(W_E, copy=True)
        self.allow_H = None if allow_H is None else np.array(allow_H, dtype=bool, copy=True)
        self.run_record = run_record
        self.text = text or f"apply run {run_record.label}"
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._mask_patch: ArrayPatch | None = None

    def do(self, project: Project) -> None:
        prev_E = None if project.W_E is None else project.W_E.copy()
        self._previous = (project.W.copy(), project.H.copy(), prev_E)
        if self.allow_H is not None:
            if self._mask_patch is None:
                self._mask_patch = ArrayPatch.capture(project, "allow_H", self.allow_H)
            if self._mask_patch is not None:
                self._mask_patch.apply(project, forward=True)
        project.set_factors(
            self.W_new.copy(), self.H_new.copy(), None if self.W_E is None else self.W_E.copy()
        )
        project.add_run(self.run_record)

    def undo(self, project: Project) -> None:
        if self._previous is None:
            raise RuntimeError("ApplyRunResult.undo() called before do()")
        W, H, W_E = self._previous
        project.remove_run(self.run_record)
        if self._mask_patch is not None:
            self._mask_patch.apply(project, forward=False)
        project.set_factors(W.copy(), H.copy(), None if W_E is None else W_E.copy())
