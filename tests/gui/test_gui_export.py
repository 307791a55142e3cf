"""File → Export from the window: sources (WAV/FLAC) that add up to the recording at its rate and channel
count, W/H as npy + CSV with component names, pane images, loss curves; errors name the path."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demixer.engine.separation import stems as separation_stems
from demixer.io.audio import read_audio


def _write_stereo(folder: Path, sr: int = 44100, dur: float = 2.0) -> tuple[Path, Path]:
    n = int(sr * dur)
    t = np.arange(n) / sr
    low = sum(0.15 / m * np.sin(2 * np.pi * m * 130.81 * t) for m in range(1, 5)) * (t < 1.4)
    high = sum(0.12 / m * np.sin(2 * np.pi * m * 659.26 * t) for m in range(1, 4)) * (t >= 0.6)
    x = np.stack([0.8 * low + 0.4 * high, 0.4 * low + 0.8 * high]).T.astype(np.float32)
    audio = folder / "stereo_in.wav"
    sf.write(audio, x, sr, subtype="FLOAT")
    score = folder / "stereo_in.csv"
    score.write_text("onset_s,offset_s,pitch,group\n0.0,1.4,48,lh\n0.6,2.0,76,rh\n")
    return audio, score


def test_export_menu_lists_the_exports(window):
    ex = window.audition.exporter
    texts = [a.text().replace("&", "") for a in ex.menu.actions()]
    assert texts == [
        "Sources as WAV…", "Sources as FLAC…", "W and H (npy + CSV)…", "Pane images (PNG)…", "Loss curves (CSV)…",
    ]
    ex.update_actions()
    assert ex.act_stems_wav.isEnabled() and not ex.act_losses.isEnabled()  # no run yet


def test_stereo_44k_stems_reload_with_rate_and_channels_and_sum_to_the_mixture(window, tmp_path, run_to_end):
    audio, score = _write_stereo(tmp_path)
    assert window.open_audio(audio, score)
    run_to_end(window, n_iter=10)
    p = window.project
    written = window.audition.exporter.export_stems(tmp_path / "out", "wav")
    assert [f.name for f in written] == ["lh.wav", "rh.wav"]
    back = [read_audio(f) for f in written]
    for a in back:
        assert (a.sr, a.channels, a.n_samples) == (44100, 2, p.audio.n_samples)
    np.testing.assert_allclose(sum(a.samples for a in back), p.audio.samples, atol=2e-5)
    # the same files as `demixer separate` would write from these factors
    want = separation_stems(
        p.audio, p.analysis, p.W, p.H, p.component_infos(), [s.name for s in p.sources], p.run.alpha
    )
    for a, name in zip(back, ["lh", "rh"], strict=True):
        np.testing.assert_array_equal(a.samples, want[name])
    flac = window.audition.exporter.export_stems(tmp_path / "flac", "flac")
    for f in flac:
        info = sf.info(f)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")
    assert "Exported 2 sources" in window.statusBar().currentMessage()


def test_demo_stems_sum_to_the_mono_mixture(window, tmp_path):
    written = window.audition.exporter.export_stems(tmp_path, "wav")
    back = [read_audio(f) for f in written]
    assert all((a.sr, a.channels) == (22050, 1) for a in back)
    np.testing.assert_allclose(sum(a.samples for a in back), window.project.audio.samples, atol=2e-5)


def test_factors_csv_names_the_components(window, tmp_path):
    p = window.project
    written = window.audition.exporter.export_factors(tmp_path)
    assert sorted(f.name for f in written) == ["H.csv", "H.npy", "W.csv", "W.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "W.npy"), p.W)
    np.testing.assert_array_equal(np.load(tmp_path / "H.npy"), p.H)
    with open(tmp_path / "W.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["freq_hz"] + [c.name for c in p.components]
    with open(tmp_path / "H.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s"] + [c.name for c in p.components]
    assert len(rows) == p.n_frames + 1


def test_pane_images_and_loss_curves(window, tmp_path, run_to_end):
    _, record = run_to_end(window, n_iter=5)
    ex = window.audition.exporter
    written = ex.export_images(tmp_path / "img")
    assert sorted(f.name for f in written) == ["H.png", "V.png", "W.png", "loss.png"]
    from PySide6.QtGui import QImage

    for f in written:
        img = QImage(str(f))
        assert not img.isNull() and img.width() > 50 and img.height() > 50
    ex.update_actions()
    assert ex.act_losses.isEnabled()
    path = ex.export_losses(tmp_path / "losses.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "model", "iteration", "loss"]
    assert len(rows) == 1 + 5 and rows[1][0] == record.label and rows[-1][2] == "5"
    assert float(rows[-1][3]) == pytest.approx(record.losses[-1])


def test_unwritable_folder_gives_a_dialog_naming_the_path_and_reason(window, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    ex = window.audition.exporter
    for call in (lambda: ex.export_stems(blocker, "wav"), lambda: ex.export_factors(blocker),
                 lambda: ex.export_images(blocker)):
        assert call() is None
        box = window.last_dialog
        assert box is not None and str(blocker) in box.informativeText()
        assert "not a folder" in box.informativeText()
        box.close()
    assert ex.export_losses(blocker / "losses.csv") is None
    assert str(blocker / "losses.csv") in window.last_dialog.informativeText()
    window.last_dialog.close()
    assert len(window.errors) == 4


def test_window_export_writes_a_stem_set_like_separate(window, tmp_path):
    """The window wrote stems one file at a time: no stems.json, and a stem of an earlier export whose
    source is gone stayed beside the new ones. Now it is the CLI's stem set."""
    import json

    ex = window.audition.exporter
    out = tmp_path / "stems"
    first = ex.export_stems(out, "wav")
    index = json.loads((out / "stems.json").read_text())
    assert [s["group"] for s in index["stems"]] == window.audition.current_stems().names
    assert [s["file"] for s in index["stems"]] == [f.name for f in first]
    assert index["from"] == "window" and index["format"] == "wav" and index["frames"] == window.project.audio.n_samples
    # an earlier export had a source that is gone now; the user keeps a file of their own there
    index["stems"].append({"file": "old source.wav", "group": "old source"})
    (out / "stems.json").write_text(json.dumps(index))
    sf.write(out / "old source.wav", np.zeros(10, np.float32), 22050)
    (out / "notes.txt").write_text("mine")
    second = ex.export_stems(out, "wav")
    assert [f.name for f in second] == [f.name for f in first]
    assert not (out / "old source.wav").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([f.name for f in first] + ["notes.txt", "stems.json"])
