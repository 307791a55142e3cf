"""demixer.model.paint and demixer.model.component_edits: constraint painting, tolerances, components
and sources — every edit undoable bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from demixer.core.constraints import activation_regions, harmonic_template
from demixer.core.strokes import bounding_box, rect_mask, stroke_mask
from demixer.model import component_edits as ce
from demixer.model.paint import component_notes, paint_edit, time_range_edit, tolerance_edit
from demixer.model.project import RunRecord

ARRAYS = ("W", "H", "allow_W", "allow_H", "W0", "H0")


def state(p):
    arrays = {k: getattr(p, k).copy() for k in ARRAYS}
    meta = ([dataclasses.replace(c) for c in p.components], [dataclasses.replace(s) for s in p.sources])
    return arrays, meta, p.W_E.copy() if p.W_E is not None else None, p.score


def assert_same(p, st):
    arrays, meta, W_E, score = st
    for k, a in arrays.items():
        b = getattr(p, k)
        assert b.dtype == a.dtype and b.shape == a.shape and b.tobytes() == a.tobytes(), k
    assert p.components == meta[0] and p.sources == meta[1]
    if W_E is None:
        assert p.W_E is None
    else:
        assert p.W_E.tobytes() == W_E.tobytes()
    assert p.score == score


def consistent(p):
    for X, A in (("W", "allow_W"), ("H", "allow_H"), ("W0", "allow_W"), ("H0", "allow_H")):
        assert not getattr(p, X)[~getattr(p, A)].any(), f"{X} nonzero where {A} forbids"


def test_paint_zero_on_h_forbids_and_zeroes_exactly_the_stroke_and_undoes(small_project):
    p = small_project
    before = state(p)
    mask = stroke_mask(p.H.shape, [(0.2, 3.0), (2.7, 30.4)], (0.6, 2.5))
    regions = []
    p.factors_changed.connect(regions.append)
    edit = paint_edit(p, "H", mask, allow=False)
    assert edit
    edit.do(p)
    assert not p.allow_H[mask].any() and not p.H[mask].any() and not p.H0[mask].any()
    np.testing.assert_array_equal(p.allow_H[~mask], before[0]["allow_H"][~mask])
    np.testing.assert_array_equal(p.H[~mask], before[0]["H"][~mask])
    consistent(p)
    # only the bounding box is stored and announced
    assert {r.target for r in regions} == {"H", "allow_H"}
    r0, r1, c0, c1 = bounding_box(mask)
    assert c1 - c0 < p.n_frames and all(r.rows == (r0, r1) and r.cols == (c0, c1) for r in regions)
    edit.undo(p)
    assert_same(p, before)
    edit.do(p)
    assert not p.allow_H[mask].any()


def test_paint_allow_seeds_positive_values_from_the_row_or_column(small_project):
    p = small_project
    # H row 1 frames 0..9 are forbidden: allow them back
    mask = rect_mask(p.H.shape, 1, 0, 1, 9)
    row = p.H[1, p.allow_H[1]]
    edit = paint_edit(p, "H", mask, allow=True)
    edit.do(p)
    assert p.allow_H[1, :10].all()
    np.testing.assert_allclose(p.H[1, :10], row[row > 0].mean(), rtol=1e-6)
    assert (p.H0[1, :10] > 0).all()
    # W column 0 bins 20.. are forbidden: allow some of them
    col = p.W[p.allow_W[:, 0], 0]
    mask = rect_mask(p.W.shape, 22, 0, 25, 0)
    paint_edit(p, "W", mask, allow=True).do(p)
    np.testing.assert_allclose(p.W[22:26, 0], col[col > 0].mean(), rtol=1e-6)
    consistent(p)
    # an allowed entry that decayed to 0 is re-seeded by the allow brush; painting zero on it again
    p.H[2, 5] = 0
    paint_edit(p, "H", rect_mask(p.H.shape, 2, 5, 2, 5), allow=True).do(p)
    assert p.H[2, 5] > 0
    # painting what is already so changes nothing
    assert not paint_edit(p, "H", rect_mask(p.H.shape, 0, 0, 0, 3), allow=True)


def test_time_range_restrict_and_forbid(small_project):
    p = small_project
    before = state(p)
    e = time_range_edit(p, [0, 2], (5, 12), "restrict")
    e.do(p)
    for r in (0, 2):
        assert p.allow_H[r, 5:13].all() and not p.allow_H[r, :5].any() and not p.allow_H[r, 13:].any()
    np.testing.assert_array_equal(p.allow_H[1], before[0]["allow_H"][1])
    consistent(p)
    e.undo(p)
    assert_same(p, before)
    e = time_range_edit(p, [3], (20, 25), "forbid", bins=(4, 9))
    e.do(p)
    assert not p.allow_H[3, 20:26].any() and p.allow_H[3, :20].all()
    assert not p.allow_W[4:10, 3].any() and p.allow_W[:4, 3].all()
    consistent(p)
    e.undo(p)
    assert_same(p, before)


def test_tolerance_edit_moves_regions_by_the_difference_and_keeps_painting(demo_project):
    p = demo_project
    before = state(p)
    r = next(i for i, c in enumerate(p.components) if c.name == "C5 rh")
    ro = next(i for i, c in enumerate(p.components) if c.name == "C5 rh onset")
    # a painted zero far from any C5 note region is kept
    notes = component_notes(p, r)
    assert notes
    new = dataclasses.replace(p.score, tol_note_post=1.0)
    edit = tolerance_edit(p, new)
    assert "note: after 0.5 → 1" in edit.text
    edit.do(p)
    a = p.analysis.params
    pre = p.score.tol_note_pre
    expected = activation_regions([(n.onset, n.offset) for n in notes], p.n_frames, a.sr, a.hop, pre, 1.0)
    np.testing.assert_array_equal(p.allow_H[r], expected)
    np.testing.assert_array_equal(p.allow_H[ro], before[0]["allow_H"][ro])  # onsets use their own tolerances
    assert p.score.tol_note_post == 1.0
    consistent(p)
    assert (p.H[r, expected] > 0).all()
    edit.undo(p)
    assert_same(p, before)
    # onset tolerances and the pitch band
    edit = tolerance_edit(p, dataclasses.replace(p.score, tol_onset_post=0.3, tol_pitch=0.1))
    edit.do(p)
    iv = [(n.onset, n.onset) for n in notes]
    exp_on = activation_regions(iv, p.n_frames, a.sr, a.hop, p.score.tol_onset_pre, 0.3)
    np.testing.assert_array_equal(p.allow_H[ro], exp_on)
    nh = p.score.n_harmonics
    _, band = harmonic_template(p.components[r].pitch, p.n_bins, a.sr, a.n_fft, tol=0.1, n_harmonics=nh)
    np.testing.assert_array_equal(p.allow_W[:, r], band)
    consistent(p)
    edit.undo(p)
    assert_same(p, before)
    assert tolerance_edit(p, p.score) is None


def test_metadata_edits_undo(small_project):
    p = small_project
    before = state(p)
    edits = [
        ce.rename_component(p, 0, "bass C"),
        ce.set_locked(p, [0, 3], True),
        ce.assign_components(p, [3], "rh"),
        ce.add_source(p, "drums"),
        ce.rename_source(p, "lh", "left"),
        ce.recolour_source(p, "rh", "#123456"),
        ce.delete_source(p, "rh"),
        ce.assign_pitch_range(p, 60, 60, "rh"),
    ]
    for e in edits:
        assert e
    e = ce.rename_component(p, 0, "bass C")
    e.do(p)
    assert p.components[0].name == "bass C"
    e = ce.set_locked(p, [0, 3], True)
    e.do(p)
    assert p.lock.tolist() == [True, False, False, True]
    assert p.run_inputs()["lock"].tolist() == [True, False, False, True]
    e = ce.rename_source(p, "lh", "left")
    e.do(p)
    assert [s.name for s in p.sources] == ["left", "rh"] and p.components[0].source == "left"
    e = ce.delete_source(p, "rh")
    e.do(p)
    assert p.components[1].source == "" and "residual" in p.source_names()
    e.undo(p)
    assert p.components[1].source == "rh"
    with pytest.raises(ValueError):
        ce.add_source(p, "residual")
    with pytest.raises(ValueError):
        ce.add_source(p, "rh")
    ce.rename_source(p, "left", "lh").do(p)
    ce.set_locked(p, [0, 3], False).do(p)
    ce.rename_component(p, 0, "C4 lh").do(p)
    assert_same(p, before)


def test_reset_sources_from_score(demo_project):
    p = demo_project
    before = state(p)
    ce.assign_components(p, range(p.n_components), "").do(p)
    ce.delete_source(p, "rh").do(p)
    e = ce.reset_sources_from_score(p)
    e.do(p)
    assert [s.name for s in p.sources] == ["lh", "rh"]
    assert [c.source for c in p.components] == [c.source for c in before[1][0]]


def test_delete_and_add_components_are_undone_exactly(demo_project):
    p = demo_project
    p.W_E = np.random.default_rng(0).random((p.n_components, p.n_bins)).astype(np.float32)
    before = state(p)
    R = p.n_components
    e = ce.RemoveComponents(p, [0, 5, R - 1])
    e.do(p)
    assert p.n_components == R - 3 and p.W.shape[1] == R - 3 and p.W_E.shape[0] == R - 3
    assert p.H.shape[0] == R - 3 and p.allow_H.shape[0] == R - 3 and p.H0.shape[0] == R - 3
    e.undo(p)
    assert_same(p, before)
    with pytest.raises(ValueError):
        ce.RemoveComponents(p, range(R))

    d = ce.pitch_component_data(p, 61, "rh", frames=(100, 200))
    e = ce.insert_components_edit(p, [d])
    e.do(p)
    r = next(i for i, c in enumerate(p.components) if c.name == "C#4 rh")
    assert p.components[r].kind == "pitch" and p.components[r].source == "rh"
    a = p.analysis.params
    tmpl, allow = harmonic_template(61, p.n_bins, a.sr, a.n_fft, tol=p.score.tol_pitch, n_harmonics=p.score.n_harmonics)
    np.testing.assert_array_equal(p.allow_W[:, r], allow)
    np.testing.assert_array_equal(p.W[:, r], tmpl)
    assert p.allow_H[r, 100:201].all() and p.allow_H[r].sum() == 101
    consistent(p)
    # sorted among the rh pitch components: after C4 rh? (there is none) — between D4 rh's neighbours
    names = [c.name for c in p.components]
    assert names.index("C#4 rh") < names.index("D4 rh")
    e.undo(p)
    assert_same(p, before)


def test_onset_component_is_allowed_only_around_its_notes(demo_project):
    p = demo_project
    r_on = next(i for i, c in enumerate(p.components) if c.name == "C5 rh onset")
    ce.RemoveComponents(p, [r_on]).do(p)
    r = next(i for i, c in enumerate(p.components) if c.name == "C5 rh")
    d = ce.onset_component_data(p, r)
    e = ce.insert_components_edit(p, [d])
    e.do(p)
    new = next(i for i, c in enumerate(p.components) if c.name == "C5 rh onset")
    notes = component_notes(p, r)
    a = p.analysis.params
    iv = [(n.onset, n.onset) for n in notes]
    exp = activation_regions(iv, p.n_frames, a.sr, a.hop, p.score.tol_onset_pre, p.score.tol_onset_post)
    np.testing.assert_array_equal(p.allow_H[new], exp)
    assert p.components[new].kind == "onset" and np.allclose(p.W[:, new], 0.1)
    consistent(p)


def test_new_component_after_a_run_starts_at_the_scale_of_the_others(small_project):
    p = small_project
    p.H = p.H * 100
    p.runs.append(RunRecord("#1", "nmf"))
    d = ce.pitch_component_data(p, 48, "lh")
    assert float(d.h.max()) > 10


def test_reference_allow_is_the_score_initialisation(demo_project):
    from demixer.model.paint import reference_allow

    p = demo_project
    np.testing.assert_array_equal(reference_allow(p, "H"), p.allow_H)
    np.testing.assert_array_equal(reference_allow(p, "W"), p.allow_W)
