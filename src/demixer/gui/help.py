"""The Help menu (DESIGN.md §4): the keyboard shortcuts (read from the window's actions, so the list is
never out of date) and an About box with the version and the licences of Qt and the libraries."""

from __future__ import annotations

from importlib import metadata

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTableWidget, QTableWidgetItem, QVBoxLayout

__all__ = ["LIBRARIES", "install_help", "shortcut_rows"]

#: (distribution, licence) shown in the About box.
LIBRARIES = (
    ("PySide6-Essentials", "LGPL-3.0 (Qt for Python)"),
    ("numpy", "BSD-3-Clause"),
    ("scipy", "BSD-3-Clause"),
    ("pyqtgraph", "MIT"),
    ("soundfile", "BSD-3-Clause (libsndfile: LGPL-2.1)"),
    ("sounddevice", "MIT (PortAudio: MIT)"),
    ("mido", "MIT"),
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def shortcut_rows(window) -> list[tuple[str, str]]:
    """(action, keys) for every action of the window that has a shortcut, sorted by action text."""
    rows = {}
    for a in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        text = a.text().replace("&", "").rstrip("…").strip()
        if keys and text:
            rows[text] = ", ".join(keys)
    return sorted(rows.items(), key=lambda kv: kv[0].lower())


class ShortcutsDialog(QDialog):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(self)
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (text, keys) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(text))
            self.table.setItem(r, 1, QTableWidgetItem(keys))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(460, 520)


def about_text() -> str:
    from demixer import __version__

    libs = "".join(f"<tr><td>{d}</td><td>{_version(d)}</td><td>{lic}</td></tr>" for d, lic in LIBRARIES)
    return (
        f"<h3>Demixer {__version__}</h3>"
        "<p>A workbench for decomposing music recordings with NMF and nonnegative autoencoders, "
        "score-informed. Licence: MIT.</p>"
        f"<p>Built with Qt {qVersion()} (LGPL-3.0) and these libraries:</p>"
        f"<table cellspacing='6'><tr><th align='left'>library</th><th align='left'>version</th>"
        f"<th align='left'>licence</th></tr>{libs}</table>"
    )


class HelpMenu:
    def __init__(self, window) -> None:
        self.window = window
        self.dialog: QDialog | None = None
        reg = window.bench.actions
        menu = reg.add_menu("help", window.menuBar().addMenu("&Help"))
        self.act_shortcuts = reg.add("help.shortcuts", QAction("&Keyboard shortcuts", window))
        self.act_shortcuts.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
        self.act_shortcuts.triggered.connect(self.show_shortcuts)
        self.act_about = reg.add("help.about", QAction("&About Demixer", window))
        self.act_about.triggered.connect(self.show_about)
        self.act_about_qt = reg.add("help.about_qt", QAction("About &Qt", window))
        self.act_about_qt.triggered.connect(lambda: QMessageBox.aboutQt(window))
        for a in (self.act_shortcuts, self.act_about, self.act_about_qt):
            menu.addAction(a)

    def show_shortcuts(self) -> QDialog:
        self.dialog = ShortcutsDialog(self.window)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.open()
        return self.dialog

    def show_about(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About Demixer", about_text(), parent=self.window)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.dialog = box
        return box


def install_help(window) -> HelpMenu:
    return HelpMenu(window)
