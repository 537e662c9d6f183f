"""``ezchat.samplers`` is ``ezchat.chat.samplers``, under its old name: the same module object, so
imports, attributes and monkeypatches reach one place. New code imports ``ezchat.chat.samplers``."""

import sys

from .chat import samplers as _moved

sys.modules[__name__] = _moved
