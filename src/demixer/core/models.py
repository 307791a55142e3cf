"""The models Demixer can run, and what each can do (DESIGN.md §2.2, §2.4, §2.5c).

This is the one list: the project's validation (``model``), the project-file schema (``io``), the
engine's jobs and fits, the CLI's ``--model`` choices and help, and the window's Parameters dock read
it. It lives in ``core`` (pure data, no imports) so that every layer can. Add a model here and
everywhere offers it; a model of an existing family (β-NMF with another β, an NAE trainer) needs
nothing else.

    name      the key used in settings, projects and on the command line (``--model NAME``)
    label     the name shown to users
    family    "nmf" (multiplicative updates of W and H) or "nae" (nonnegative autoencoder)
    beta      the β-divergence fitted (2 Euclidean, 1 Kullback–Leibler)
    staged    can run the staged score-informed fit (scout and align, templates, activations)
    encoder   trains an encoder W_E (the NAE): a run keeps and can resume it
    lock      honours per-component locks (locked components are not updated)
    method    the NAE trainer ("mu" multiplicative updates, "pgd" projected gradient), else ""
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelInfo", "ALL_MODELS", "model_info", "model_names", "model_labels", "models_help"]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str
    family: str
    beta: float
    staged: bool
    encoder: bool
    lock: bool
    method: str = ""
    summary: str = ""  # one phrase for help texts


ALL_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("nmf", "NMF (Euclidean)", "nmf", 2.0, staged=True, encoder=False, lock=True,
              summary="Euclidean NMF"),
    ModelInfo("nmf-kl", "NMF (Kullback–Leibler)", "nmf", 1.0, staged=True, encoder=False, lock=True,
              summary="Kullback–Leibler NMF"),
    ModelInfo("nae", "NAE (multiplicative updates)", "nae", 2.0, staged=False, encoder=True, lock=False,
              method="mu", summary="nonnegative autoencoder, multiplicative updates"),
    ModelInfo("nae-pgd", "NAE (projected gradient)", "nae", 2.0, staged=False, encoder=True, lock=False,
              method="pgd", summary="nonnegative autoencoder, projected gradient"),
)

_BY_NAME = {m.name: m for m in ALL_MODELS}


def model_names() -> tuple[str, ...]:
    """The model names, in the order users see them."""
    return tuple(_BY_NAME)


def model_labels() -> dict[str, str]:
    """name → label, in order (for menus and combo boxes)."""
    return {m.name: m.label for m in ALL_MODELS}


def model_info(name: str) -> ModelInfo:
    """The model called ``name``; ValueError naming the choices for an unknown one."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_BY_NAME)}") from None


def models_help(default: str | None = None) -> str:
    """One line per model for help texts: ``name = summary`` (``(default)`` after ``default``)."""
    return "; ".join(
        f"{m.name} = {m.summary}" + (" (default)" if m.name == default else "") for m in ALL_MODELS
    )
