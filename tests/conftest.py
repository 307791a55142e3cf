"""Test set-up shared by the whole suite.

Audio without a sound card (DESIGN.md §7): ALSA's default device is pointed at its ``file`` plugin with
a ``null`` slave, so what PortAudio "plays" is written to the file named by $AUDIO_CAPTURE. This must
happen before sounddevice (and so PortAudio) is first imported, hence at conftest import time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_ASOUNDRC = """pcm.!default {
    type file
    slave.pcm "null"
    file { @func getenv vars [ AUDIO_CAPTURE ] default "/dev/null" }
    format "raw"
    truncate true
}
"""
_cfg_home = Path(tempfile.mkdtemp(prefix="demixer-xdg-"))
(_cfg_home / "alsa").mkdir()
(_cfg_home / "alsa" / "asoundrc").write_text(_ASOUNDRC)
os.environ["XDG_CONFIG_HOME"] = str(_cfg_home)
os.environ["DEMIXER_LOG_DIR"] = str(_cfg_home / "logs")  # the app's rotating log (gui/logs.py)

import sys  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# tests/support holds helpers shared by several test files (imported as `support.…`).
sys.path.insert(0, str(Path(__file__).resolve().parent))
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not next to the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_audio_path() -> Path:
    from demixer import demo_paths

    return demo_paths()[0]


@pytest.fixture(scope="session")
def demo_score_path() -> Path:
    from demixer import demo_paths

    return demo_paths()[1]
