"""``demixer transcribe`` and the score-free ``demixer separate`` end to end on a synthetic recording
(a melody over an Alberti bass, rendered here): exit 0, files written and readable by Demixer's own
readers; bad input one line on stderr and exit 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.cli import run_cli as run
from support.synth import chorale_notes, piano_notes, render

from demixer.io.audio import read_audio
from demixer.io.score import read_score

SR = 22050


def one_error_line(code, err, *mentions):
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("demixer: error:"), lines[0]
    for m in mentions:
        assert m in lines[0], (m, lines[0])


@pytest.fixture(scope="module")
def piano_wav(tmp_path_factory) -> tuple[Path, list]:
    notes = piano_notes(7, n_bars=2)
    stems = render(notes, SR, max(n.offset for n in notes) + 0.3, {},
                   dict(decay_db_s=-20.0, attack=0.003, inharm=0.0004, n_harm=15))
    path = tmp_path_factory.mktemp("noscore") / "piano.wav"
    sf.write(path, sum(stems.values()), SR, subtype="FLOAT")
    return path, notes


@pytest.fixture(scope="module")
def chorale_wav(tmp_path_factory) -> Path:
    notes = chorale_notes(4, n_chords=6)
    stems = render(notes, SR, max(n.offset for n in notes) + 0.3, {}, dict(decay_db_s=0.0, attack=0.04))
    path = tmp_path_factory.mktemp("noscore") / "chorale.wav"
    sf.write(path, sum(stems.values()), SR, subtype="FLOAT")
    return path


@pytest.mark.parametrize("suffix", [".mid", ".csv"])
def test_transcribe_hands_writes_a_score_the_reader_reads(piano_wav, tmp_path, capsys, suffix):
    wav, truth = piano_wav
    out = tmp_path / f"draft{suffix}"
    code, stdout, err = run(["transcribe", wav, "--hands", "--out", out], capsys)
    assert code == 0, err
    assert out.is_file()
    notes = read_score(out)
    assert {n.group for n in notes} == {"rh", "lh"}
    assert len(notes) >= 0.8 * len(truth)
    assert f"wrote {out}" in stdout and "two hands" in stdout
    # most drafted notes sit on true notes of the same hand
    hits = sum(any(t.pitch == n.pitch and abs(t.onset - n.onset) <= 0.05 and t.group == n.group for t in truth)
               for n in notes)
    assert hits >= 0.7 * len(truth)


def test_transcribe_voices_names_the_groups(chorale_wav, tmp_path, capsys):
    out = tmp_path / "draft.mid"
    code, stdout, err = run(["transcribe", chorale_wav, "--voices", "4", "--out", out], capsys)
    assert code == 0, err
    assert {n.group for n in read_score(out)} <= {"soprano", "alto", "tenor", "bass"}
    assert "4 voices" in stdout
    code, stdout, err = run(["transcribe", chorale_wav, "--voices", "3", "--out", out], capsys)
    assert code == 0, err
    assert {n.group for n in read_score(out)} <= {"voice1", "voice2", "voice3"}


def test_transcribe_writes_the_voices_chosen_again_by_timbre(chorale_wav, tmp_path, capsys):
    from demixer.engine.draft import draft_score, revoice

    out = tmp_path / "draft.csv"
    code, _, err = run(["transcribe", chorale_wav, "--voices", "4", "--out", out], capsys)
    assert code == 0, err
    audio = read_audio(chorale_wav)
    draft = draft_score(audio, voices=4)
    again = revoice(draft, audio)

    def key(notes):
        return sorted((round(n.onset, 3), n.pitch, n.group) for n in notes)

    assert key(read_score(out)) == key(again.notes)  # written: the re-chosen voices (not support / second)


def test_transcribe_chooses_and_says_so(piano_wav, tmp_path, capsys):
    out = tmp_path / "draft.csv"
    code, stdout, err = run(["transcribe", piano_wav[0], "--out", out], capsys)
    assert code == 0, err
    assert "chosen from the audio" in stdout and "two hands" in stdout  # decaying notes: a keyboard


def test_separate_without_score_drafts_one_and_says_so_in_one_line(piano_wav, tmp_path, capsys):
    out = tmp_path / "sep"
    code, stdout, err = run(["separate", piano_wav[0], "--hands", "--out", out, "--quiet", "--iters", "20"], capsys)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no --score given: drafted" in lines[0], lines
    assert {p.stem for p in out.glob("*.wav")} <= {"rh", "lh", "residual"}
    assert {"rh", "lh"} <= {p.stem for p in out.glob("*.wav")}
    mix = read_audio(piano_wav[0]).samples
    total = sum(read_audio(p).samples for p in out.glob("*.wav"))
    np.testing.assert_allclose(total, mix, atol=1e-4)


def test_separate_hpss_writes_two_stems_that_add_up(piano_wav, tmp_path, capsys):
    out = tmp_path / "hpss"
    code, stdout, err = run(["separate", piano_wav[0], "--hpss", "--out", out], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["harmonic.wav", "percussive.wav", "stems.json"]
    h, p = (read_audio(out / f"{n}.wav").samples for n in ("harmonic", "percussive"))
    np.testing.assert_allclose(h + p, read_audio(piano_wav[0]).samples, atol=1e-4)
    assert np.sum(h**2) > np.sum(p**2)  # tones are mostly harmonic


def test_bad_input_is_one_line_and_exit_2(piano_wav, tmp_path, capsys):
    wav = piano_wav[0]
    code, _, err = run(["transcribe", tmp_path / "missing.wav", "--out", tmp_path / "d.mid"], capsys)
    one_error_line(code, err, "missing.wav")
    code, _, err = run(["transcribe", wav, "--out", tmp_path / "d.txt"], capsys)
    one_error_line(code, err, "d.txt")
    code, _, err = run(["transcribe", wav, "--out", tmp_path / "nofolder" / "d.mid"], capsys)
    one_error_line(code, err, "nofolder")
    code, _, err = run(["transcribe", wav, "--voices", "2", "--hands", "--out", tmp_path / "d.mid"], capsys)
    one_error_line(code, err, "--hands")
    code, _, err = run(["transcribe", wav, "--voices", "0", "--out", tmp_path / "d.mid"], capsys)
    one_error_line(code, err, "--voices")
    code, _, err = run(["transcribe", wav], capsys)
    one_error_line(code, err, "--out")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    code, _, err = run(["transcribe", garbage, "--out", tmp_path / "d.mid"], capsys)
    one_error_line(code, err, "garbage.wav")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR), SR)
    code, _, err = run(["transcribe", silent, "--out", tmp_path / "d.mid"], capsys)
    one_error_line(code, err, "silent.wav")
    code, _, err = run(["separate", silent, "--out", tmp_path / "s"], capsys)
    one_error_line(code, err, "silent.wav")
    code, _, err = run(["separate", wav, "--hpss", "--score", tmp_path / "x.csv"], capsys)
    one_error_line(code, err, "--hpss")
    assert not (tmp_path / "d.mid").exists()


def test_a_draft_too_large_for_the_machine_is_refused_before_decoding(piano_wav, tmp_path, capsys, monkeypatch):
    """The draft analyses on a finer grid than the separation (hop 256): its memory is checked before
    anything is decoded, by transcribe and by separate without a score; --analyse-first drafts a part."""
    from demixer.engine.draft import DraftSettings
    from demixer.engine.separation import SeparationSettings
    from demixer.io.limits import estimate_memory

    wav = piano_wav[0]
    frames = sf.info(wav).frames
    coarse = dataclasses.replace(SeparationSettings().stft, hop=2048)  # separate --hop 2048
    draft = DraftSettings().stft
    need = estimate_memory(frames, SR, 1, coarse, draft)
    have = int(need * 0.8)
    assert estimate_memory(frames, SR, 1, coarse) < have  # enough to separate on that grid, not to draft
    monkeypatch.setenv("DEMIXER_MACHINE_MEMORY", str(have))
    code, _, err = run(["transcribe", wav, "--out", tmp_path / "d.csv"], capsys)
    one_error_line(code, err, str(wav), "drafting a score for", "--analyse-first")
    code, _, err = run(["separate", wav, "--hop", "2048", "--out", tmp_path / "s"], capsys)
    one_error_line(code, err, str(wav), "--analyse-first")
    assert not (tmp_path / "d.csv").exists() and not (tmp_path / "s").exists()
    seconds = int(err.split("--analyse-first ")[1].split()[0])
    code, out, err = run(["transcribe", wav, "--analyse-first", str(seconds), "--out", tmp_path / "d.csv"], capsys)
    assert code == 0, err
    assert max(n.onset for n in read_score(tmp_path / "d.csv")) < seconds
