"""Helpers shared by the speed benchmarks: machine info, CPU timing, peak memory.

These machines are shared (DESIGN.md §2.6): time with CPU time of the process (``time.process_time``)
on one BLAS thread, keep the best of several repeats, and compare ratios measured in the same run.
"""

from __future__ import annotations

import gc
import os
import platform
import time
import tracemalloc
from collections.abc import Callable

import numpy as np


def machine_info() -> list[str]:
    """Lines describing the interpreter, numpy, the BLAS/OpenMP libraries and the CPU."""
    from threadpoolctl import threadpool_info

    lines = [
        f"python {platform.python_version()}  numpy {np.__version__}  "
        f"CPUs {os.cpu_count()}  ({platform.processor() or platform.machine()})",
    ]
    cpu = _cpu_model()
    if cpu:
        lines.append(f"CPU model: {cpu}")
    for lib in threadpool_info():
        arch = f" {lib['architecture']}" if lib.get("architecture") else ""
        lines.append(
            f"{lib['user_api']}: {lib['internal_api']} {lib.get('version') or '?'}{arch}, "
            f"{lib['num_threads']} threads by default ({os.path.basename(lib['filepath'])})"
        )
    try:
        load = os.getloadavg()
        lines.append(
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine: CPU time is measured)"
        )
    except OSError:
        pass
    return lines


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def best_cpu_time(fn: Callable[[], object], repeats: int) -> float:
    """Minimum over ``repeats`` calls of the process CPU time (seconds) one call of ``fn`` takes."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        gc.collect()
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    """Peak traced memory during one call of ``fn`` minus the traced memory before it.

    numpy reports its data buffers to tracemalloc, so this counts every array the call allocates
    (including its results, which are alive at the end of the call). Run it apart from timing:
    tracing slows allocation down.
    """
    gc.collect()
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not started:
            tracemalloc.stop()
    return max(peak - before, 0)
