"""A chat for reading, as Markdown: the title, its settings, then the messages of its active
path (with their reasoning folded away). Made from ``export_json`` data, so a stored chat
and a chat an app holds in memory read the same.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from ..chat.roles import ROLE_TABLE
from ..chat.samplers import SamplerSettings


def markdown_from_export(data: dict[str, Any]) -> str:
    """``export_json`` data (a stored chat's, or an app's chat held in memory) for reading."""
    lines = [f"# {_one_line(data['title'])}", ""]
    settings = dict(data["settings"])
    settings["sampler"] = sampler_label(settings.get("sampler", ""))
    for key in ("model", "format", "sampler", "thinking"):
        if settings.get(key):
            lines.append(f"- {key}: {_code(_one_line(settings[key]))}")
    lines += [f"- saved: {datetime.fromisoformat(data['updated']):%Y-%m-%d %H:%M}", ""]
    for node, place, count in _active_path(data):
        heading = ROLE_TABLE[node["role"]].label
        if count > 1:
            heading += f" (version {place + 1} of {count})"
        lines += [f"## {heading}", ""]
        thought = node.get("reasoning", "").strip()
        if thought:
            lines += ["<details><summary>Reasoning</summary>", "", *thought.splitlines(), ""]
            lines += ["</details>", ""]
        lines += [node["content"].rstrip("\n"), ""]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """A title or setting on one line: one that held a line break (outside text: an imported
    chat's) would otherwise start sections of its own, such as a fake "## Bot"."""
    return " ".join(text.split())


def _code(text: str) -> str:
    """``text`` as a Markdown code span, fenced by more backticks than it holds in a row."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def _active_path(data: dict[str, Any]) -> list[tuple[dict[str, Any], int, int]]:
    """The export's active path from the top: each node, its place among its siblings and
    how many there are."""
    by_id = {node["id"]: node for node in data["nodes"]}
    siblings: dict[int, list[int]] = {}
    for node in data["nodes"]:
        siblings.setdefault(node["parent"], []).append(node["id"])
    path, node_id = [], data["active"]
    while node_id in by_id and len(path) < len(by_id):
        node = by_id[node_id]
        family = siblings[node["parent"]]
        path.append((node, family.index(node_id), len(family)))
        node_id = node["parent"]
    path.reverse()
    return path


def sampler_label(setting: str) -> str:
    """A chat's saved sampler for people: the preset name, or the values that differ from
    llama.cpp's defaults when the sampler was edited (``custom (temp=0.3, top_k=7)``)."""
    if not setting.startswith("{"):
        return setting
    try:
        values = json.loads(setting)
        defaults = SamplerSettings().to_dict()
        changed = [
            f"{key}={value}"
            for key, value in values.items()
            if key != "name" and key in defaults and value != defaults[key]
        ]
        name = str(values.get("name", "custom"))
    except (ValueError, AttributeError, RecursionError):
        return "custom"
    return f"{name} ({', '.join(changed)})" if changed else name
