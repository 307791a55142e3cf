"""Every persistent setting and environment variable of the window, in one place (DESIGN.md §3).

QSettings keys (the user's configuration, per machine):

    recent_files        JSON list of [audio, score or null], newest first (at most ``MAX_RECENT``)
    export_dir          the folder of the last export
    autosave/interval_s seconds between autosaves (0: off)
    window/geometry, window/state   the window's size and dock layout (``LAYOUT_VERSION``)

Environment variables (override the above; tests set them so nothing touches the user's folders):

    DEMIXER_RECOVERY_DIR      where autosaved recovery files go
    DEMIXER_AUTOSAVE_SECONDS  autosave interval in seconds (0: off)
    DEMIXER_LOG_DIR           where the rotating log file ``demixer.log`` goes
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

__all__ = [
    "DEFAULT_AUTOSAVE_S",
    "LAYOUT_VERSION",
    "MAX_RECENT",
    "autosave_seconds",
    "data_dir",
    "export_dir",
    "log_dir",
    "recent_files",
    "recovery_dir",
    "set_export_dir",
    "set_recent_files",
]

DEFAULT_AUTOSAVE_S = 180
LAYOUT_VERSION = 2  # 2: the right column's default heights changed (Sources ≥ 6 rows, issue 18 item 12)
MAX_RECENT = 8

KEY_RECENT = "recent_files"
KEY_EXPORT_DIR = "export_dir"
KEY_AUTOSAVE = "autosave/interval_s"
KEY_GEOMETRY = "window/geometry"
KEY_STATE = "window/state"

ENV_RECOVERY_DIR = "DEMIXER_RECOVERY_DIR"
ENV_AUTOSAVE = "DEMIXER_AUTOSAVE_SECONDS"
ENV_LOG_DIR = "DEMIXER_LOG_DIR"


def data_dir() -> Path:
    """The application's data folder (QStandardPaths AppDataLocation, or ``~/.demixer``)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".demixer")


def recovery_dir() -> Path:
    """Where recovery files go: ``$DEMIXER_RECOVERY_DIR`` or the data folder's ``recovery``."""
    env = os.environ.get(ENV_RECOVERY_DIR)
    return Path(env) if env else data_dir() / "recovery"


def log_dir() -> Path:
    """Where the log file goes: ``$DEMIXER_LOG_DIR`` or the data folder's ``logs``."""
    env = os.environ.get(ENV_LOG_DIR)
    return Path(env) if env else data_dir() / "logs"


def autosave_seconds() -> float:
    """Seconds between autosaves: ``$DEMIXER_AUTOSAVE_SECONDS``, else the setting, else the default."""
    raw = os.environ.get(ENV_AUTOSAVE)
    if raw is None:
        raw = QSettings().value(KEY_AUTOSAVE, DEFAULT_AUTOSAVE_S)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return float(DEFAULT_AUTOSAVE_S)
    return value if value > 0 else 0.0  # 0: autosave off


def set_autosave_seconds(seconds: float) -> None:
    QSettings().setValue(KEY_AUTOSAVE, float(seconds))


def recent_files() -> list[tuple[str, str | None]]:
    raw = QSettings().value(KEY_RECENT, "[]")
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        items = []
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, list) and len(it) == 2 and isinstance(it[0], str):
            out.append((it[0], it[1] if isinstance(it[1], str) else None))
    return out


def set_recent_files(items: list[tuple[str, str | None]]) -> None:
    QSettings().setValue(KEY_RECENT, json.dumps([list(e) for e in items[:MAX_RECENT]]))


def export_dir() -> str:
    saved = QSettings().value(KEY_EXPORT_DIR, "")
    return saved if isinstance(saved, str) else ""


def set_export_dir(folder: str) -> None:
    QSettings().setValue(KEY_EXPORT_DIR, folder)


def save_dir() -> str:
    """Where save and export dialogs open: the folder the user last saved or exported to, else their
    documents folder (QStandardPaths), else home — never the program's own folder (the demo's)."""
    saved = export_dir()
    if saved and os.path.isdir(saved):
        return saved
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return docs if docs and os.path.isdir(docs) else str(Path.home())


def set_save_dir(folder: str) -> None:
    set_export_dir(os.fspath(folder))


def save_layout(geometry, state) -> None:
    s = QSettings()
    s.setValue(KEY_GEOMETRY, geometry)
    s.setValue(KEY_STATE, state)


def layout():
    """(geometry, state) as saved, either None."""
    s = QSettings()
    return s.value(KEY_GEOMETRY), s.value(KEY_STATE)
