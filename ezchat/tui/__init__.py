"""The Textual app: ``run_app(ChatOptions(model=...))`` or ``EzChatApp(options)``."""

from __future__ import annotations

from .app import EzChatApp, run_app

__all__ = ["EzChatApp", "run_app"]
