"""Test support for playback through the real PortAudio stack (DESIGN.md §7).

The ALSA file plugin plays a finite buffer instantly and an endless stream spins, so tests that act
*during* playback use :class:`SteppedPlayer`: the real Player on a real stream whose callback waits for
the test to release each block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from demixer.audio import Player

TIMEOUT = 20.0  # seconds; only protects against hanging, never a timing assertion


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class SteppedPlayer(Player):
    """The real Player on a real stream, except that each audio block waits until the test releases it.

    mode "step": a block runs only when released by ``step``; "free": blocks run as fast as the device
    takes them; "hold" (set while the stream is being stopped): blocks are silence and the player does
    not advance, so stopping cannot race with playback.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.mode = "step"
        self.blocks_done = 0
        self._tickets = threading.Semaphore(0)

    def _callback(self, outdata, frames, time_info, status):  # type: ignore[override]
        if self.mode == "step" and not self._tickets.acquire(timeout=TIMEOUT):
            import sounddevice as sd

            outdata.fill(0)
            raise sd.CallbackAbort  # the test gave up; let the stream end
        if self.mode == "hold":
            outdata.fill(0)
            return
        try:
            super()._callback(outdata, frames, time_info, status)
        finally:
            self.blocks_done += 1

    def step(self, blocks: int) -> None:
        target = self.blocks_done + blocks
        for _ in range(blocks):
            self._tickets.release()
        wait_until(lambda: self.blocks_done >= target, f"{blocks} audio blocks")

    def run_free(self) -> None:
        self.mode = "free"
        self._tickets.release()

    def _stop_stream(self, abort: bool) -> None:
        mode, self.mode = self.mode, "hold"
        self._tickets.release()  # wake a callback waiting for a ticket
        try:
            super()._stop_stream(abort)
        finally:
            self._tickets = threading.Semaphore(0)  # the callback is not running now
            self.mode = mode
