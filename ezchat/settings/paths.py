"""Where ezchat's files live: shipped data beside the package, user files in platformdirs' folders.

Every other module asks here, so an override (``EZCHAT_HOME`` for tests and portable installs)
moves all of them at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "ezchat"

# the package's folder (ezchat/), however deep in it this module sits
_PACKAGE_DIR = Path(__file__).resolve().parents[__name__.count(".") - 1]


def shipped_dir(kind: str) -> Path:
    """The folder of shipped files of one kind (``formats``, ``samplers``, ``templates``).

    A wheel carries them in ``ezchat/_shipped/``; a source checkout has them at the repo's top.
    """
    inside = _PACKAGE_DIR / "_shipped" / kind
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / kind


def _home() -> Path | None:
    home = os.environ.get("EZCHAT_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def user_dir(kind: str) -> Path:
    """The folder where a user's own files of one kind extend and override the shipped ones."""
    return config_dir() / kind
