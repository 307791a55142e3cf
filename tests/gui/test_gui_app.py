"""``run_app`` from the command line, offscreen (the real-window variant is test_smoke_xvfb.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _run(args, tmp_path, timeout=300):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run(
        [sys.executable, "-m", "demixer", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_demo_run_screenshot_offscreen(tmp_path, qapp):
    from PySide6.QtGui import QImage

    out = tmp_path / "shot.png"
    proc = _run(["--demo", "--run", "--screenshot", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    img = QImage(str(out))
    assert not img.isNull() and img.width() >= 1200 and img.height() >= 800


def test_a_bad_file_in_scripted_mode_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    proc = _run([str(bad), "--screenshot", str(tmp_path / "x.png")], tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("demixer:")]
    assert len(lines) == 1 and str(bad) in lines[0] and "not an audio file" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_scripted_run_and_export_writes_what_demixer_separate_writes(tmp_path):
    """``demixer MIX --score SCORE --run --export-stems DIR``: the default Run (the staged fit) and File →
    Export give the files of ``demixer separate`` on the same inputs (both one BLAS thread here)."""
    import numpy as np
    import soundfile as sf

    from demixer import demo_paths

    audio, score = demo_paths()
    win, cli = tmp_path / "window", tmp_path / "cli"
    proc = _run([str(audio), "--score", str(score), "--run", "--export-stems", str(win)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _run(["separate", str(audio), "--score", str(score), "--out", str(cli), "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in cli.glob("*.wav"))
    assert names == sorted(p.name for p in win.glob("*.wav")) == ["lh.wav", "rh.wav"]
    for name in names:
        a, sr_a = sf.read(win / name, dtype="float32")
        b, sr_b = sf.read(cli / name, dtype="float32")
        assert sr_a == sr_b and a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5 * float(np.abs(b).max()))


@pytest.mark.parametrize("case", ["export_is_a_file", "bad_audio"])
def test_scripted_export_with_bad_input_exits_2_with_one_line(tmp_path, case):
    from demixer import demo_paths

    audio, score = demo_paths()
    out = tmp_path / "out"
    if case == "export_is_a_file":
        out.write_text("a file, not a folder")
        where = str(out)
    else:
        audio = tmp_path / "bad.wav"
        audio.write_text("nope")
        where = str(audio)
    proc = _run([str(audio), "--score", str(score), "--run", "--export-stems", str(out)], tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("demixer:")]
    assert len(lines) == 1 and where in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
