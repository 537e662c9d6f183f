"""The terminal chat behind ``Thread.interact()`` and ``ezchat chat``, on prompt-toolkit.

While the bot writes, Ctrl-C stops it (the partial reply is kept; Enter then rerolls it). At
the prompt, Ctrl-C or Ctrl-D ends the chat. ``<`` prefixes the bot's next reply, ``!!`` adds a
system message, ``!`` opens the command prompt (``help`` lists the commands) and a line ending
in ``\\`` continues on the next line. Input history is kept in the user data dir (Ctrl-R
searches it). Piped input is read line by line and piped output is plain text.

Everything printed goes through ``visible`` (ezchat.safetext): the replies, a loaded chat, the
model's name and errors quoting files can hold terminal controls, which are shown as pictures,
never obeyed; the Thread (and ``!save``) keep the raw text.
"""

from .loop import INTRO, STOPPED_HINT, Repl, interact
from .output import DIM_OFF, DIM_ON
from .readers import history_path

__all__ = ["DIM_OFF", "DIM_ON", "INTRO", "STOPPED_HINT", "Repl", "history_path", "interact"]
