"""File → Export: the sources (WAV/FLAC), W and H (npy + CSV), images of the panes (PNG), the loss
curves (CSV). The writers are in :mod:`demixer.io.export`; this module asks where and reports problems
in a dialog that names the path and the reason (``MainWindow.show_error``).

Each ``export_*`` method can also be called directly (tests, scripts): it returns the files written,
or None after reporting an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QCursor
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

from demixer.gui import settings
from demixer.io.errors import InputError
from demixer.io.export import StemSetWriter, check_folder, write_factors, write_loss_csv

__all__ = ["Exporter", "install_export_menu", "PANE_IMAGES"]

#: Pane images written by "Pane images (PNG)…": file name → the window's attribute.
PANE_IMAGES = {"V.png": "v_pane", "W.png": "w_pane", "H.png": "h_pane", "loss.png": "loss_pane"}


class Exporter(QObject):
    def __init__(self, window: Any, audition: Any) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench  # the shared state: project, undo, runs, view, tasks, actions
        self.audition = audition
        self.menu = QMenu("&Export", window)
        self.menu.setObjectName("menu_export")
        self.act_stems_wav = QAction("Sources as &WAV…", window)
        self.act_stems_wav.setToolTip("One 32-bit float WAV per source; they add up to the recording")
        self.act_stems_wav.triggered.connect(lambda: self._ask_stems("wav"))
        self.act_stems_flac = QAction("Sources as &FLAC…", window)
        self.act_stems_flac.setToolTip("One 24-bit FLAC per source")
        self.act_stems_flac.triggered.connect(lambda: self._ask_stems("flac"))
        self.act_factors = QAction("W and H (npy + &CSV)…", window)
        self.act_factors.triggered.connect(self._ask_factors)
        self.act_images = QAction("Pane &images (PNG)…", window)
        self.act_images.triggered.connect(self._ask_images)
        self.act_losses = QAction("&Loss curves (CSV)…", window)
        self.act_losses.triggered.connect(self._ask_losses)
        self.actions = [self.act_stems_wav, self.act_stems_flac, self.act_factors, self.act_images, self.act_losses]
        for a in self.actions:
            self.menu.addAction(a)
        self.menu.aboutToShow.connect(self.update_actions)
        self.bench.project_changed.connect(self.update_actions)
        self.update_actions()

    def update_actions(self) -> None:
        has = self.bench.project is not None
        for a in self.actions:
            a.setEnabled(has)
        if has:
            self.act_losses.setEnabled(bool(self.bench.project.runs))

    # ------------------------------------------------------------------------------ helpers
    def start_dir(self) -> str:
        """Where the export dialogs open (settings.save_dir: the last save, else the documents folder)."""
        return settings.save_dir()

    def _remember(self, folder: str | os.PathLike[str]) -> None:
        settings.set_save_dir(os.fspath(folder))

    def _done(self, what: str, where: str | os.PathLike[str]) -> None:
        self.bench.status(f"Exported {what} to {os.fspath(where)}", 8000)

    def _fail(self, title: str, exc: InputError) -> None:
        self.bench.show_error(title, exc.path, exc.reason)

    # ------------------------------------------------------------------------------ sources
    def _ask_stems(self, fmt: str) -> None:
        title = f"Export the sources ({fmt.upper()}) to"
        folder = QFileDialog.getExistingDirectory(self.window, title, self.start_dir())
        if folder:
            self.export_stems(folder, fmt)

    def export_stems(self, folder: str | os.PathLike[str], fmt: str = "wav") -> list[Path] | None:
        """The sources of the project's current W·H, as ``demixer separate`` writes them."""
        p = self.bench.project
        if p is None:
            return None
        try:
            check_folder(folder)
            QApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
            try:
                stem_set = self.audition.current_stems()
            finally:
                QApplication.restoreOverrideCursor()
            written = self._write_set(folder, stem_set, fmt)
        except InputError as exc:
            self._fail("Cannot export the sources", exc)
            return None
        self._remember(folder)
        self._done(f"{len(written)} sources ({fmt.upper()})", folder)
        return written

    def _write_set(self, folder, stem_set, fmt: str) -> list[Path]:
        """As ``demixer separate`` writes them: a set (the folder holds the previous set or this one,
        never a mix), ``stems.json`` naming each file's source, free space checked first."""
        p = self.bench.project
        path = getattr(p.audio, "path", None)
        info = {"mix": os.path.abspath(path) if path else None,
                "score": os.path.abspath(p.score_path) if getattr(p, "score_path", None) else None,
                "sr": stem_set.sr, "channels": stem_set.channels, "frames": stem_set.n_samples,
                "from": "window"}
        writer = StemSetWriter(folder, stem_set.names, stem_set.sr, stem_set.channels, fmt, info)
        writer.check(stem_set.n_samples)
        with writer:
            for i, samples in enumerate(stem_set.stems):
                writer.write(i, samples)
            return writer.commit()

    # ------------------------------------------------------------------------------ factors
    def _ask_factors(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Export W and H to", self.start_dir())
        if folder:
            self.export_factors(folder)

    def export_factors(self, folder: str | os.PathLike[str]) -> list[Path] | None:
        p = self.bench.project
        if p is None:
            return None
        try:
            written = write_factors(
                folder, p.W, p.H, [c.name for c in p.components], p.analysis.freqs, p.analysis.times
            )
        except InputError as exc:
            self._fail("Cannot export W and H", exc)
            return None
        self._remember(folder)
        self._done("W and H (npy, CSV)", folder)
        return written

    # ------------------------------------------------------------------------------ images
    def _ask_images(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Export pane images to", self.start_dir())
        if folder:
            self.export_images(folder)

    def export_images(self, folder: str | os.PathLike[str]) -> list[Path] | None:
        try:
            out = check_folder(folder)
            written = []
            for name, attr in PANE_IMAGES.items():
                widget = getattr(self.window, attr, None)
                if widget is None:
                    continue
                path = out / name
                if not widget.grab().save(str(path), "PNG"):
                    raise InputError(path, "the image could not be written")
                written.append(path)
        except InputError as exc:
            self._fail("Cannot export the pane images", exc)
            return None
        self._remember(folder)
        self._done(f"{len(written)} pane images", folder)
        return written

    # ------------------------------------------------------------------------------ losses
    def _ask_losses(self) -> None:
        start = os.path.join(self.start_dir(), "losses.csv")
        path, _ = QFileDialog.getSaveFileName(self.window, "Export the loss curves", start, "CSV (*.csv)")
        if path:
            self.export_losses(path)

    def export_losses(self, path: str | os.PathLike[str]) -> Path | None:
        p = self.bench.project
        if p is None:
            return None
        try:
            written = write_loss_csv(path, p.runs)
        except InputError as exc:
            self._fail("Cannot export the loss curves", exc)
            return None
        self._remember(Path(path).parent)
        self._done(f"{len(p.runs)} loss curves", path)
        return written


def install_export_menu(window: Any, audition: Any) -> Exporter:
    """File → Export submenu, placed before "Save window image…" (or before Quit, or at the end)."""
    exporter = Exporter(window, audition)
    reg = window.bench.actions
    file_menu = reg.menu("file")
    before = reg.get("file.screenshot") or reg.get("file.quit")
    if before is not None and before in file_menu.actions():
        file_menu.insertMenu(before, exporter.menu)
    else:
        file_menu.addMenu(exporter.menu)
    return exporter
