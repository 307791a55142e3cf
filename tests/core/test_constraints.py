"""Score-informed constraints (DESIGN.md §2.3): templates, activation regions, the score build."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from demixer.core.constraints import (
    ComponentInfo,
    ScoreInit,
    ScoreParams,
    activation_regions,
    apply_allow,
    build_score_constraints,
    default_onset_policy,
    harmonic_template,
    is_struck_or_plucked,
    onset_template,
    onset_verdict,
    split_by_pitch,
)
from demixer.core.notes import Note, pitch_to_hz

SR, N_FFT, HOP = 22050, 2048, 512
K = N_FFT // 2 + 1
BIN_HZ = SR / N_FFT
FRAME_S = HOP / SR


def t_frame(n: int) -> float:
    return n * HOP / SR


# --------------------------------------------------------------------------------------------------
# harmonic_template


def brute_force_allow(pitch, sr, n_fft, tol, n_harmonics=None, lobe=2.0):
    """The spec, written out the slow way: the relative band, or strictly inside the window's main lobe."""
    k_bins = n_fft // 2 + 1
    f0 = pitch_to_hz(pitch)
    expected = np.zeros(k_bins)
    m = 1
    while m * f0 < sr / 2 and (n_harmonics is None or m <= n_harmonics):
        for k in range(k_bins):
            f = k * sr / n_fft
            if f >= sr / 2:
                continue
            if abs(f - m * f0) <= tol * m * f0 or abs(k - m * f0 * n_fft / sr) < lobe:
                expected[k] = max(expected[k], 1.0 / m)
        m += 1
    return expected


def test_harmonic_template_values_and_exact_zeros():
    tmpl, allow = harmonic_template(69, K, SR, N_FFT, tol=0.05, n_harmonics=8)
    assert tmpl.shape == (K,) and allow.shape == (K,)
    assert tmpl.dtype == np.float32 and allow.dtype == bool
    f0 = 440.0
    for m in range(1, 9):
        k = round(m * f0 / BIN_HZ)
        assert allow[k]
        # harmonics up to 8 do not overlap at 5 %, so the value is exactly 1/m
        assert tmpl[k] == np.float32(1.0 / m)
    assert np.all(tmpl[~allow] == 0.0)
    assert np.all(tmpl[allow] > 0.0)
    # beyond the 8th harmonic nothing
    assert not allow[round(9 * f0 / BIN_HZ)]
    expected = brute_force_allow(69, SR, N_FFT, 0.05, 8)
    np.testing.assert_array_equal(allow, expected > 0)
    np.testing.assert_array_equal(tmpl, expected.astype(np.float32))


def test_harmonic_template_all_harmonics_matches_spec_max_over_overlaps():
    tmpl, allow = harmonic_template(45, K, SR, N_FFT, tol=0.05)  # A2, 110 Hz: ~100 harmonics, overlapping
    expected = brute_force_allow(45, SR, N_FFT, 0.05)
    np.testing.assert_array_equal(tmpl, expected.astype(np.float32))
    np.testing.assert_array_equal(allow, expected > 0)


def test_harmonic_template_dtype():
    tmpl, _ = harmonic_template(60, K, SR, N_FFT, dtype=np.float64)
    assert tmpl.dtype == np.float64


def test_tolerance_band_exact_bin_just_inside_and_outside():
    # A4 = 440 Hz, first harmonic band [418, 462] Hz: bins 39..42 (419.9 .. 452.2 Hz)
    _, allow = harmonic_template(69, K, SR, N_FFT, tol=0.05, n_harmonics=1)
    assert np.flatnonzero(allow).tolist() == [39, 40, 41, 42]
    # bin 43 is at 462.96 Hz: a tolerance a hair wider than its distance includes it, a hair narrower not
    d43 = (43 * BIN_HZ - 440.0) / 440.0
    _, wide = harmonic_template(69, K, SR, N_FFT, tol=d43 + 1e-9, n_harmonics=1)
    _, narrow = harmonic_template(69, K, SR, N_FFT, tol=d43 - 1e-9, n_harmonics=1)
    assert wide[43] and not narrow[43]
    # lower edge: bin 38 at 409.1 Hz
    d38 = (440.0 - 38 * BIN_HZ) / 440.0
    _, wide = harmonic_template(69, K, SR, N_FFT, tol=d38 + 1e-9, n_harmonics=1)
    _, narrow = harmonic_template(69, K, SR, N_FFT, tol=d38 - 1e-9, n_harmonics=1)
    assert wide[38] and not narrow[38]
    # and at harmonic 3 (1320 Hz, band ±66 Hz) the band scales with m
    _, allow3 = harmonic_template(69, K, SR, N_FFT, tol=0.05, n_harmonics=3)
    band3 = [k for k in range(K) if abs(k * BIN_HZ - 1320.0) <= 66.0]
    assert all(allow3[k] for k in band3)
    assert not allow3[band3[0] - 1] and not allow3[band3[-1] + 1]


def test_low_pitch_gets_nearest_bin_for_every_harmonic():
    n_fft = 512
    k_bins = n_fft // 2 + 1
    bin_hz = SR / n_fft  # 43 Hz
    f0 = pitch_to_hz(24)  # C1, 32.7 Hz: its ±5 % band is far narrower than a bin
    assert 2 * 0.05 * f0 < bin_hz / 2
    tmpl, allow = harmonic_template(24, k_bins, SR, n_fft, tol=0.05)
    m = 1
    n_checked = 0
    while m * f0 < SR / 2:
        k = min(round(m * f0 / bin_hz), (n_fft - 1) // 2)
        assert allow[k], f"harmonic {m} has no bin"
        assert tmpl[k] >= np.float32(1.0 / m)
        m += 1
        n_checked += 1
    assert n_checked > 300
    assert tmpl[1] == np.float32(1.0)  # f0 → bin 1 (0.76 bins)
    assert np.all(tmpl[~allow] == 0.0)
    # with tol=0 and no main lobe only the nearest bins remain
    _, only_near = harmonic_template(24, k_bins, SR, n_fft, tol=0.0, n_harmonics=4, lobe_bins=0.0)
    assert np.flatnonzero(only_near).tolist() == sorted({round(mm * f0 / bin_hz) for mm in range(1, 5)})


def test_a_low_partial_keeps_the_bins_of_the_windows_main_lobe():
    """Issue 15 (note s15c): a partial's energy spreads over the Hann window's main lobe (±2 bins, zeros at
    exactly ±2), so a low harmonic whose relative band is narrower than the lobe keeps every bin strictly
    within 2 bins of its frequency; higher harmonics, whose band is wider, are unchanged."""
    n_fft = 6144
    k_bins = n_fft // 2 + 1
    x = pitch_to_hz(36) * n_fft / SR  # C2, 65.4 Hz = 18.2 bins: its ±4 % band is ±0.73 bins
    _, allow = harmonic_template(36, k_bins, SR, n_fft, tol=0.04, n_harmonics=1)
    assert np.flatnonzero(allow).tolist() == [k for k in range(k_bins) if abs(k - x) < 2] == [17, 18, 19, 20]
    _, narrow = harmonic_template(36, k_bins, SR, n_fft, tol=0.04, n_harmonics=1, lobe_bins=0.0)
    assert np.flatnonzero(narrow).tolist() == [18]  # before: the band holds the nearest bin only
    # only bins strictly inside the lobe: a partial at bin 12.25 gets 11..14, not 10 (2.25 bins away)
    pitch = 69 + 12 * math.log2(12.25 * SR / n_fft / 440.0)
    _, lobe = harmonic_template(pitch, k_bins, SR, n_fft, tol=0.0, n_harmonics=1)
    assert np.flatnonzero(lobe).tolist() == [11, 12, 13, 14]
    # a harmonic with a band wider than the lobe is the band alone
    for m in (10, 20):
        _, band = harmonic_template(36, k_bins, SR, n_fft, tol=0.04, n_harmonics=m)
        _, plain = harmonic_template(36, k_bins, SR, n_fft, tol=0.04, n_harmonics=m, lobe_bins=0.0)
        lo = int(np.ceil((m - 0.5) * x))
        assert np.array_equal(band[lo:], plain[lo:])
    with pytest.raises(ValueError, match="lobe_bins"):
        harmonic_template(36, k_bins, SR, n_fft, lobe_bins=-1.0)


def test_no_bins_at_or_above_nyquist():
    # A high pitch whose fundamental band straddles Nyquist (11025 Hz): 124 → 10548 Hz ± 527 Hz
    tmpl, allow = harmonic_template(124, K, SR, N_FFT)
    freqs = np.arange(K) * BIN_HZ
    assert allow.any()
    assert not allow[K - 1]  # the Nyquist bin
    assert np.all(freqs[allow] < SR / 2)
    assert allow[K - 2]
    # for an ordinary pitch the harmonics stop below Nyquist too
    tmpl, allow = harmonic_template(40, K, SR, N_FFT)
    assert np.all(freqs[allow] < SR / 2) and not allow[K - 1]
    # fundamental above Nyquist: empty template
    tmpl, allow = harmonic_template(127, K, SR, N_FFT)
    assert not allow.any() and np.all(tmpl == 0)
    # no harmonic whose frequency is >= Nyquist contributes its nearest bin: 3 * 3520 Hz = 10560 < 11025
    # but 4 * 3520 > Nyquist; with n_fft 2048 the top allowed bin must be in the 3rd harmonic's band
    _, allow = harmonic_template(105, K, SR, N_FFT, tol=0.01)
    assert np.flatnonzero(allow).max() * BIN_HZ <= 3 * 3520 * 1.01 + 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_bins=1024),  # not n_fft // 2 + 1
        dict(tol=-0.1),
        dict(tol=1.5),
        dict(n_harmonics=0),
        dict(sr=0),
        dict(dtype=np.int32),
    ],
)
def test_harmonic_template_validates(kwargs):
    args = dict(pitch=60, n_bins=K, sr=SR, n_fft=N_FFT)
    args.update(kwargs)
    with pytest.raises(ValueError):
        harmonic_template(**args)


def test_onset_template():
    tmpl, allow = onset_template(K)
    assert tmpl.shape == (K,) and np.all(tmpl == np.float32(0.1)) and allow.all()
    tmpl, _ = onset_template(5, value=0.3)
    assert np.all(tmpl == np.float32(0.3))
    with pytest.raises(ValueError):
        onset_template(0)


# --------------------------------------------------------------------------------------------------
# activation_regions


def test_activation_regions_exact_at_tolerances():
    onset, offset, pre, post = 1.0, 2.0, 0.15, 0.5
    region = activation_regions([(onset, offset)], 200, SR, HOP, pre, post)
    assert region.dtype == bool and region.shape == (200,)
    first = math.ceil((onset - pre) / FRAME_S)
    last = math.floor((offset + post) / FRAME_S)
    # the frames just inside and just outside each boundary
    assert t_frame(first - 1) < onset - pre <= t_frame(first)
    assert t_frame(last) <= offset + post < t_frame(last + 1)
    assert region[first] and not region[first - 1]
    assert region[last] and not region[last + 1]
    assert region.sum() == last - first + 1
    assert (first, last) == (37, 107)


def test_activation_regions_boundary_on_a_frame_centre_is_included():
    # 0.1 s frames; 0.5 - 0.2 and 0.7 + 0.1 are not exact in binary but fall on frames 3 and 8
    region = activation_regions([(0.5, 0.7)], 20, 100, 10, 0.2, 0.1)
    assert np.flatnonzero(region).tolist() == [3, 4, 5, 6, 7, 8]


def test_activation_regions_union_clipping_and_empty():
    region = activation_regions([(0.0, 0.1), (5.0, 100.0)], 300, SR, HOP, 0.15, 0.5)
    assert region[0] and region[-1]
    assert not region[round(2.0 / FRAME_S)]
    assert not activation_regions([(50.0, 60.0)], 100, SR, HOP, 0.1, 0.1).any()
    assert not activation_regions([], 10, SR, HOP, 0.1, 0.1).any()
    with pytest.raises(ValueError):
        activation_regions([(2.0, 1.0)], 10, SR, HOP, 0.1, 0.1)
    with pytest.raises(ValueError):
        activation_regions([(0.0, 1.0)], 0, SR, HOP, 0.1, 0.1)
    with pytest.raises(ValueError):
        activation_regions([(0.0, 1.0)], 10, SR, HOP, -0.1, 0.1)


# --------------------------------------------------------------------------------------------------
# onset policy, split_by_pitch, apply_allow


def test_is_struck_or_plucked_families():
    for p in (0, 7, 8, 15, 24, 31, 32, 35, 39, 45, 46, 47, 112, 119):
        assert is_struck_or_plucked(p) is True, p
    for p in (16, 23, 40, 41, 42, 43, 44, 48, 55, 56, 63, 64, 70, 71, 72, 79, 80, 95):
        assert is_struck_or_plucked(p) is False, p
    assert is_struck_or_plucked(None) is None
    assert is_struck_or_plucked(100) is None  # synth effects: unknown
    with pytest.raises(ValueError):
        is_struck_or_plucked(128)


def test_default_onset_policy_from_programs():
    piano = [Note(0, 1, 60, "rh", program=0)]
    violin = [Note(0, 1, 60, "soprano", program=40)]
    unknown = [Note(0, 1, 60, "x")]
    assert default_onset_policy("rh", piano) is True
    assert default_onset_policy("soprano", violin) is False
    assert default_onset_policy("x", unknown) is True  # components made; the staged fit decides from audio
    assert (onset_verdict("rh", piano), onset_verdict("soprano", violin), onset_verdict("x", unknown)) == (
        True, False, None
    )
    assert ScoreParams().onset_templates is default_onset_policy
    # mixed programs: the majority of notes with a known family decides, ties → struck
    two_violins = [Note(0, 1, 60, "g", program=40), Note(1, 2, 60, "g", program=41), piano[0], unknown[0]]
    assert default_onset_policy("g", two_violins) is False
    assert default_onset_policy("g", two_violins[1:]) is True


def test_split_by_pitch():
    notes = [Note(0, 1, 59, "", 80, 0), Note(0.5, 1, 60, "whatever"), Note(1, 2, 72)]
    out = split_by_pitch(notes, 60)
    assert [n.group for n in out] == ["low", "high", "high"]
    assert out[0] == Note(0, 1, 59, "low", 80, 0)
    assert notes[0].group == ""  # inputs untouched
    with pytest.raises(ValueError):
        split_by_pitch(notes, -1)


def test_apply_allow_copies_and_zeroes_exactly():
    rng = np.random.default_rng(0)
    W = rng.random((6, 4)).astype(np.float32) + 0.1
    allow = rng.random((6, 4)) > 0.5
    W_before = W.copy()
    out = apply_allow(W, allow)
    assert out.dtype == np.float32 and out is not W
    assert np.all(out[~allow] == 0) and np.array_equal(out[allow], W[allow])
    np.testing.assert_array_equal(W, W_before)
    with pytest.raises(ValueError):
        apply_allow(W, allow[:5])
    with pytest.raises(ValueError):
        apply_allow(W, allow.astype(np.float32))


# --------------------------------------------------------------------------------------------------
# build_score_constraints


def two_group_score():
    return [
        Note(0.0, 1.0, 60, "rh"),
        Note(0.0, 2.0, 48, "lh"),
        Note(1.0, 2.0, 60, "lh"),
        Note(2.0, 2.5, 64, "rh"),
    ]


def build(notes, n_frames=150, **params):
    return build_score_constraints(
        notes, n_bins=K, n_frames=n_frames, sr=SR, n_fft=N_FFT, hop=HOP, params=ScoreParams(**params)
    )


def assert_consistent(init: ScoreInit, n_frames: int):
    R = len(init.components)
    assert init.W0.shape == (K, R) and init.allow_W.shape == (K, R)
    assert init.H0.shape == (R, n_frames) and init.allow_H.shape == (R, n_frames)
    assert init.allow_W.dtype == bool and init.allow_H.dtype == bool
    assert np.all(init.W0[~init.allow_W] == 0) and np.all(init.W0[init.allow_W] > 0)
    assert np.all(init.H0[~init.allow_H] == 0) and np.all(init.H0[init.allow_H] == 1)
    assert init.allow_H.any(axis=1).all() and init.allow_W.any(axis=0).all()
    assert len({c.name for c in init.components}) == R


def test_build_two_groups_sharing_a_pitch_get_separate_components():
    notes = two_group_score()
    init = build(notes, onset_templates=False)
    assert_consistent(init, 150)
    assert init.sources == ["rh", "lh"]
    assert init.components == [
        ComponentInfo("C4 rh", 60, "pitch", "rh"),
        ComponentInfo("E4 rh", 64, "pitch", "rh"),
        ComponentInfo("C3 lh", 48, "pitch", "lh"),
        ComponentInfo("C4 lh", 60, "pitch", "lh"),
    ]
    assert init.W0.dtype == np.float32 and init.H0.dtype == np.float32
    # the two C4 components share the template but not the activation
    np.testing.assert_array_equal(init.W0[:, 0], init.W0[:, 3])
    d = ScoreParams()  # the defaults (tol_pitch 4 %, n_harmonics 20, tolerances 0.25 s before / 0.5 s after)
    tmpl, allow = harmonic_template(60, K, SR, N_FFT, tol=d.tol_pitch, n_harmonics=d.n_harmonics)
    np.testing.assert_array_equal(init.W0[:, 0], tmpl)
    np.testing.assert_array_equal(init.allow_W[:, 0], allow)
    rh_c4 = activation_regions([(0.0, 1.0)], 150, SR, HOP, d.tol_note_pre, d.tol_note_post)
    lh_c4 = activation_regions([(1.0, 2.0)], 150, SR, HOP, d.tol_note_pre, d.tol_note_post)
    np.testing.assert_array_equal(init.allow_H[0], rh_c4)
    np.testing.assert_array_equal(init.allow_H[3], lh_c4)
    assert not np.array_equal(rh_c4, lh_c4)


def test_build_per_pitch_when_not_per_group():
    init = build(two_group_score(), onset_templates=False, per_group=False)
    assert_consistent(init, 150)
    by_pitch = {c.pitch: c for c in init.components}
    assert len(init.components) == 3
    assert by_pitch[60].source == ""  # notes in two groups
    assert by_pitch[48].source == "lh" and by_pitch[64].source == "rh"
    assert [c.name for c in init.components] == ["E4 rh", "C3 lh", "C4"]  # source "" last
    r60 = [c.pitch for c in init.components].index(60)
    d = ScoreParams()
    np.testing.assert_array_equal(
        init.allow_H[r60], activation_regions([(0.0, 1.0), (1.0, 2.0)], 150, SR, HOP, d.tol_note_pre, d.tol_note_post)
    )


def test_onset_components_allowed_only_around_onsets():
    notes = two_group_score()
    params = dict(onset_templates=True, tol_onset_pre=0.2, tol_onset_post=0.1)
    init = build(notes, **params)
    assert_consistent(init, 150)
    kinds = [c.kind for c in init.components]
    assert kinds == ["pitch"] * 4 + ["onset"] * 4
    onset_comps = init.components[4:]
    assert [c.name for c in onset_comps] == ["C4 rh onset", "E4 rh onset", "C3 lh onset", "C4 lh onset"]
    for r, comp in enumerate(init.components[4:], start=4):
        assert np.all(init.W0[:, r] == np.float32(0.1)) and init.allow_W[:, r].all()
        mine = [n for n in notes if n.pitch == comp.pitch and n.group == comp.source]
        expected = activation_regions([(n.onset, n.onset) for n in mine], 150, SR, HOP, 0.2, 0.1)
        np.testing.assert_array_equal(init.allow_H[r], expected)
    # C3 lh sounds 0..2 s but its onset component is only allowed near 0 s
    r = [c.name for c in init.components].index("C3 lh onset")
    assert init.allow_H[r, 0] and not init.allow_H[r, round(0.5 / FRAME_S)]
    first_out = math.floor(0.1 / FRAME_S) + 1
    assert init.allow_H[r, first_out - 1] and not init.allow_H[r, first_out]


def test_onset_templates_mapping_and_callable_and_programs():
    notes = two_group_score()
    init = build(notes, onset_templates={"lh": True})  # rh missing → False
    assert [c.name for c in init.components if c.kind == "onset"] == ["C3 lh onset", "C4 lh onset"]
    seen = {}

    def policy(group, group_notes):
        seen[group] = len(group_notes)
        return group == "rh"

    init = build(notes, onset_templates=policy)
    assert seen == {"rh": 2, "lh": 2}
    assert [c.name for c in init.components if c.kind == "onset"] == ["C4 rh onset", "E4 rh onset"]
    # default policy: piano (program 0) gets onsets, violin (40) does not
    notes = [Note(0, 1, 60, "piano", program=0), Note(0, 1, 72, "violin", program=40)]
    init = build(notes)
    assert [c.name for c in init.components] == ["C4 piano", "C5 violin", "C4 piano onset"]
    assert [c.name for c in build(notes, onset_templates=False).components] == ["C4 piano", "C5 violin"]


def test_build_split_pitch_regroups():
    notes = [Note(0, 1, 72), Note(0, 1, 48), Note(1, 2, 60), Note(1, 2, 59)]
    init = build(notes, split_pitch=60, onset_templates=False)
    assert init.sources == ["high", "low"]
    assert [c.name for c in init.components] == ["C4 high", "C5 high", "C3 low", "B3 low"]
    # without groups and without split: one source-less component per pitch
    init = build(notes, onset_templates=False)
    assert init.sources == []
    assert [c.name for c in init.components] == ["C3", "B3", "C4", "C5"]


def test_build_clips_and_ignores_notes_beyond_frames():
    n_frames = 50  # 1.14 s
    notes = [Note(0.5, 10.0, 60, "a"), Note(5.0, 6.0, 62, "a"), Note(0.0, 0.5, 64, "b")]
    init = build(notes, n_frames=n_frames, onset_templates=False)
    assert_consistent(init, n_frames)
    assert [c.name for c in init.components] == ["C4 a", "E4 b"]  # D4 a is entirely beyond: no component
    assert init.allow_H[0, -1]  # clipped, still allowed to the end
    # a note starting after the end but whose pre-tolerance reaches the last frame is kept
    t_last = t_frame(n_frames - 1)
    init = build([Note(t_last + 0.1, t_last + 1.0, 60, "a")], n_frames=n_frames, onset_templates=False)
    assert init.allow_H[0, -1] and init.allow_H[0].sum() == len(
        [n for n in range(n_frames) if t_frame(n) >= t_last + 0.1 - ScoreParams().tol_note_pre]
    )
    with pytest.raises(ValueError, match="frames"):
        build([Note(5.0, 6.0, 62, "a")], n_frames=n_frames)


def test_build_ignores_pitches_above_nyquist():
    init = build([Note(0, 1, 127, "a"), Note(0, 1, 60, "a")], onset_templates=False)
    assert [c.pitch for c in init.components] == [60]


def test_build_unique_names_even_for_awkward_group_names():
    notes = [Note(0, 1, 60, "rh"), Note(0, 1, 60, "rh onset")]
    init = build(notes, onset_templates=True)
    names = [c.name for c in init.components]
    assert len(set(names)) == len(names) == 4


def test_build_dtype_float64():
    init = build_score_constraints(
        two_group_score(), n_bins=K, n_frames=100, sr=SR, n_fft=N_FFT, hop=HOP, dtype=np.float64
    )
    assert init.W0.dtype == np.float64 and init.H0.dtype == np.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(notes=[]), "score has no notes"),
        (dict(n_bins=K - 1), "n_bins"),
        (dict(n_frames=0), "n_frames"),
        (dict(hop=0), "hop"),
        (dict(sr=-1.0), "sr"),
        (dict(notes=[(0, 1, 60)]), "Note"),
    ],
)
def test_build_validates(kwargs, match):
    args = dict(notes=two_group_score(), n_bins=K, n_frames=100, sr=SR, n_fft=N_FFT, hop=HOP)
    args.update(kwargs)
    notes = args.pop("notes")
    with pytest.raises(ValueError, match=match):
        build_score_constraints(notes, **args)


def test_score_params_validates():
    with pytest.raises(ValueError):
        ScoreParams(tol_note_pre=-0.1)
    with pytest.raises(ValueError):
        ScoreParams(onset_templates="yes")
    with pytest.raises(ValueError):
        ScoreParams(n_harmonics=0)


def test_build_on_dev_chorale(shared_data):
    path = shared_data / "dev" / "chorale_bwv255" / "score.csv"
    with path.open(newline="") as fh:
        notes = [
            Note(float(row["onset_s"]), float(row["offset_s"]), int(row["pitch"]), row["group"])
            for row in csv.DictReader(fh)
        ]
    n_frames = 1 + 418950 // HOP  # 19 s at 22050 Hz, centred frames
    init = build_score_constraints(notes, n_bins=K, n_frames=n_frames, sr=SR, n_fft=N_FFT, hop=HOP)
    assert_consistent(init, n_frames)
    assert init.sources == ["alto", "bass", "soprano", "tenor"]
    keys = {(n.group, n.pitch) for n in notes}
    pitch_comps = [c for c in init.components if c.kind == "pitch"]
    assert len(pitch_comps) == len(keys)
    assert {(c.source, c.pitch) for c in pitch_comps} == keys
    # sorted by (source order, pitch)
    order = [(init.sources.index(c.source), c.pitch) for c in pitch_comps]
    assert order == sorted(order)
    # no programs in a CSV → default policy says "piano-like": one onset component per pitch component
    onset_comps = init.components[len(pitch_comps) :]
    assert [(c.source, c.pitch) for c in onset_comps] == [(c.source, c.pitch) for c in pitch_comps]
    assert all(c.kind == "onset" for c in onset_comps)
    # every note is covered by its component's activation from its onset frame to its offset frame
    index = {(c.source, c.pitch): r for r, c in enumerate(pitch_comps)}
    for n in notes:
        r = index[(n.group, n.pitch)]
        a, b = math.ceil(n.onset / FRAME_S), min(math.floor(n.offset / FRAME_S), n_frames - 1)
        assert init.allow_H[r, a : b + 1].all()
    # the score makes H mostly zero (DESIGN.md §2.6)
    assert init.allow_H.mean() < 0.5
