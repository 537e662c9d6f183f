"""Saved chats: the SQLite store, the glue between a stored chat and a live Thread, and chat files."""
