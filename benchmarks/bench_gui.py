"""GUI responsiveness while a run trains (DESIGN.md §3: the GUI thread never computes an iteration).

Opens the workbench on the bundled demo, starts a run (default: KL NMF, 600 iterations, so that it
lasts several seconds) and meanwhile

* fires a 10 ms ``QTimer`` and records how late each tick comes (the event loop's latency),
* counts the W/H pane repaints and the loss-plot updates per second of the run,

and reports the time from process launch (interpreter start, read from /proc) to the window being shown,
and to the demo being loaded and painted. An idle baseline of the same timer is measured first.

    python benchmarks/bench_gui.py [--iters 600] [--model nmf-kl] [--repeat 1]

Runs offscreen unless QT_QPA_PLATFORM is already set (e.g. under ``xvfb-run -a`` set it to ``xcb``).
Targets: p95 ≤ 50 ms, p99 ≤ 100 ms, ≥ 10 pane and loss updates per second, window shown ≤ 2 s.
These machines are shared: the latency depends on what else is running (see the idle baseline).

Each measured Run is the window's default Run of the demo (the staged fit from the score, issue 12),
undone afterwards so that every repeat starts alike; after each, the same fit is run the way
``demixer separate`` runs it (``engine.fit`` in this process, one BLAS thread, no window work), and the
table gives the window's Run time against it (wall and process CPU, best of the repeats, measured in the
same run). Target: window ≤ 1.2× the CLI's fit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

T_IMPORT = time.perf_counter()


def process_age() -> float | None:
    """Seconds since this process was started (Linux /proc), or None."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 overall: starttime in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


AGE_AT_IMPORT = process_age()

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def percentile(xs, q):
    import numpy as np

    return float(np.percentile(np.asarray(xs), q)) if len(xs) else float("nan")


def rate(times) -> float:
    """Updates per second from the first update to the last (the run's start-up is not an update gap)."""
    times = list(times)
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


class LatencyProbe:
    """A repeating 10 ms timer; records how late each tick fires (ms)."""

    def __init__(self, interval_ms: int = 10):
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms / 1000.0
        self.samples: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self._last = None

    def start(self):
        self.samples = []
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def _tick(self):
        now = time.perf_counter()
        self.samples.append(max(0.0, (now - self._last) - self.interval) * 1000.0)
        self._last = now


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=600)
    from demixer.engine.models import model_names  # the one model list

    ap.add_argument("--model", default="nmf-kl", choices=model_names())
    ap.add_argument("--repeat", type=int, default=1, help="runs to measure (the table pools them)")
    args = ap.parse_args(argv)

    t_launch_ref = time.perf_counter() - (AGE_AT_IMPORT or 0.0) - (time.perf_counter() - T_IMPORT)
    from PySide6.QtWidgets import QApplication

    from demixer.gui.app import apply_theme, make_application

    app = make_application()
    apply_theme(app)
    from demixer.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    app.processEvents()
    t_shown = time.perf_counter()
    ok = win.open_demo()
    if not ok:
        print("could not open the demo", file=sys.stderr)
        return 1
    win.repaint()
    app.processEvents()
    t_ready = time.perf_counter()

    probe = LatencyProbe(10)

    from PySide6.QtCore import QEventLoop, QTimer

    # idle baseline
    loop = QEventLoop()
    probe.start()
    QTimer.singleShot(2000, loop.quit)
    loop.exec()
    probe.stop()
    idle = list(probe.samples)

    from threadpoolctl import threadpool_limits

    from demixer.engine.fit import Fit, FitState, project_settings

    def cli_fit(project) -> tuple[float, float]:
        """The same fit as `demixer separate` runs it: engine.fit, one BLAS thread; (wall s, CPU s)."""
        settings = project_settings(project).with_(model=args.model, n_iter=args.iters)
        fit = Fit(project.analysis, project.notes or None, settings, FitState.from_project(project), "staged")
        with threadpool_limits(limits=1, user_api="blas"):
            w0, c0 = time.perf_counter(), time.process_time()
            fit.run()
            return time.perf_counter() - w0, time.process_time() - c0

    busy: list[float] = []
    pane_rates, loss_rates, it_rates, durations, gui_cpu = [], [], [], [], []
    win_cpu, cli_wall, cli_cpu, modes = [], [], [], set()
    for _ in range(args.repeat):
        done = {"t": None}
        loop = QEventLoop()

        def finished(_rec, d=done, lp=loop):
            d["t"] = time.perf_counter()
            lp.quit()

        win.run_finished.connect(finished)
        win.pane_update_times.clear()
        win.loss_pane.update_times.clear()
        probe.start()
        t0 = time.perf_counter()
        c0 = time.thread_time()
        p0 = time.process_time()
        ctrl = win.start_run(model=args.model, n_iter=args.iters)
        modes.add(ctrl.job.mode)
        thread = ctrl.thread
        loop.exec()
        probe.stop()
        dur = done["t"] - t0
        gui_cpu.append((time.thread_time() - c0) / dur)
        win_cpu.append(time.process_time() - p0)
        thread.wait()
        win.undo.undo()  # the next repeat runs the same default Run from the same state
        app.processEvents()
        w, c = cli_fit(win.project)
        cli_wall.append(w)
        cli_cpu.append(c)
        busy.extend(probe.samples)
        durations.append(dur)
        pane_rates.append(rate(win.pane_update_times))
        loss_rates.append(rate(win.loss_pane.update_times))
        it_rates.append(args.iters / dur)
        win.run_finished.disconnect(finished)
    win.close()
    app.processEvents()

    shown = t_shown - t_launch_ref
    ready = t_ready - t_launch_ref
    rows = [
        ("event-loop latency p50", f"{percentile(idle, 50):.1f} ms", f"{percentile(busy, 50):.1f} ms", ""),
        (
            "event-loop latency p95",
            f"{percentile(idle, 95):.1f} ms",
            f"{percentile(busy, 95):.1f} ms",
            "≤ 50 ms",
        ),
        (
            "event-loop latency p99",
            f"{percentile(idle, 99):.1f} ms",
            f"{percentile(busy, 99):.1f} ms",
            "≤ 100 ms",
        ),
        ("event-loop latency max", f"{max(idle):.1f} ms", f"{max(busy):.1f} ms", ""),
        ("W/H pane updates per second", "", f"{min(pane_rates):.2f}", "≥ 10"),
        ("loss plot updates per second", "", f"{min(loss_rates):.2f}", "≥ 10"),
        ("GUI thread CPU (share of one core)", "", f"{100 * sum(gui_cpu) / len(gui_cpu):.0f} %", ""),
        ("iterations per second", "", f"{sum(it_rates) / len(it_rates):.1f}", ""),
        ("run duration", "", f"{sum(durations) / len(durations):.2f} s", ""),
        ("window Run / CLI fit, wall (best)", "", f"{min(durations):.2f}/{min(cli_wall):.2f} s = "
         f"{min(durations) / min(cli_wall):.2f}×", "≤ 1.2×"),
        ("window Run / CLI fit, CPU (best)", "", f"{min(win_cpu):.2f}/{min(cli_cpu):.2f} s = "
         f"{min(win_cpu) / min(cli_cpu):.2f}×", "≤ 1.2×"),
        ("launch → window shown", "", f"{shown:.2f} s", "≤ 2 s"),
        ("launch → demo loaded and painted", "", f"{ready:.2f} s", ""),
    ]
    print(
        f"bench_gui: demo, model {args.model} ({'/'.join(sorted(modes))}), {args.iters} iterations × {args.repeat}, "
        f"platform {os.environ.get('QT_QPA_PLATFORM')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'metric':<34}{'idle':>12}{'during run':>14}{'target':>12}")
    for name, a, b, target in rows:
        print(f"{name:<34}{a:>12}{b:>14}{target:>12}")
    print(f"({len(busy)} timer ticks during the runs, {len(idle)} idle)")
    del QApplication
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
