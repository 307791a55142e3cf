"""The draft transcription (core/transcribe.py), HPSS masks (core/hpss.py) and voices/hands
(core/voices.py) on synthetic material made here: harmonic tones with attacks and decays."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support.synth import chorale_notes, piano_notes, render, tone

from demixer.core.hpss import hpss_lengths, hpss_masks
from demixer.core.notes import Note
from demixer.core.stft import magnitude, stft
from demixer.core.transcribe import TranscribeParams, pitch_dictionary, transcribe
from demixer.core.voices import (
    HandParams,
    assign_hands,
    assign_voices,
    events,
    hand_margins,
    split_hands,
    voice_names,
)

SR = 22050
N_FFT, HOP = 4096, 256


def _spectrogram(x):
    return magnitude(stft(x.astype(np.float32), N_FFT, HOP))


def _matches(ref, est, tol=0.05):
    """Pairs (ref, est) with the same pitch and onsets within ``tol`` s (greedy, one-to-one)."""
    used, pairs = set(), []
    for r in ref:
        for j, e in enumerate(est):
            if j not in used and e.pitch == r.pitch and abs(e.onset - r.onset) <= tol:
                used.add(j)
                pairs.append((r, e))
                break
    return pairs


# --------------------------------------------------------------------------------------- transcribe
def test_dictionary_is_the_constraint_combs_normalised():
    W, allow = pitch_dictionary([48, 60, 72], N_FFT // 2 + 1, SR, N_FFT)
    assert W.shape == allow.shape == (N_FFT // 2 + 1, 3)
    np.testing.assert_allclose(W.sum(axis=0), 1.0, rtol=1e-5)
    assert np.all(W[~allow] == 0)
    f0_bin = int(round(261.63 * N_FFT / SR))  # C4
    assert allow[f0_bin, 1] and not allow[f0_bin, 0] or allow[f0_bin, 0]  # C4 is C3's 2nd harmonic
    assert not allow[int(round(130.81 * N_FFT / SR)), 1]  # nothing of C4's comb below its fundamental


def test_a_synthetic_note_sequence_is_recovered():
    """A melody with chords and repeated pitches, decaying and held tones: onsets within 50 ms and
    pitches exact for nearly every note, few extra notes."""
    notes = [
        Note(0.20, 0.70, 60), Note(0.20, 0.70, 64),
        Note(0.80, 1.20, 67), Note(1.30, 1.70, 67),  # a repeated pitch
        Note(1.80, 2.60, 71), Note(1.80, 2.60, 56), Note(1.80, 2.60, 50),
        Note(2.80, 3.10, 71), Note(3.20, 3.50, 69), Note(3.60, 4.40, 67), Note(3.60, 4.40, 52),
    ]
    x = np.zeros(int(5.0 * SR))
    for i, n in enumerate(notes):
        kw = dict(decay_db_s=-12.0, attack=0.005) if i % 2 else dict(decay_db_s=0.0, attack=0.03)
        y = tone(n.pitch, n.offset - n.onset, SR, **kw)
        k = int(n.onset * SR)
        x[k:k + y.size] += 0.1 * y
    tr = transcribe(_spectrogram(x), SR, N_FFT, HOP)
    pairs = _matches(notes, tr.notes)
    assert len(pairs) >= len(notes) - 1, (notes, tr.notes)
    assert len(tr.notes) <= len(notes) + 2, tr.notes
    assert all(e.group == "" for e in tr.notes)
    onset_err = [abs(e.onset - r.onset) for r, e in pairs]
    assert np.median(onset_err) < 0.03


def test_a_long_recording_fitted_in_blocks_gives_the_same_notes():
    """Pitch activations fitted block by block (so a long recording's NMF stays small) find the notes
    the whole fit finds — notes across a block's edge too — and W is still a dictionary."""
    pitches = [60, 64, 67, 72, 55, 59, 62, 65]
    notes = [Note(0.15 + 0.45 * i, 0.15 + 0.45 * i + 0.6, p) for i, p in enumerate(pitches * 2)]
    x = np.zeros(int((notes[-1].offset + 0.4) * SR))
    for n in notes:
        y = tone(n.pitch, n.offset - n.onset, SR, decay_db_s=-6.0, attack=0.01)
        k = int(n.onset * SR)
        x[k:k + y.size] += 0.1 * y
    V = _spectrogram(x)
    block = V.shape[1] // 4 + 7  # four blocks whose edges fall inside notes
    whole = transcribe(V, SR, N_FFT, HOP)
    blocked = transcribe(V, SR, N_FFT, HOP, block=block)
    assert blocked.H.shape == whole.H.shape
    np.testing.assert_allclose(blocked.W.sum(axis=0), 1.0, rtol=1e-4)
    assert len(_matches(notes, blocked.notes)) >= len(notes) - 1, blocked.notes
    assert len(_matches(whole.notes, blocked.notes, tol=0.03)) >= len(whole.notes) - 1
    # the frame totals agree: each block explains its frames as the whole fit does
    tot_w, tot_b = whole.H.sum(axis=0), blocked.H.sum(axis=0)
    loud = tot_w > 0.1 * tot_w.max()
    assert np.median(np.abs(tot_b[loud] / tot_w[loud] - 1.0)) < 0.1
    with pytest.raises(ValueError, match="block"):
        transcribe(V, SR, N_FFT, HOP, block=0)


def test_silence_gives_no_notes_and_params_are_checked():
    V = np.zeros((N_FFT // 2 + 1, 50), dtype=np.float32)
    assert transcribe(V, SR, N_FFT, HOP).notes == []
    with pytest.raises(ValueError, match="pitch range"):
        TranscribeParams(pitch_min=80, pitch_max=60)
    with pytest.raises(ValueError, match="n_fft"):
        transcribe(V[:-1], SR, N_FFT, HOP)


# --------------------------------------------------------------------------------------------- HPSS
def test_hpss_masks_split_a_held_tone_from_clicks():
    n = SR * 2
    x = 0.3 * tone(57, 2.0, SR, decay_db_s=0.0, release=0.001)[:n]
    clicks = np.zeros(n)
    clicks[np.arange(SR // 4, n, SR // 4)] = 1.0
    V = _spectrogram(x + clicks)
    l_h, l_p = hpss_lengths(SR, N_FFT, HOP)
    assert l_h % 2 == 1 and l_p % 2 == 1
    Mh, Mp = hpss_masks(V, l_h, l_p)
    np.testing.assert_allclose(Mh + Mp, 1.0, atol=1e-6)
    Vh, Vc = _spectrogram(x), _spectrogram(clicks)
    # the harmonic mask keeps the tone's energy, the percussive one the clicks'
    assert (Mh * Vh).sum() / Vh.sum() > 0.8
    assert (Mp * Vc).sum() / Vc.sum() > 0.6
    Mb, _ = hpss_masks(V, l_h, l_p, binary=True)
    assert set(np.unique(Mb)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="odd"):
        hpss_masks(V, 4, l_p)


# ------------------------------------------------------------------------------------------- voices
def test_voice_names():
    assert voice_names(4) == ["soprano", "alto", "tenor", "bass"]
    assert voice_names(3) == ["voice1", "voice2", "voice3"]
    with pytest.raises(ValueError):
        voice_names(0)


def _bare(notes):
    return [dataclasses.replace(n, group="") for n in notes]


def _accuracy(truth, est):
    return np.mean([a.group == b.group for a, b in zip(truth, est, strict=True)])


def test_four_voice_progressions_are_assigned_by_rank_and_continuity():
    for seed in (1, 2, 3):
        truth = chorale_notes(seed)
        assert _accuracy(truth, assign_voices(_bare(truth), 4)) == 1.0


def test_crossing_voices_follow_voice_leading_not_rank():
    """Two voices cross: the upper one descends stepwise below the lower one, which holds its note."""
    truth = [
        Note(0.0, 1.0, 67, "voice1"), Note(0.0, 3.0, 62, "voice2"),  # voice2 holds D4
        Note(1.0, 1.5, 64, "voice1"), Note(1.5, 2.0, 62, "voice1"),
        Note(2.0, 2.5, 60, "voice1"), Note(2.5, 3.0, 59, "voice1"),  # below the held D4
        Note(3.0, 4.0, 60, "voice1"), Note(3.0, 4.0, 55, "voice2"),
    ]
    est = assign_voices(_bare(truth), 2)
    assert [n.group for n in est] == [n.group for n in truth]


def test_a_held_voice_keeps_a_single_moving_voice_from_taking_its_name():
    """Bass holds while the soprano moves alone: each moving note stays in the soprano."""
    truth = [Note(0.0, 2.0, 48, "bass")] + [Note(0.5 * k, 0.5 * k + 0.5, 72 - k, "soprano") for k in range(4)]
    est = assign_voices(_bare(truth), 4)
    assert [n.group for n in est] == [n.group for n in truth]


def test_events_group_chords():
    notes = [Note(0.0, 1, 60), Note(0.02, 1, 64), Note(0.5, 1, 67)]
    assert events(notes, 0.035) == [[1, 0], [2]]


# -------------------------------------------------------------------------------------------- hands
def test_melody_above_an_alberti_bass_beats_a_split_at_middle_c():
    for seed in (1, 2, 3):
        truth = piano_notes(seed)
        assert any(n.pitch >= 60 for n in truth if n.group == "lh")  # the fixed split must fail here
        acc = _accuracy(truth, assign_hands(_bare(truth)))
        base = _accuracy(truth, split_hands(_bare(truth)))
        assert acc >= 0.9 and acc > base + 0.3, (acc, base)


def _close_hands(ghost: bool) -> list[Note]:
    """A melody in half notes (C5…G5) over an Alberti bass in quarters (C4 G4 E4 G4) a fifth below it,
    as in Mozart's K545: the hands' ranges touch. ``ghost``: a short drafted octave (C5) of the bass's
    C4 at the first beat, as a transcription makes one."""
    q = 0.27
    melody = [72, 76, 79, 71, 72, 74, 72, 69, 71, 72, 76, 74]
    bass = [[60, 67, 64, 67], [60, 67, 64, 67], [62, 67, 65, 67], [60, 67, 64, 67], [60, 69, 65, 69], [62, 67, 65, 67]]
    notes = [Note(2 * q * k, 2 * q * (k + 1) - 0.02, p, "rh") for k, p in enumerate(melody)]
    for b, figure in enumerate(bass):
        notes += [Note((4 * b + j) * q, (4 * b + j + 1) * q - 0.02, p, "lh") for j, p in enumerate(figure)]
    if ghost:
        notes.append(Note(q, q + 0.1, 72, "lh"))
    return sorted(notes, key=lambda n: (n.onset, -n.pitch))


@pytest.mark.parametrize("ghost", [False, True])
def test_hands_whose_ranges_touch_are_found_by_the_later_passes(ghost):
    """One pass (the registers fixed at rh 69 / lh 50, the range a hand just played reinforcing itself)
    gives most of the Alberti bass to the right hand; the later passes, with each hand's register taken
    from its sure notes within a few seconds, give it back to the left (both without the texture cost,
    which gives the one pass much of it back too: the defaults do at least as well as the passes alone)."""
    truth = _close_hands(ghost)
    one = _accuracy(truth, assign_hands(_bare(truth), HandParams(passes=1, texture=0.0)))
    many = _accuracy(truth, assign_hands(_bare(truth), HandParams(texture=0.0)))
    assert many >= 0.7 and many >= one + 0.25, (many, one)
    assert _accuracy(truth, assign_hands(_bare(truth))) >= many


def test_hand_margins_are_small_where_the_music_does_not_decide():
    """Two hands two octaves apart in chords: every margin large. One lone note half-way between the
    hands while both hold their chords (either hand would have to stretch as far): its margin is the
    smallest."""
    notes = []
    for k in range(6):
        t = 0.5 * k
        notes += [Note(t, t + 0.45, p, "lh") for p in (43, 50, 55)]
        notes += [Note(t, t + 0.45, p, "rh") for p in (79, 84, 88)]
    clear, margins = hand_margins(_bare(notes))
    assert _accuracy(notes, clear) == 1.0
    assert min(margins) >= 5.0, margins
    lone = Note(1.2, 1.4, 67, "")
    est, margins = hand_margins(_bare(notes) + [lone])
    assert len(margins) == len(notes) + 1 and [n.pitch for n in est] == [n.pitch for n in notes] + [67]
    assert margins[-1] < 0.25 * min(margins[:-1]), margins


def test_wide_chords_are_split_where_a_hand_can_reach():
    """Two hands far apart, each with a chord within an octave: split between the clusters, even when
    the split point moves across middle C."""
    truth = []
    for k, (lo, hi) in enumerate([(40, 62), (45, 67), (52, 76), (38, 58)]):
        t = 0.5 * k
        truth += [Note(t, t + 0.4, p, "lh") for p in (lo, lo + 7, lo + 12)]
        truth += [Note(t, t + 0.4, p, "rh") for p in (hi, hi + 4, hi + 9)]
    est = assign_hands(_bare(truth))
    assert _accuracy(truth, est) == 1.0


def test_assignment_keeps_every_other_field_and_the_order():
    notes = [Note(0.1, 0.5, 60, "", 90, 0), Note(0.0, 0.4, 40, "", 80, 0)]
    for est in (assign_hands(notes), assign_voices(notes, 2)):
        assert [(n.onset, n.offset, n.pitch, n.velocity, n.program) for n in est] == \
               [(n.onset, n.offset, n.pitch, n.velocity, n.program) for n in notes]
    assert assign_hands([]) == [] and assign_voices([], 3) == []


def test_synthetic_piece_transcribed_end_to_end_keeps_hands_apart():
    """Rendered melody over Alberti bass: the draft recovers most notes, and the hand assignment of the
    drafted notes beats a split at middle C on them (the draft's errors — a short melody note, a
    semitone ghost — cost the hands some accuracy against the exact notes' ≥ 0.9)."""
    truth = piano_notes(5, n_bars=3)
    stems = render(truth, SR, max(n.offset for n in truth) + 0.5, {},
                   dict(decay_db_s=-20.0, attack=0.003, inharm=0.0004, n_harm=15))
    x = sum(stems.values())
    tr = transcribe(_spectrogram(x), SR, N_FFT, HOP)
    pairs = _matches(truth, assign_hands(tr.notes))
    assert len(pairs) >= 0.8 * len(truth)
    acc = np.mean([r.group == e.group for r, e in pairs])
    base = np.mean([r.group == e.group for r, e in _matches(truth, split_hands(tr.notes))])
    assert acc >= 0.6 and acc >= base + 0.2, (acc, base)


def test_a_voice_silent_between_others_gets_the_strongest_pitch_between_its_neighbours():
    """Soprano, tenor and bass drafted over two seconds, the alto missed: the alto gets the pitch with
    the most activation between tenor and soprano (not the louder one outside that range), one note
    over the two segments with that pitch; where only one voice sounds, or the activation is too weak,
    nothing is added."""
    from demixer.core.transcribe import fill_silent_voices

    pitches = np.arange(36, 97)
    times = np.arange(400) * 0.01
    H = np.zeros((pitches.size, times.size))

    def on(p, a, b, level):
        H[p - 36, (times >= a) & (times < b)] = level

    notes = [Note(0.0, 2.0, 72, "soprano"), Note(0.0, 1.0, 60, "tenor"), Note(1.0, 2.0, 59, "tenor"),
             Note(0.0, 2.0, 48, "bass"), Note(2.0, 4.0, 50, "bass")]
    for n in notes:
        on(n.pitch, n.onset, n.offset, 1.0)
    on(67, 0.0, 2.0, 0.5)  # the missed alto
    on(64, 0.0, 2.0, 0.2)  # a weaker pitch in the same range
    on(80, 0.0, 2.0, 0.9)  # above the soprano: not the alto's
    on(55, 2.0, 4.0, 0.9)  # bass alone after 2 s: nothing to fill
    names = voice_names(4)
    added = fill_silent_voices(notes, names, H, pitches, times)
    assert [(n.onset, n.offset, n.pitch, n.group) for n in added] == [(0.0, 2.0, 67, "alto")]
    on(67, 0.0, 2.0, 0.05)
    on(64, 0.0, 2.0, 0.05)
    assert fill_silent_voices(notes, names, H, pitches, times) == []  # under a tenth of the voices' level
    assert fill_silent_voices(notes[:1], names, H, pitches, times) == []


def test_extra_voice_costs_can_move_a_note_to_another_voice():
    """``assign_voices(..., extra=)``: a per-note, per-voice cost (e.g. from timbre) outweighs voice
    leading; zero extra costs change nothing; a wrong shape is refused."""
    notes = _bare([Note(0.0, 1.0, 67, "voice1"), Note(0.0, 1.0, 60, "voice2"), Note(1.0, 2.0, 66, "voice1")])
    plain = assign_voices(notes, 2)
    assert [n.group for n in plain] == ["voice1", "voice2", "voice1"]
    assert assign_voices(notes, 2, extra=[[0.0, 0.0]] * 3) == plain
    moved = assign_voices(notes, 2, extra=[[0.0, 0.0], [0.0, 0.0], [50.0, 0.0]])
    assert [n.group for n in moved] == ["voice1", "voice2", "voice2"]
    with pytest.raises(ValueError):
        assign_voices(notes, 2, extra=[[0.0, 0.0]])


def test_a_restruck_key_starts_after_its_previous_note_not_at_another_notes_attack():
    """A repeated pitch whose activation dips only a little before the new attack (the long window
    smears it): the snap to flux onsets may not take the new note back to another note's attack that
    the old note still covers — on a keyboard striking a key again ends its sound (``restrike``)."""
    from demixer.core.transcribe import track_notes

    dt = HOP / SR
    times = np.arange(int(2.0 / dt)) * dt
    H = np.zeros((2, times.size))
    a = np.where(times < 1.6, 1.0, 0.0)
    dip = (times > 0.98) & (times < 1.05)
    a[dip] = 0.55  # −5 dB for 70 ms, then back up: a re-attack of the same key at ~1.07 s
    H[0] = a * np.exp(-0.3 * times)
    H[1] = np.where((times >= 0.9) & (times < 1.5), 0.8, 0.0)  # another key struck at 0.9 s
    onsets = np.array([0.0, 0.9, 1.07])
    pitches = np.array([60, 67])
    for restrike in (False, True):
        notes = track_notes(H, pitches, times, TranscribeParams(restrike=restrike), onsets)
        c4 = [n for n in notes if n.pitch == 60]
        assert len(c4) == 2, notes
        first, second = c4
        if restrike:
            assert second.onset >= first.offset - 1e-9
            assert abs(second.onset - 1.07) <= 0.02, second
        else:  # without it, the re-struck note starts at the other key's attack, under its own first note
            assert second.onset < first.offset
    assert TranscribeParams().restrike is False  # voices may sing one pitch together: off by default


def test_the_pitch_dictionary_keeps_neighbouring_low_pitches_apart():
    """The transcription's dictionary uses the narrow bands (no main-lobe widening): E2 and F2, whose
    fundamentals lie one bin apart at 4096 / 22050 Hz, share no bin of their fundamentals there, while the
    separation's templates (``lobe_bins`` 2) do."""
    from demixer.core.constraints import harmonic_template
    from demixer.core.transcribe import pitch_dictionary

    n_fft, sr = 4096, 22050
    n_bins = n_fft // 2 + 1
    _, allow = pitch_dictionary([40, 41], n_bins, sr, n_fft)
    low = slice(0, 20)  # the fundamentals (82 / 87 Hz: bins 15 / 16); the 2nd harmonics start at bin 30
    assert not (allow[low, 0] & allow[low, 1]).any()
    _, a40 = harmonic_template(40, n_bins, sr, n_fft)
    _, a41 = harmonic_template(41, n_bins, sr, n_fft)
    assert (a40[low] & a41[low]).any()


def test_a_ghost_below_a_reed_note_becomes_that_note_not_a_silent_voice():
    """A clarinet-like G4 (odd harmonics only) over an A2 bass under a C5: the transcription's template an
    octave down (G3) explains it, G3's fundamental band is empty, so :func:`drop_subharmonics` drops G3 as
    a ghost — and with ``octave_db`` puts G4, the note it stood for, in its place (same span), unless a
    kept note already holds G4, the octave lies above ``octave_max`` or its band is far weaker than the notes
    sounding with it."""
    from demixer.core.transcribe import drop_subharmonics
    from demixer.engine.draft import DraftSettings

    t = np.arange(int(2.0 * SR)) / SR

    def partials(pitch, ks, level=1.0):
        f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
        return level * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in ks)

    bass_sop = partials(45, range(1, 11)) + partials(72, range(1, 9))
    ghost = Note(0.2, 1.8, 55, "", 90)
    drafted = [Note(0.2, 1.8, 72, ""), ghost, Note(0.2, 1.8, 45, "")]
    V = _spectrogram(bass_sop + partials(67, (1, 3, 5, 7)))
    assert [n.pitch for n in drop_subharmonics(drafted, V, SR, N_FFT, HOP)] == [72, 45]
    raised = drop_subharmonics(drafted, V, SR, N_FFT, HOP, octave_db=-12.0)
    assert [n.pitch for n in raised] == [72, 67, 45]
    assert raised[1] == dataclasses.replace(ghost, pitch=67)
    assert [n.pitch for n in drop_subharmonics(drafted, V, SR, N_FFT, HOP, octave_db=-12.0, octave_max=66)] == [72, 45]
    held = [Note(0.0, 2.0, 67, "")] + drafted  # G4 already drafted: the ghost only goes
    assert sorted(n.pitch for n in drop_subharmonics(held, V, SR, N_FFT, HOP, octave_db=-12.0)) == [45, 67, 72]
    quiet = _spectrogram(bass_sop + partials(67, (1, 3, 5, 7), level=0.01))  # −40 dB: not a voice of its own
    assert [n.pitch for n in drop_subharmonics(drafted, quiet, SR, N_FFT, HOP, octave_db=-12.0)] == [72, 45]
    assert DraftSettings().ghost_octave_db is not None  # the voices draft uses it
