"""A painted constraint survives in the window (issue 12): the window half of bench_painted.py.

For every dev piece (score.csv, default settings), offscreen, in the real window: open the piece with
its score, paint the same zero as bench_painted.py (the pitch component with the most notes, its
activation forbidden over its longest gap between notes, 50 ms inside each note) as the window's paint
tools do (``model.paint.paint_edit`` pushed on the undo stack: one undoable stroke), press Run (the
default Run), File → Export the sources, and compare the mean SDR (BSS Eval v3) with the unpainted
default Run in the same window. Checks that H is exactly 0 in the painted block after the Run.
Target: within 0.3 dB of the unpainted Run.

    python benchmarks/bench_painted_window.py [--pieces chorale_bwv255,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import DEFAULT_DATA  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pieces", default="")
    args = ap.parse_args()
    pieces = sorted(p for p in args.data.iterdir() if (p / "stems").is_dir())
    if args.pieces:
        pieces = [p for p in pieces if p.name in set(args.pieces.split(","))]

    from PySide6.QtCore import QEventLoop

    from demixer.cli.main import evaluate_folders
    from demixer.gui.app import make_application
    from demixer.gui.main_window import MainWindow
    from demixer.model.paint import paint_edit

    app = make_application()
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("DEMIXER_LOG_DIR", tmp)

    def run_and_export(win, out: Path) -> None:
        loop = QEventLoop()
        win.run_finished.connect(loop.quit)
        assert win.start_run() is not None
        loop.exec()
        win.run_finished.disconnect(loop.quit)
        win.audition.exporter.export_stems(out, "wav")

    print(f"{'piece':<26}{'painted':<10}{'span s':>13}{'cells':>7}{'unpainted':>11}{'painted':>9}{'Δ':>7}  H=0")
    ok = True
    for piece in pieces:
        win = MainWindow(scripted=True)
        assert win.open_audio(piece / "mixture.wav", piece / "score.csv")
        p = win.project
        run_and_export(win, Path(tmp) / f"{piece.name}-plain")
        sdr_plain = evaluate_folders(piece / "stems", Path(tmp) / f"{piece.name}-plain")["mean"]["sdr"]
        win.undo.undo()  # back to the opened state: the painted Run is again a project's first Run

        counts: dict = {}
        for n in p.notes:
            counts.setdefault((n.group, n.pitch), []).append(n)
        (group, pitch), own = max(counts.items(), key=lambda kv: len(kv[1]))
        r = next(i for i, c in enumerate(p.components) if (c.kind, c.pitch, c.source) == ("pitch", pitch, group))
        own = sorted(own, key=lambda n: n.onset)
        gaps = [(a.offset + 0.05, b.onset - 0.05)
                for a, b in zip(own, own[1:], strict=False) if b.onset - a.offset > 0.2]
        t0, t1 = max(gaps, key=lambda g: g[1] - g[0])
        mask = np.zeros(p.allow_H.shape, bool)
        mask[r, (p.analysis.times >= t0) & (p.analysis.times <= t1)] = True
        painted = mask & p.allow_H
        win.editing.push(paint_edit(p, "H", mask, allow=False, text="brush zero on H"))
        run_and_export(win, Path(tmp) / f"{piece.name}-painted")
        sdr_paint = evaluate_folders(piece / "stems", Path(tmp) / f"{piece.name}-painted")["mean"]["sdr"]
        zero = not p.H[painted].any()
        ok &= zero and abs(sdr_paint - sdr_plain) <= 0.3
        name = p.components[r].name
        print(f"{piece.name:<26}{name:<10}{t0:6.2f}–{t1:<6.2f}{int(painted.sum()):7d}{sdr_plain:11.2f}{sdr_paint:9.2f}"
              f"{sdr_paint - sdr_plain:+7.2f}  {'yes' if zero else 'NO'}", flush=True)
        win.stop_runs()
        win.close()
        win.deleteLater()
        app.processEvents()
    print("PASS: painted zeros exact, within 0.3 dB of the unpainted Run" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
