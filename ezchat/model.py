"""``ezchat.model`` is ``ezchat.engine.model``, under its old name: the same module object, so
imports, attributes and monkeypatches reach one place. New code imports ``ezchat.engine.model``."""

import sys

from .engine import model as _moved

sys.modules[__name__] = _moved
