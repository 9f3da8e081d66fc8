"""A smaller fixed prompt for small context windows (2k-6k tokens, common on local servers).

The packaged instructions plus the full JSON schema take about 2,000 tokens, which leaves a 2k-4k
window no room for the transcript. Below `COMPACT_WINDOW` the engine uses `system_compact.j2` and
the schema without its descriptions (about 700 tokens together). A vault that overrides
`system.j2` keeps its own instructions whatever the window.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from typing import Any

from summarizer.prompting import compile_template, extraction_schema

COMPACT_WINDOW = 6144
TEMPLATE = "system_compact.j2"


def wants_compact(window: int, system_origin: str | None) -> bool:
    return window < COMPACT_WINDOW and system_origin in (None, "packaged")


@functools.cache
def compact_schema() -> dict[str, Any]:
    """The extraction schema without descriptions and titles (field names and types say enough)."""

    def strip(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            return {
                key: strip(value, key == "properties" and not in_properties)
                for key, value in node.items()
                if in_properties or not (key in ("description", "title") and isinstance(value, str))
            }
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    stripped: dict[str, Any] = strip(extraction_schema())
    return stripped


@functools.cache
def _template_text() -> str:
    return files("summarizer.prompts").joinpath(TEMPLATE).read_text(encoding="utf-8")


def compact_system(*, owner: str | None, owner_aliases: list[str], with_schema: bool) -> str:
    schema = json.dumps(compact_schema(), ensure_ascii=False, separators=(",", ":")) if with_schema else ""
    template = compile_template(_template_text(), keep_trailing_newline=False)
    return template.render(owner=owner, owner_aliases=owner_aliases, schema_json=schema).strip() + "\n"
