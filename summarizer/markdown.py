"""Making model text safe for the vault's markdown.

The model writes free text; the note format gives some characters meaning
(headings, frontmatter fences, wikilinks, tags, Obsidian comments). Everything
the model says passes through these functions before it reaches a note, so a
hostile or clumsy answer can change words but never the note's structure.
"""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
_BLOCK_START = re.compile(r"^(?:[#>]+|-{3,}|[-*+](?=\s)|\d+[.)](?=\s)|`{3,}|={3,})\s*")
_TAG_LIKE = re.compile(r"(^|\s)#(?=[^\s#])")
_LINK_FORBIDDEN = re.compile(r"[\[\]|#^\\/:]|%%")
_FILENAME_FORBIDDEN = re.compile(r'[#|^\[\]<>:"/\\?*\x00-\x1f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_SLUG_DROP = re.compile(r"[^\w\-/]")
_DASHES = re.compile(r"-{2,}")

# Obsidian Tasks signifiers: a model that writes them into task text would add fields.
TASK_EMOJI = "📅📆🗓⏳⌛🛫➕✅❌🔁🏁🆔⛔🔺⏫🔼🔽⏬"
_TASK_EMOJI_RE = re.compile("[" + TASK_EMOJI + "]\ufe0f?")


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines, tabs, NBSP, U+2028) to single spaces."""
    return _WS.sub(" ", text).strip()


def inline(text: str) -> str:
    """Text for a list item or paragraph: one line, no block syntax, links, tags or comments."""
    text = one_line(text)
    text = text.replace("[[", "[").replace("]]", "]").replace("%%", "%")
    text = _TAG_LIKE.sub(lambda m: m.group(1) + "\\#", text)
    previous = None
    while previous != text:  # "## - > x" must lose every marker
        previous = text
        text = _BLOCK_START.sub("", text)
    return text.strip()


def task_text(text: str) -> str:
    """Task description: inline-safe and free of Tasks signifiers and block ids."""
    text = _TASK_EMOJI_RE.sub("", text)
    text = re.sub(r"\s\^[\w-]+$", "", text)
    return inline(text).replace("\\#", "").replace("@", "").strip()


def link_target(name: str) -> str:
    """A wikilink target: no `[ ] | # ^`, no path separators or colons, one line."""
    return one_line(_LINK_FORBIDDEN.sub(" ", one_line(name))).strip(" .")


def wikilink(name: str) -> str:
    target = link_target(name)
    return f"[[{target}]]" if target else ""


def slugify(text: str) -> str:
    """A tag slug both Obsidian and the Tasks plugin accept: `Jai Menon` -> `jai-menon`."""
    text = unicodedata.normalize("NFC", text).lower().strip()
    text = _WS.sub("-", text)
    text = _SLUG_DROP.sub("", text)
    text = _DASHES.sub("-", text).strip("-/")
    if text and text.replace("-", "").replace("/", "").isdigit():
        text = "n" + text
    return text


def safe_filename(name: str, max_length: int = 100) -> str:
    """A file name that Obsidian links and Windows, macOS and Linux all accept.

    Follows the Obsidian web clipper's `safe_name`, plus a length cap (the vault
    already cuts long titles near 100 characters).
    """
    name = one_line(_FILENAME_FORBIDDEN.sub("", one_line(name))).replace("%%", "%")
    name = name.lstrip(".").strip()
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name) > max_length:
        name = name[:max_length]
    name = name.rstrip(" .")
    return name or "Untitled"
