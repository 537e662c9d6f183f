"""``ezchat.thread`` is ``ezchat.chat.thread``, under its old name: the same module object, so
imports, attributes and monkeypatches reach one place. New code imports ``ezchat.chat.thread``."""

import sys

from .chat import thread as _moved

sys.modules[__name__] = _moved
