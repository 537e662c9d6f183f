"""``python -m ezchat``: the same as the ``ezchat`` command."""

from __future__ import annotations

from .cli.app import main

if __name__ == "__main__":
    main()
