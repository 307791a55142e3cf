"""Layering rules of DESIGN.md §3: only demixer.gui imports Qt; core imports no I/O or audio library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "demixer"


def _imported_modules(layer: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / layer).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(SRC))] = names
    return found


@pytest.mark.parametrize("layer", ["core", "model", "io", "engine", "audio", "cli"])
def test_no_qt_outside_gui(layer):
    for path, names in _imported_modules(layer).items():
        assert not names & {"PySide6", "pyqtgraph", "shiboken6"}, f"{path} imports Qt"


def test_core_imports_only_numpy_scipy_and_the_standard_library():
    allowed = {"numpy", "scipy", "demixer"} | set(sys.stdlib_module_names)
    for path, names in _imported_modules("core").items():
        assert names <= allowed, f"core/{path} imports {sorted(names - allowed)}"
    # and none of the I/O or audio libraries, whatever the standard library check says
    for path, names in _imported_modules("core").items():
        assert not names & {"soundfile", "sounddevice", "mido"}, f"core/{path} imports an I/O library"


def test_headless_packages_do_not_load_qt_or_audio_at_import():
    code = (
        "import sys\n"
        "import demixer.core.stft, demixer.core.nmf, demixer.core.nae, demixer.core.masks\n"
        "bad = [m for m in ('soundfile', 'sounddevice', 'PySide6') if m in sys.modules]\n"
        "assert not bad, f'core loaded {bad}'\n"
        "import demixer.model, demixer.engine, demixer.cli.main\n"
        "assert 'PySide6' not in sys.modules, 'a headless layer loaded PySide6'\n"
        "assert 'pyqtgraph' not in sys.modules, 'a headless layer loaded pyqtgraph'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_imports_flow_one_way_by_the_import_linter_contract():
    """The `layers` contract in pyproject.toml (cli > gui > engine | audio > io > model > core), checked
    over every import, including those inside functions. .ci/run runs it too, before the tests."""
    import shutil

    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is in the test extra (pyproject.toml)"
    proc = subprocess.run(
        [exe, "--no-cache"], capture_output=True, text=True, timeout=300, cwd=SRC.parents[1]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _private_accesses(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, expression) of every ``x._name`` where x is not ``self`` or ``cls`` (dunders are public)."""
    out = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        out.append((node.lineno, ast.unparse(node)))
    return out


def test_no_gui_module_reaches_into_another_objects_privates():
    """Controllers talk to the Workbench's public members (DESIGN.md §3): in demixer.gui, an attribute
    ``x._name`` is only ever used on ``self`` or ``cls``."""
    bad = [
        f"gui/{path.name}:{line}: {expr}"
        for path in sorted((SRC / "gui").rglob("*.py"))
        for line, expr in _private_accesses(path.read_text(), str(path))
    ]
    assert not bad, "private members of other objects:\n" + "\n".join(bad)


def test_the_private_member_check_catches_a_violation():
    src = "def f(window):\n    return window._running() or self._ok or cls._k or window.__class__\n"
    assert _private_accesses(src) == [(2, "window._running")]
