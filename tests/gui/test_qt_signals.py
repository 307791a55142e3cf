"""PySide6 6.12.0 on Python 3.11 aborts after ~1000 signal emits (DESIGN.md §6). Emit 10 000 through a
connected slot in a child interpreter, so that an abort shows up as a failed test, not a dead run."""

from __future__ import annotations

import subprocess
import sys

CODE = r"""
import os
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    fired = Signal(bool, int)

app = QCoreApplication([])
received = []
e = Emitter()
e.fired.connect(lambda flag, i: received.append(i))
for i in range(10_000):
    e.fired.emit(True, i)
assert len(received) == 10_000 and received[-1] == 9_999, len(received)
print("ok", len(received))
"""


def test_ten_thousand_signal_emits_do_not_abort_the_interpreter():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.strip() == "ok 10000"
