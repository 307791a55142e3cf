"""The staged fit's numerical parts (demixer.core.refine): note ↔ component mapping, alignment of notes
to activations, decay (struck or sustained), structured activations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demixer.core.constraints import ComponentInfo, activation_regions
from demixer.core.notes import Note
from demixer.core.refine import (
    Decay,
    RefineParams,
    align_notes,
    component_notes,
    decay_stats,
    is_decaying,
    note_activations,
    refit_iterations,
    split_iterations,
)

SR, HOP = 22050, 512
DT = HOP / SR
N = 400  # frames, 9.3 s
TIMES = np.arange(N) * DT


def frame(t: float) -> int:
    return int(round(t / DT))


def step_activation(on: float, off: float, level: float = 1.0, decay_db_s: float = 0.0) -> np.ndarray:
    """An activation that is ``level`` from the frame after ``on`` to ``off`` (optionally decaying)."""
    h = np.zeros(N)
    a, b = frame(on) + 1, frame(off)
    h[a : b + 1] = level * 10 ** (decay_db_s * (TIMES[a : b + 1] - TIMES[a]) / 20)
    return h


# --------------------------------------------------------------------------------------------------
# parameters


def test_split_iterations_adds_up_and_follows_the_shares():
    p = RefineParams()
    for n in (0, 1, 2, 3, 7, 100, 10_001):
        s, t, a = split_iterations(n, p)
        assert s + t + a == n and min(s, t, a) >= 0
    assert split_iterations(100, p) == (25, 50, 25)
    assert split_iterations(100, RefineParams(scout_share=0.0, activation_share=0.5)) == (0, 50, 50)


def test_refit_iterations_leave_h_a_head_start():
    p = RefineParams()
    assert p.refit_iter == 10 and p.held_iter == 1
    assert refit_iterations(25, p) == 10  # the default: 5 of H, 10 of the struck templates, 10 of H
    assert refit_iterations(10, p) == 4 and refit_iterations(3, p) == 1
    assert refit_iterations(2, p) == 0 and refit_iterations(0, p) == 0
    assert refit_iterations(25, RefineParams(refit_iter=0)) == 0
    for n in range(0, 40):
        k = refit_iterations(n, p)
        assert k == 0 or n - 2 * k >= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scout_share": -0.1},
        {"scout_share": 1.0},
        {"scout_share": 0.6, "activation_share": 0.4},
        {"scout_hop_s": 0.0},
        {"max_shift": -1.0},
        {"tail": 0.0},
        {"tail": 1.5},
        {"struck_decay_db_s": math.nan},
        {"struck_falling": 0.0},
        {"refit_iter": -1},
        {"refit_iter": 2.5},
        {"refit_iter": True},
        {"held_iter": -1},
        {"held_iter": 1.0},
    ],
)
def test_invalid_refine_params_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        RefineParams(**kwargs)


# --------------------------------------------------------------------------------------------------
# notes ↔ components


def test_component_notes_per_group_per_pitch_and_onsets():
    notes = [Note(0, 1, 60, "rh"), Note(1, 2, 60, "lh"), Note(2, 3, 48, "lh"), Note(3, 4, 60, "rh")]
    comps = [
        ComponentInfo("C4 rh", 60, "pitch", "rh"),
        ComponentInfo("C3 lh", 48, "pitch", "lh"),
        ComponentInfo("C4 lh", 60, "pitch", "lh"),
        ComponentInfo("C4 rh onset", 60, "onset", "rh"),
        ComponentInfo("C4 lh onset", 60, "onset", "lh"),
        ComponentInfo("free 1", None, "free", ""),
    ]
    assert component_notes(comps, notes) == [[0, 3], [2], [1], [0, 3], [1], []]
    # onset components only own notes of groups with onset templates
    assert component_notes(comps, notes, onset_groups={"rh": True, "lh": False}) == [[0, 3], [2], [1], [0, 3], [], []]
    # one component per pitch: it owns the pitch's notes of every group
    shared = [ComponentInfo("C3 lh", 48, "pitch", "lh"), ComponentInfo("C4", 60, "pitch", "")]
    assert component_notes(shared, notes, per_group=False) == [[2], [0, 1, 3]]


# --------------------------------------------------------------------------------------------------
# alignment


def test_late_and_early_written_notes_move_to_the_activation():
    true_on, true_off = 2.0, 3.0
    H = step_activation(true_on, true_off)[None]
    for shift_on, shift_off in ((0.15, -0.12), (-0.2, 0.2), (0.1, 0.0)):
        written = Note(true_on + shift_on, true_off + shift_off, 60, "a")
        (moved,) = align_notes([written], H, [[0]], TIMES, lag=0.0)
        # the rise is between the frame before and the frame of the step: within one frame of the truth
        assert abs(moved.onset - true_on) <= DT, (shift_on, moved)
        assert abs(moved.offset - true_off) <= 1.5 * DT, (shift_off, moved)
        assert (moved.pitch, moved.group) == (60, "a")


def test_alignment_keeps_a_score_that_agrees_or_has_no_evidence():
    H = step_activation(2.0, 3.0)[None]
    close = Note(2.0 + 0.5 * DT, 3.0, 60, "a")
    assert align_notes([close], H, [[0]], TIMES, lag=0.0, min_shift=0.03) == [close]
    flat = np.full((1, N), 0.5)
    late = Note(2.2, 3.0, 60, "a")
    assert align_notes([late], flat, [[0]], TIMES) == [late]  # no rise anywhere: nothing to align to
    silent = np.zeros((1, N))
    assert align_notes([late], silent, [[0]], TIMES) == [late]
    # a rise too small against the note's level does not count
    weak = step_activation(0.0, 4.0)[None] + 0.05 * step_activation(2.0, 3.0)[None]
    assert align_notes([late], weak, [[0]], TIMES, threshold=0.1) == [late]


def test_alignment_is_bounded_and_does_not_jump_to_a_neighbouring_note():
    # two notes of one component, 0.4 s apart; the second is written 0.15 s early
    H = step_activation(1.0, 1.35)[None] + step_activation(1.4, 1.8)[None]
    notes = [Note(1.0, 1.35, 60, "a"), Note(1.25, 1.8, 60, "a")]
    first, second = align_notes(notes, H, [[0, 1]], TIMES, lag=0.0)
    assert first.onset == notes[0].onset  # already right
    assert abs(second.onset - 1.4) <= DT
    # nothing within max_shift: the note stays
    far = Note(3.0, 3.5, 60, "a")
    H2 = step_activation(3.4, 3.9)[None]
    (kept,) = align_notes([far], H2, [[0]], TIMES, max_shift=0.25, lag=0.0)
    assert kept.onset == far.onset


def test_alignment_does_not_modify_its_input_and_checks_shapes():
    H = step_activation(2.0, 3.0)[None]
    notes = [Note(2.2, 3.0, 60, "a")]
    H_before = H.copy()
    out = align_notes(notes, H, [[0]], TIMES)
    assert notes == [Note(2.2, 3.0, 60, "a")] and out is not notes
    np.testing.assert_array_equal(H, H_before)
    with pytest.raises(ValueError):
        align_notes(notes, H[:, :-1], [[0]], TIMES)
    with pytest.raises(ValueError):
        align_notes(notes, H, [[0], []], TIMES)


def test_offsets_stay_after_onsets():
    H = step_activation(2.0, 2.05)[None]
    (n,) = align_notes([Note(2.1, 2.12, 60, "a")], H, [[0]], TIMES)
    assert n.offset >= n.onset + 0.05 - 1e-9


# --------------------------------------------------------------------------------------------------
# decay: struck or sustained


def test_decay_stats_measure_slope_and_falling_steps_per_group():
    rng = np.random.default_rng(1)
    kinds = (("piano", -25.0, 0.0), ("flute", 0.0, 0.1), ("piano", -25.0, 0.0), ("low piano", -4.0, 0.0))
    rows, H, notes = [], [], []
    for r, (group, rate, waver) in enumerate(kinds):
        on = 0.5 + 2.0 * r
        notes.append(Note(on, on + 1.0, 60 + r, group))
        h = step_activation(on, on + 1.0, decay_db_s=rate)
        H.append(h * (1 + waver * rng.standard_normal(N)).clip(0.5))  # a held note wavers around its level
        rows.append([r])
    stats = decay_stats(notes, np.array(H), rows, TIMES)
    assert set(stats) == {"piano", "flute", "low piano"}
    assert stats["piano"].db_per_s == pytest.approx(-25.0, abs=1.5) and stats["piano"].n_notes == 2
    assert stats["piano"].falling > 0.9 and stats["low piano"].falling > 0.9
    assert abs(stats["flute"].db_per_s) < 2.0 and 0.3 < stats["flute"].falling < 0.7
    assert stats["low piano"].db_per_s > -8.0  # too slow for the rate test alone ...
    assert is_decaying(stats["low piano"]) is True  # ... but it falls step after step
    assert is_decaying(stats["piano"]) is True and is_decaying(stats["flute"]) is False
    assert is_decaying(None) is None and is_decaying(Decay(float("nan"), 0.5, 1)) is None
    assert is_decaying(Decay(-5.0, 0.5, 3), db_per_s=-4.0) is True
    assert is_decaying(Decay(-5.0, 0.6, 3), db_per_s=-8.0, falling=0.67) is False


def test_decay_stats_skip_notes_too_short_to_measure():
    notes = [Note(1.0, 1.0 + 2 * DT, 60, "a")]
    assert decay_stats(notes, step_activation(1.0, 1.1)[None], [[0]], TIMES) == {}


# --------------------------------------------------------------------------------------------------
# structured activations


def test_note_activations_regions_and_values():
    p = RefineParams(tol_note_pre=0.1, tol_note_post=0.3, tol_onset_pre=0.05, tol_onset_post=0.1, tail=0.3)
    notes = [Note(1.0, 2.0, 60, "a"), Note(4.0, 4.5, 60, "a"), Note(1.0, 3.0, 48, "b")]
    comps = [
        ComponentInfo("C4 a", 60, "pitch", "a"),
        ComponentInfo("C3 b", 48, "pitch", "b"),
        ComponentInfo("C4 a onset", 60, "onset", "a"),
        ComponentInfo("C3 b onset", 48, "onset", "b"),  # b has no onset templates: silent
    ]
    rows = component_notes(comps, notes, onset_groups={"a": True, "b": False})
    allow, H = note_activations(comps, notes, rows, n_frames=N, sr=SR, hop=HOP, params=p)
    assert allow.shape == H.shape == (4, N) and allow.dtype == bool and H.dtype == np.float32
    expected = activation_regions([(1.0, 2.0), (4.0, 4.5)], N, SR, HOP, 0.1, 0.3)
    np.testing.assert_array_equal(allow[0], expected)
    core = activation_regions([(1.0, 2.0), (4.0, 4.5)], N, SR, HOP, 0.0, 0.0)
    assert np.all(H[0][core] == 1.0)
    assert np.all(H[0][expected & ~core] == pytest.approx(0.3))
    assert np.all(H[~allow] == 0)
    onset_region = activation_regions([(1.0, 1.0), (4.0, 4.0)], N, SR, HOP, 0.05, 0.1)
    np.testing.assert_array_equal(allow[2], onset_region)
    assert H[2, frame(1.0)] == 1.0 and H[2, frame(4.0)] == 1.0
    assert not allow[3].any() and not H[3].any()
    with pytest.raises(ValueError):
        note_activations(comps, notes, rows[:-1], n_frames=N, sr=SR, hop=HOP)
