"""The alignment's scout (engine.align.scout_refine): on a short piece it runs the dense KL kernel rather
than import scipy.sparse (0.1–0.27 s of CPU, a quarter of `demixer align`'s budget), with the same notes."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_short_scout_needs_no_scipy_sparse_and_moves_the_notes_as_the_sparse_kernel_does():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from demixer.core.notes import Note
        from demixer.engine import align

        sr = 22050
        t = np.arange(int(4.0 * sr)) / sr
        x = np.zeros_like(t)
        played = [(0.30, 1.30, 60), (1.45, 2.40, 64), (2.55, 3.60, 67)]
        for on, off, p in played:
            f0 = 440.0 * 2 ** ((p - 69) / 12)
            env = ((t >= on) & (t < off)) * np.exp(-2.0 * np.clip(t - on, 0, None))
            x += env * sum(np.sin(2 * np.pi * m * f0 * t) / m for m in range(1, 6))
        x = x.astype(np.float32)
        written = [Note(on + 0.15, off + 0.15, p, "a") for on, off, p in played]  # 150 ms late
        assert align._scout_method(200, 3, 25) == "dense"
        dense = align.scout_refine(x, sr, written)
        assert "scipy.sparse" not in sys.modules, "the short scout imported scipy.sparse"
        import scipy.sparse  # noqa: F401  (now loaded: the constraint-aware kernel is free to run)
        assert align._scout_method(200, 3, 25) == "auto"
        auto = align.scout_refine(x, sr, written)
        for d, a, (on, _, _) in zip(dense, auto, played):
            assert abs(d.onset - a.onset) < 1e-3, (d, a)
            assert abs(d.onset - on) < abs(on + 0.15 - on), (d.onset, on)  # moved toward the sound
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
