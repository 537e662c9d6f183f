"""A chat for reading, as Markdown: the title, its settings, then each message's current
version (with its reasoning folded away). Made from ``export_json`` data, so a stored chat
and a chat an app holds in memory read the same.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..chat.roles import ROLE_TABLE
from ..chat.samplers import SamplerSettings


def markdown_from_export(data: dict[str, Any]) -> str:
    """``export_json`` data (a stored chat's, or an app's chat held in memory) for reading."""
    lines = [f"# {data['title']}", ""]
    settings = dict(data["settings"])
    settings["sampler"] = sampler_label(settings.get("sampler", ""))
    for key in ("model", "format", "sampler", "thinking"):
        if settings.get(key):
            lines.append(f"- {key}: `{settings[key]}`")
    lines += [f"- saved: {datetime.fromisoformat(data['updated']):%Y-%m-%d %H:%M}", ""]
    for message in data["messages"]:
        versions, current = message["versions"], message["current"]
        heading = ROLE_TABLE[message["role"]].label
        if len(versions) > 1:
            heading += f" (version {current + 1} of {len(versions)})"
        lines += [f"## {heading}", ""]
        reasonings = message.get("reasonings") or [""] * len(versions)
        thought = reasonings[current].strip() if current < len(reasonings) else ""
        if thought:
            lines += ["<details><summary>Reasoning</summary>", "", *thought.splitlines(), ""]
            lines += ["</details>", ""]
        lines += [versions[current].rstrip("\n"), ""]
    return "\n".join(lines)


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
    except (ValueError, AttributeError):
        return "custom"
    return f"{name} ({', '.join(changed)})" if changed else name
