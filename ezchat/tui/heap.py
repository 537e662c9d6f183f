"""Keep Python's full garbage collections short while a big chat is on screen.

CPython (3.11) scans every tracked object in a full (generation 2) collection, on whichever
thread allocates at that moment, usually the UI thread. With a 2,000-message chat, its Thread,
the model and Textual's widgets alive, one such collection took up to 167 ms while the screen
filled (benchmarks/stall_probe.py), and a key typed then waited for it. ``settle`` moves
everything alive when a chat is shown into the permanent generation (``gc.freeze``), so later
collections scan only what was made since: the widgets being mounted.

The objects frozen by the previous call are unfrozen first, so a chat switched away from is
collected by a later full collection instead of living on.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Exclude what is alive now from later collections (see the module's docstring)."""
    gc.unfreeze()
    gc.freeze()
