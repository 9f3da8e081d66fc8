"""Making model text safe for the vault's markdown.

The model writes free text; the note format gives some characters meaning
(headings, frontmatter fences, wikilinks, tags, Obsidian comments, raw HTML,
Tasks signifiers). Everything the model says passes through these functions
before it reaches a note, so a hostile or clumsy answer can change words but
never the note's structure.

Each sanitiser is a small list of rewriting steps run until nothing changes,
so the order of the steps cannot matter (removing `@` cannot leave a `#tag`
behind, removing a zero-width space cannot join `[` and `[`), and every
sanitiser is idempotent: `inline(inline(x)) == inline(x)`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence

_WS = re.compile(r"\s+")
_BLOCK_START = re.compile(r"^(?:[#>]+|-{3,}|[-*+](?=\s)|\d+[.)](?=\s)|`{3,}|={3,}|\[.\])\s*")
# A `#` the Tasks plugin or Obsidian would read as a tag start: after the start or a space, before a
# tag character (one_line has already made every kind of whitespace a plain space).
_TAG_LIKE = re.compile(r"(^|\s)#(?=[^\s#])")
_ESCAPED_HASH = re.compile(r"\\#")
_BLOCK_ID = re.compile(r"(?<!\S)\^+")  # `^id` after a space is an Obsidian block id
_LINK_FORBIDDEN = re.compile(r"[\[\]|#^\\/:]|%%")
_FILENAME_FORBIDDEN = re.compile(r'[#|^\[\]<>:"/\\?*\x00-\x1f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_SLUG_DROP = re.compile(r"[^\w\-/]")
_DASHES = re.compile(r"-{2,}")

# Raw HTML Obsidian would render (a remote <img>, an <iframe>, a comment hiding text) and the
# openers of HTML blocks, Templater (`<%`) and autolinks when no closing `>` follows.
_HTML_TAG = re.compile(r"<!--.*?(?:-->|$)|</?[A-Za-z][^<>]*>|<[!?][^<>]*>")
_HTML_OPENER = re.compile(r"<(?=[A-Za-z/!?%])")
_REPEATS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\[{2,}"), "["),  # [[wikilink
    (re.compile(r"\]{2,}"), "]"),
    (re.compile(r"%{2,}"), "%"),  # %%comment%%
    (re.compile(r"\{{2,}"), "{"),  # {{template}}
    (re.compile(r"\}{2,}"), "}"),
    (re.compile(r"\{[%#]"), "{"),  # {% jinja %}, {# comment #}
    (re.compile(r"[%#]\}"), "}"),
    (re.compile(r":{2,}"), ":"),  # Dataview inline field `key:: value`
    (re.compile(r"!(?=\[)"), ""),  # ![image](url), ![[embed]]
    (re.compile(r"\]\("), "] ("),  # [text](url)
    (re.compile(r"`+"), ""),  # code spans: Dataview runs "`= expr`" and "`$= js`"
]

# Obsidian Tasks signifiers: a model that writes them into task text would add fields.
TASK_EMOJI = "📅📆🗓⏳⌛🛫➕✅❌🔁🏁🆔⛔🔺⏫🔼🔽⏬⏰"
_TASK_EMOJI_RE = re.compile("[" + TASK_EMOJI + "]\ufe0f?")

Step = Callable[[str], str]


def _invisible(char: str) -> bool:
    """Zero-width and control characters (U+200B, U+FEFF, bidi controls, ...): the Tasks plugin's
    JavaScript `\\s` counts U+FEFF as a space, so `\\ufeff#urgent` would be a tag."""
    return unicodedata.category(char) in ("Cf", "Cc", "Cs")


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines, tabs, NBSP, U+2028) to single spaces; drop invisible characters."""
    text = _WS.sub(" ", text)
    if any(_invisible(c) for c in text):
        text = _WS.sub(" ", "".join(c for c in text if not _invisible(c)))
    return text.strip()


def _fixed_point(text: str, steps: Sequence[Step]) -> str:
    """Apply the steps until none changes the text, so their order cannot leave anything behind."""
    for _ in range(100):
        previous = text
        for step in steps:
            text = step(text)
        if text == previous:
            return text
    raise AssertionError(f"sanitiser did not settle on {text!r}")  # pragma: no cover


def _unescape_entities(text: str) -> str:
    return html.unescape(text) if "&" in text else text


def _strip_html(text: str) -> str:
    if "<" not in text:
        return text
    return _HTML_OPENER.sub("", _HTML_TAG.sub(" ", text))


def _collapse_syntax(text: str) -> str:
    for pattern, replacement in _REPEATS:
        text = pattern.sub(replacement, text)
    return text


def _escape_tags(text: str) -> str:
    return _TAG_LIKE.sub(lambda m: m.group(1) + "\\#", text)


def _strip_block_start(text: str) -> str:
    return _BLOCK_START.sub("", text).strip()


def _strip_block_ids(text: str) -> str:
    return _BLOCK_ID.sub("", text)


_PLAIN_STEPS: list[Step] = [_unescape_entities, one_line, _strip_html, _collapse_syntax]
_INLINE_STEPS: list[Step] = [*_PLAIN_STEPS, _escape_tags, _strip_block_start, _strip_block_ids, str.strip]


def plain(text: str) -> str:
    """One line with no HTML, entities, wikilinks, comments, template braces, code spans or embeds."""
    return _fixed_point(text, _PLAIN_STEPS)


def inline(text: str) -> str:
    """Text for a list item or paragraph: `plain`, and no block syntax, tags or block ids."""
    return _fixed_point(text, _INLINE_STEPS)


def _strip_task_syntax(text: str) -> str:
    text = _TASK_EMOJI_RE.sub("", text).replace("@", "")
    return _ESCAPED_HASH.sub("", text)


_TASK_STEPS: list[Step] = [*_INLINE_STEPS, _strip_task_syntax, one_line]


def task_text(text: str) -> str:
    """Task description: inline-safe and free of Tasks signifiers, `@`, tags and block ids."""
    return _fixed_point(text, _TASK_STEPS)


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
