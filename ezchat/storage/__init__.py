"""Saved chats: the SQLite store (schema and migrations, connection, messages, KV states,
export/import), the glue between a stored chat and a live Thread, and chat files."""
