"""Soak: 50 short runs in one window (with saves and autosaves between them) leave no threads, QThread
objects, open files or memory behind."""

from __future__ import annotations

import gc
import os
import threading

import numpy as np
import soundfile as sf
from PySide6.QtCore import QThread

N_RUNS = 50
WARM_UP = 5
SR = 8000


def n_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def n_os_threads() -> int:
    """Every thread of the process: Python's, Qt's (QThread, the thread pool), BLAS'."""
    return len(os.listdir("/proc/self/task"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def n_qthreads() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, QThread))


def settle(qtbot) -> None:
    qtbot.wait(50)
    gc.collect()


def test_fifty_runs_leak_no_threads_files_or_memory(qtbot, tmp_path, monkeypatch, run_to_end):
    from demixer.gui.main_window import MainWindow

    monkeypatch.setenv("DEMIXER_RECOVERY_DIR", str(tmp_path / "recovery"))
    t = np.arange(2 * SR) / SR
    sf.write(tmp_path / "a.wav", (0.2 * np.sin(2 * np.pi * 262 * t)).astype(np.float32), SR)
    (tmp_path / "s.csv").write_text("onset_s,offset_s,pitch,group\n0.0,1.0,60,lh\n0.5,1.9,72,rh\n")
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_audio(tmp_path / "a.wav", tmp_path / "s.csv")
    models = ("nmf", "nmf-kl", "nae", "nae-pgd")
    w.project_io.ask_save_path = lambda suggested: str(tmp_path / "soak.demix")

    def one(i: int) -> None:
        _, record = run_to_end(w, n_iter=3 + i % 3, model=models[i % len(models)])
        assert record.n_iter == 3 + i % 3
        if i % 10 == 4:
            assert w.project_io.save()
        elif i % 10 == 7:
            assert w.project_io.autosave_now(wait=True) is not None
        if i % 5 == 0:  # a run replaced by another one half-way
            first = w.start_run(n_iter=10_000)
            qtbot.waitUntil(lambda: len(first.losses) > 0, timeout=20_000)
            assert n_qthreads() >= 1  # the count sees a live run's thread
            run_to_end(w, n_iter=3)
            qtbot.waitUntil(first.thread.isFinished, timeout=20_000)

    for i in range(WARM_UP):
        one(i)
    settle(qtbot)
    threads0, qthreads0, fds0, rss0 = threading.active_count(), n_qthreads(), n_fds(), rss_bytes()
    tasks0 = n_os_threads()
    for i in range(WARM_UP, WARM_UP + N_RUNS):
        one(i)
    settle(qtbot)
    threads1, qthreads1, fds1, rss1 = threading.active_count(), n_qthreads(), n_fds(), rss_bytes()
    tasks1 = n_os_threads()
    print(
        f"\nsoak: {N_RUNS} runs: Python threads {threads0} → {threads1}, OS threads {tasks0} → {tasks1}, "
        f"QThreads {qthreads0} → {qthreads1}, "
        f"fds {fds0} → {fds1}, RSS {rss0 / 2**20:.1f} → {rss1 / 2**20:.1f} MiB"
    )
    assert len(w.project.runs) == WARM_UP + N_RUNS + (WARM_UP + N_RUNS + 4) // 5
    assert threads1 <= threads0 and tasks1 <= tasks0
    assert qthreads1 <= qthreads0
    assert fds1 <= fds0
    assert rss1 <= rss0 * 1.10
    assert w.run_ctrl is None and not w.runs.retired
