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
