"""demixer.model.edits: undoable edits."""

from __future__ import annotations

import numpy as np
import pytest

from demixer.model.edits import ApplyRunResult, ArrayPatch, Edit, PatchEdit
from demixer.model.project import Region, RunRecord


def _result(p, seed=0):
    rng = np.random.default_rng(seed)
    W = (rng.random(p.W.shape) * p.allow_W).astype(p.W.dtype)
    H = (rng.random(p.H.shape) * p.allow_H).astype(p.H.dtype)
    return W, H


def test_apply_run_result_is_undone_and_redone_bit_for_bit(small_project):
    p = small_project
    W_before, H_before = p.W.copy(), p.H.copy()
    W_new, H_new = _result(p)
    rec = RunRecord("#1 NMF", "nmf", [2.0, 1.0], 2)
    edit = ApplyRunResult(W_new, H_new, None, rec)
    factors, runs = [], []
    p.factors_changed.connect(factors.append)
    p.runs_changed.connect(lambda: runs.append([r.id for r in p.runs]))

    edit.do(p)
    assert np.array_equal(p.W, W_new) and np.array_equal(p.H, H_new)
    assert p.runs == [rec]
    assert p.W is not W_new  # copied in: the caller's array cannot alter the document later
    edit.undo(p)
    assert p.W.tobytes() == W_before.tobytes() and p.H.tobytes() == H_before.tobytes()
    assert p.W.dtype == W_before.dtype and p.runs == []
    edit.do(p)  # redo
    assert p.W.tobytes() == W_new.tobytes() and p.H.tobytes() == H_new.tobytes()
    assert p.runs == [rec]
    assert factors == [None, None, None]
    assert runs == [[rec.id], [], [rec.id]]
    assert "#1 NMF" in edit.text


def test_apply_run_result_survives_in_place_edits_of_the_result(small_project):
    p = small_project
    W_new, H_new = _result(p, 1)
    edit = ApplyRunResult(W_new, H_new, None, RunRecord("r", "nmf"))
    edit.do(p)
    p.W[:] = 0  # something edits the document in place afterwards (and is undone by hand here)
    W_new[:] = 5  # and the caller scribbles on its array
    edit.undo(p)
    edit.do(p)
    assert np.array_equal(p.W, _result(p, 1)[0])


def test_apply_run_result_restores_the_encoder(small_project):
    p = small_project
    E0 = np.full((4, 33), 0.5, np.float32)
    p.set_factors(p.W, p.H, W_E=E0)
    E1 = np.full((4, 33), 2.0, np.float32)
    edit = ApplyRunResult(*_result(p), E1, RunRecord("nae", "nae"))
    edit.do(p)
    assert np.array_equal(p.W_E, E1)
    edit.undo(p)
    assert np.array_equal(p.W_E, E0)
    edit2 = ApplyRunResult(*_result(p), None, RunRecord("nmf", "nmf"))
    edit2.do(p)
    assert p.W_E is None  # an NMF result has no encoder
    edit2.undo(p)
    assert np.array_equal(p.W_E, E0)


def test_undo_before_do_is_an_error(small_project):
    with pytest.raises(RuntimeError):
        ApplyRunResult(*_result(small_project), None, RunRecord("r", "nmf")).undo(small_project)


def test_array_patch_captures_the_bounding_box_of_a_change(small_project):
    p = small_project
    new = p.H.copy()
    new[1, 12] = 0
    new[2, 20] = 0
    patch = ArrayPatch.capture(p, "H", new)
    assert (patch.rows, patch.cols) == ((1, 3), (12, 21))
    assert patch.before.shape == patch.after.shape == (2, 9)
    assert patch.nbytes == 2 * 2 * 9 * p.H.itemsize
    assert ArrayPatch.capture(p, "H", p.H.copy()) is None
    with pytest.raises(ValueError):
        ArrayPatch.capture(p, "H", new[:, :5])
    boxed = ArrayPatch.capture(p, "allow_W", ~p.allow_W, box=(0, 2, 0, 1))
    assert boxed.before.dtype == bool and boxed.region == Region("allow_W", (0, 2), (0, 1))


def test_patch_edit_does_and_undoes_in_place_announcing_regions(small_project):
    p = small_project
    H0 = p.H.copy()
    allow0 = p.allow_H.copy()
    newH = p.H.copy()
    newH[0:2, 3:6] = 0
    newA = p.allow_H.copy()
    newA[0:2, 3:6] = False
    edit = PatchEdit(
        [ArrayPatch.capture(p, "H", newH), ArrayPatch.capture(p, "allow_H", newA), None], "zero H"
    )
    seen = []
    p.factors_changed.connect(seen.append)
    H_obj = p.H
    edit.do(p)
    assert p.H is H_obj  # in place
    assert np.array_equal(p.H, newH) and np.array_equal(p.allow_H, newA)
    edit.undo(p)
    assert np.array_equal(p.H, H0) and np.array_equal(p.allow_H, allow0)
    assert [r.target for r in seen] == ["H", "allow_H", "allow_H", "H"]
    assert edit.text == "zero H"


def test_edit_base_class():
    e = Edit()
    with pytest.raises(NotImplementedError):
        e.do(None)
    with pytest.raises(NotImplementedError):
        e.undo(None)
    assert e.merge(Edit()) is False and e.merge_key is None
    assert "Edit" in repr(e)
