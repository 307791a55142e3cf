"""A real X window under Xvfb: ``demixer --demo --run --screenshot out.png`` renders and exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]


def png_pixels(path) -> np.ndarray:
    """(height, width, 3) uint8 pixels of a PNG, read with Qt."""
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull(), f"{path} is not a readable image"
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def assert_non_trivial_png(path, min_size=(1200, 800)):
    assert path.is_file() and path.stat().st_size > 50_000, "PNG missing or tiny"
    px = png_pixels(path)
    h, w, _ = px.shape
    assert w >= min_size[0] and h >= min_size[1], (w, h)
    assert px.std() > 20, "image is (nearly) uniform"
    assert len(np.unique(px.reshape(-1, 3)[::7], axis=0)) > 500, "too few colours for a spectrogram"
    # the spectrogram pane (bottom middle) is not blank either
    pane = px[int(h * 0.5) : int(h * 0.85), int(w * 0.3) : int(w * 0.6)]
    assert pane.std() > 10


def test_demo_run_screenshot_under_xvfb(tmp_path, qapp):
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.skip("xvfb-run is not installed")
    out = tmp_path / "workbench.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = subprocess.run(
        [
            xvfb,
            "-a",
            "-s",
            "-screen 0 1600x1000x24",
            sys.executable,
            "-m",
            "demixer",
            "--demo",
            "--run",
            "--screenshot",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    assert "Destroyed while thread" not in proc.stderr
    assert_non_trivial_png(out)
