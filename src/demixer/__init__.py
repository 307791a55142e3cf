"""Demixer: decompose music recordings with NMF and nonnegative autoencoders."""

from pathlib import Path

__version__ = "0.1.0"


def resources_dir() -> Path:
    """The folder holding the bundled demo piece and default settings."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "resources", here.parents[2] / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Demixer's resources folder was not found next to the package")


def demo_paths() -> tuple[Path, Path]:
    """(audio, score) of the bundled demo piece."""
    d = resources_dir() / "demo"
    return d / "mozart_k545_exposition.flac", d / "mozart_k545_exposition.mid"
