"""The model list, as the engine offers it: re-exported from :mod:`demixer.core.models`, where it lives
so that every layer (the project's validation in ``model``, the file schema in ``io``, the engine, the
CLI and the window) reads the same one list."""

from demixer.core.models import ALL_MODELS, ModelInfo, model_info, model_labels, model_names, models_help

__all__ = ["ModelInfo", "ALL_MODELS", "model_info", "model_names", "model_labels", "models_help"]
