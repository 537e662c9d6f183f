"""``ezchat.formats`` is ``ezchat.chat.formats``, under its old name: the same module object, so
imports, attributes and monkeypatches reach one place. New code imports ``ezchat.chat.formats``."""

import sys

from .chat import formats as _moved

sys.modules[__name__] = _moved
