"""A response cache on disk: the same prompt to the same model, format and sampler returns the
stored reply instead of running the model again.

The key is a hash of the model file's identity (path, size, modification time, context and cache
settings, LoRA), the format's name, every sampler setting, the prompt's exact tokens, the stops
and the output grammar. Note that a sampler with a random seed is cached like any other: a
repeated run returns the stored sample. Pass ``cache=False`` to a runner for fresh ones.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.results import EvalReport, GenerationResult
from ..settings import paths

if TYPE_CHECKING:
    from ..engine.batched import Request
    from ..engine.model import Model

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    format TEXT NOT NULL,
    text TEXT NOT NULL,
    tokens TEXT NOT NULL,
    stop_reason TEXT NOT NULL,
    stop_string TEXT,
    prompt_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def default_path() -> Path:
    return paths.cache_dir() / "responses.sqlite3"


def cache_key(model: Model, format_name: str, request: Request) -> str:
    sampler = request.sampler.to_dict()
    sampler.pop("name", None)  # the settings matter, not what the preset is called
    identity = {
        "v": SCHEMA_VERSION,
        "model": model.context_fingerprint(),
        "format": format_name,
        "sampler": sampler,
        "prompt": request.tokens,
        "stops": [str(stop) if isinstance(stop, int) else stop for stop in request.stops],
        "grammar": request.grammar,
    }
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class ResponseCache:
    """Stored replies in an SQLite file (``paths.cache_dir()/responses.sqlite3`` by default)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One run at a time uses it, but maybe from a worker thread (the TUI's, say).
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._db:
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def get(self, key: str) -> GenerationResult | None:
        """The stored reply as a GenerationResult that evaluated nothing, or None."""
        row = self._db.execute(
            "SELECT text, tokens, stop_reason, stop_string, prompt_tokens FROM responses "
            "WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        text, tokens, stop_reason, stop_string, prompt_tokens = row
        return GenerationResult(
            text=text,
            tokens=json.loads(tokens),
            stop_reason=stop_reason,
            stop_string=stop_string,
            prompt=EvalReport(prompt_tokens=prompt_tokens, reused=prompt_tokens),
        )

    def put(self, key: str, model: Model, format_name: str, result: GenerationResult) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    model.filename,
                    format_name,
                    result.text,
                    json.dumps(result.tokens),
                    result.stop_reason,
                    result.stop_string,
                    result.prompt.prompt_tokens,
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM responses")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
