"""Read a meeting transcript file, whatever its format, into one `Transcript`.

The format is recognised from the content (a `.txt` file may hold WebVTT, a
`.md` file plain `Speaker: text` lines), because users drop whatever their
meeting tool exported into the inbox. Everything that is not speech (noise
tags, cue numbers, markup) is removed here, so later stages see only words.
Files that cannot be a transcript are refused with a `TranscriptError` naming
the file and the reason, instead of being sent to the model.
"""

from __future__ import annotations

import codecs
import datetime as dt
import html
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from summarizer.errors import SummarizerError, TranscriptError
from summarizer.models import Transcript, Utterance

__all__ = [
    "MAX_TRANSCRIPT_BYTES",
    "check_input_file",
    "decode_transcript_bytes",
    "read_transcript",
    "repair_mojibake",
]

#: Anything larger is a recording, a dump or a mistake, not a meeting transcript
#: (a full working day of speech is about 1 MB of text).
MAX_TRANSCRIPT_BYTES = 20 * 1024 * 1024

# --------------------------------------------------------------------------- encoding


# Only the encoding repairs: the cosmetic ones (curly quotes, ligatures, NFC,
# line breaks) would change clean text, and notes must round-trip byte for byte.
@cache
def _ftfy_config() -> Any:
    """ftfy (with wcwidth, about 50 ms to import) loads only for text that is not plain ASCII."""
    import ftfy

    return ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )


_MAC_ROMAN_HIGH = bytes(range(0x80, 0x100)).decode("mac_roman")
_MAC_ROMAN_RUN = re.compile("[" + re.escape(_MAC_ROMAN_HIGH) + "]{2,}")
# Mac Roman renderings of UTF-8 lead bytes C2..C6: maths symbols that never
# stand right before an accented letter in real text, so such a pair is mojibake.
_SUSPECT_MAC_LEADS = frozenset("¬√ƒ≈∆")


def _utf8_sequence_length(lead: int) -> int:
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 1


def _repair_mac_roman_run(run: str) -> str:
    """Undo UTF-8-read-as-Mac-Roman inside one run of non-ASCII characters.

    Each Mac Roman character is one byte, so a run maps back to its bytes; a
    UTF-8 sequence inside it is decoded only when it cannot be real text: it
    yields a character beyond U+07FF (three or four mojibake characters, e.g.
    `‚Äô` or U+F8FF `üìÖ`) or starts with a maths symbol such as `√`.
    """
    raw = run.encode("mac_roman")
    out: list[str] = []
    i = 0
    while i < len(raw):
        size = _utf8_sequence_length(raw[i])
        if size > 1 and i + size <= len(raw):
            try:
                char = raw[i : i + size].decode("utf-8")
            except UnicodeDecodeError:
                char = ""
            if char and (ord(char) >= 0x800 or run[i] in _SUSPECT_MAC_LEADS):
                out.append(char)
                i += size
                continue
        out.append(run[i])
        i += 1
    return "".join(out)


def repair_mojibake(text: str) -> str:
    """Repair text that was once decoded with the wrong codec; leave clean text alone.

    ftfy handles the common cases (UTF-8 read as Windows-1252 or Latin-1). The
    vault's own damage, UTF-8 read as Mac Roman, is only partly caught by ftfy
    (emoji turn into U+F8FF plus letters it does not consider suspicious), so a
    targeted Mac Roman pass runs afterwards on runs of non-ASCII characters.
    """
    if text.isascii():  # every fix enabled here (and the Mac Roman pass) needs a non-ASCII character
        return text
    # ftfy fixes line by line: lines of plain ASCII, most of a transcript, would come back unchanged.
    import ftfy

    config = _ftfy_config()
    segments = text.split("\n")
    last = len(segments) - 1
    fixed = "".join(
        segment + ("\n" if i < last else "")
        if segment.isascii()
        else ftfy.fix_text(segment + ("\n" if i < last else ""), config)
        for i, segment in enumerate(segments)
    )
    return _MAC_ROMAN_RUN.sub(lambda m: _repair_mac_roman_run(m.group(0)), fixed)


_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Unicode category Cc (U+0000-001F, U+007F-009F) less the whitespace controls \t \n \v \f \r.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _bomless_utf16(data: bytes) -> str | None:
    """Guess UTF-16 without a BOM from the NUL bytes ASCII leaves in every other position."""
    if len(data) < 4 or len(data) % 2:
        return None
    even_nuls = data[0::2].count(0) / (len(data) // 2)
    odd_nuls = data[1::2].count(0) / (len(data) // 2)
    if odd_nuls > 0.4 and even_nuls < 0.05:
        codec = "utf-16-le"
    elif even_nuls > 0.4 and odd_nuls < 0.05:
        codec = "utf-16-be"
    else:
        return None
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _decode(data: bytes, path: Path) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as err:
                raise TranscriptError(
                    f"cannot be decoded as {codec} despite its byte-order mark", path
                ) from err
    if b"\x00" in data:
        text = _bomless_utf16(data)
        if text is None:
            raise TranscriptError(
                "looks like a binary file (contains NUL bytes), not a text transcript", path
            )
        return text
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def decode_transcript_bytes(data: bytes, path: Path) -> str:
    """Turn a file's bytes into clean text: right codec, mojibake repaired.

    Tries byte-order marks (UTF-8/16/32), BOM-less UTF-16, strict UTF-8, then
    Windows-1252 and Latin-1 (which never fail, so the result is checked for
    control characters to catch binary data). `path` only names the file in errors.
    """
    if not data:
        raise TranscriptError("file is empty", path)
    text = _decode(data, path)
    controls = len(_CONTROL_CHARS.findall(text))
    if controls > max(2, len(text) // 100):
        raise TranscriptError(
            "cannot be decoded as text (control characters: binary data or an unknown encoding)", path
        )
    return repair_mojibake(text)


# --------------------------------------------------------------------------- noise and small helpers

_NOISE_TAGS = re.compile(r"\{[a-z][a-z_]*\}|</?[a-z][a-z0-9_-]*\s*/?>|\{\\[^{}]*\}")
_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w")


def _clean_speech(text: str) -> str:
    """Drop noise tags (`{vocalsound}`, `<other_noise/>`, SRT `{\\an8}`) and collapse whitespace."""
    if "{" in text or "<" in text:
        text = _NOISE_TAGS.sub(" ", text)
    return " ".join(text.split())  # the same whitespace as `\s`, collapsed and stripped


def _parse_clock(value: str) -> float | None:
    """Seconds from `1:02:03.5`, `02:03,500` or `2:03`; None when it is not a clock."""
    parts = value.strip().replace(",", ".").split(":")
    if not 2 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return None
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def _as_seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return _parse_clock(value)
    return None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})\.?,?\s+(\d{{4}})\b", re.I)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)


def _make_date(year: str, month: str | int, day: str) -> dt.date | None:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def _find_date(text: str) -> dt.date | None:
    """The first unambiguous date in free text (ISO, `6 October 2025`, `Oct 6, 2025`).

    Numeric day/month orders like 06/10/2025 are ambiguous and deliberately ignored.
    """
    candidates: list[tuple[int, dt.date]] = []
    for m in _ISO_DATE.finditer(text):
        if (found := _make_date(m[1], m[3], m[4])) is not None:
            candidates.append((m.start(), found))
    for m in _DAY_MONTH_YEAR.finditer(text):
        if (found := _make_date(m[3], _MONTHS[m[2].lower()], m[1])) is not None:
            candidates.append((m.start(), found))
    for m in _MONTH_DAY_YEAR.finditer(text):
        if (found := _make_date(m[3], _MONTHS[m[1].lower()], m[2])) is not None:
            candidates.append((m.start(), found))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


_NAME_DATE = re.compile(r"(?<!\d)(\d{4})([-_.]?)(\d{2})\2(\d{2})(?!\d)")
_NAME_TITLE = re.compile(r"^\s*\d{4}([-_.]?)\d{2}\1\d{2}\s*[-–—]\s+(?P<title>.+?)\s*$")


def _date_from_name(name: str) -> dt.date | None:
    """A date in the file name: `2025-10-06 - ...`, `20251006`, `2025_10_06`."""
    for m in _NAME_DATE.finditer(name):
        if 1970 <= int(m[1]) <= 2100 and (found := _make_date(m[1], m[3], m[4])) is not None:
            return found
    return None


# --------------------------------------------------------------------------- speaker labels

# Prose and header words that look like `Label: text` but are not people.
# fmt: off
_NOT_SPEAKERS = frozenset((
    "note", "notes", "nb", "n.b.", "ps", "p.s.", "warning", "caution", "important", "tip", "hint", "todo",
    "fixme", "date", "time", "title", "subject", "re", "fwd", "from", "to", "cc", "bcc", "agenda", "action",
    "actions", "action item", "action items", "decision", "decisions", "summary", "conclusion", "location",
    "venue", "attendees", "participants", "present", "absent", "apologies", "example", "update", "edit",
    "source", "link", "url", "http", "https", "ftp", "mailto", "tel", "see", "also", "result", "results",
    "status", "goal", "goals", "purpose", "objective", "background", "context", "meeting", "transcript",
    "recording", "duration", "keywords", "tags", "question", "questions", "answer", "answers", "next",
    "next steps", "key points", "e.g", "i.e",
))
_PARTICLES = frozenset((
    "van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "le", "la", "al", "bin", "ibn",
    "y", "of", "the", "and",
))
# fmt: on

_TEXT_LABEL = re.compile(
    r"^(?P<label>[^\W\d_][\w.'’()&|/-]*(?:[ \t]+[\w.'’()&|/-]+){0,5})[ \t]*:(?:[ \t]+(?P<text>.*)|[ \t]*$)"
)
_CUE_LABEL = re.compile(r"^(?P<label>[^:\n]{1,60}?)[ \t]*:(?:\s+(?P<text>.*)|\s*$)", re.S)


@lru_cache(maxsize=4096)  # a meeting's few speakers start most of its lines
def _label_shape_ok(label: str, limit: int) -> bool:
    return (
        len(label) <= limit
        and len(label.split()) <= 8
        and "://" not in label
        and any(ch.isalpha() for ch in label)
        and label.casefold().rstrip(".") not in _NOT_SPEAKERS
        and label.casefold() not in _NOT_SPEAKERS
    )


def _title_case(label: str) -> bool:
    words = label.split()
    return words[0][0].isupper() and all(
        w[0].isupper() or w[0].isdigit() or w.casefold() in _PARTICLES for w in words
    )


def _accepted_labels(candidates: Sequence[str | None], total: int, *, lenient: bool) -> set[str]:
    """Which `Label:` prefixes are speakers rather than prose (`Note: ...`).

    A capitalised label used at least twice is a speaker. Labels used once
    count only inside a dialogue: when name-like labels (reused, or Title Case)
    start a good share of the lines, Title Case ones are accepted too, and for
    cue formats (Zoom puts `Name: ` on every cue) any label, lowercase or not.
    """
    counts = Counter(c for c in candidates if c)
    reused = {label for label, n in counts.items() if n >= 2 and label[0].isupper()}
    named = reused | {label for label in counts if _title_case(label)}
    covered = sum(counts[label] for label in (set(counts) if lenient else named))
    if covered < max(2, (0.5 if lenient else 0.25) * total):
        return reused
    if lenient:
        return set(counts)
    return named | {label for label, n in counts.items() if n >= 2}


def _split_label(text: str, pattern: re.Pattern[str], limit: int) -> tuple[str | None, str]:
    m = pattern.match(text)
    if m is None:
        return None, text
    label = " ".join(m["label"].split())
    if not _label_shape_ok(label, limit):
        return None, text
    return label, m["text"] or ""


# --------------------------------------------------------------------------- intermediate form


@dataclass
class _Raw:
    speaker: str | None
    start: float | None
    parts: list[str] = field(default_factory=list)


@dataclass
class _Parsed:
    utterances: list[_Raw]
    header_date: dt.date | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _raw(speaker: str | None, start: float | None, text: str) -> _Raw:
    return _Raw(speaker, start, [text])


def _labelled_cues(cues: Sequence[tuple[float | None, str]]) -> list[_Raw]:
    """Cues without voice tags: split Zoom-style `Name: text` prefixes when they are speakers."""
    splits = [_split_label(text, _CUE_LABEL, 60) for _, text in cues]
    accepted = _accepted_labels([label for label, _ in splits], len(cues), lenient=True)
    out: list[_Raw] = []
    for (start, text), (label, rest) in zip(cues, splits, strict=True):
        if label is not None and label in accepted:
            out.append(_raw(label, start, rest))
        else:
            out.append(_raw(None, start, text))
    return out


# --------------------------------------------------------------------------- WebVTT

_VOICE_OPEN = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>]*))?>")
_ANY_TAG = re.compile(r"<[^>]*>")
_NOTE_BLOCK = re.compile(r"^NOTE\b(.*?)(?:\n[ \t]*\n|\Z)", re.M | re.S)


def _cue_text(raw: str) -> str:
    """Cue payload as plain speech: markup and noise tags gone, lines joined."""
    return _WS.sub(" ", html.unescape(_clean_speech(_ANY_TAG.sub(" ", raw)))).strip()


def _voice_segments(raw: str) -> list[tuple[str | None, str]]:
    """Split a cue's text at `<v Name>` spans (Teams/Meet); one segment per voice."""
    pieces = _VOICE_OPEN.split(raw)
    segments: list[tuple[str | None, str]] = []
    if pieces[0].strip():
        segments.append((None, pieces[0]))
    for i in range(1, len(pieces), 2):
        name = _WS.sub(" ", pieces[i] or "").strip() or None
        segments.append((name, pieces[i + 1]))
    return segments


def _parse_vtt(text: str, path: Path) -> _Parsed:
    import webvtt

    try:
        captions = webvtt.from_string(text).captions
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as err:
        raise TranscriptError(f"malformed WebVTT: {err}", path) from err
    voiced: list[_Raw] = []
    plain: list[tuple[float | None, str]] = []
    has_voice = False
    for caption in captions:
        start = _parse_clock(str(caption.start))
        for voice, body in _voice_segments(str(caption.raw_text)):
            has_voice = has_voice or voice is not None
            voiced.append(_raw(voice, start, _cue_text(body)))
            plain.append((start, _cue_text(body)))
    utterances = voiced if has_voice else _labelled_cues(plain)
    header = text.split("\n", 1)[0] + "\n" + "\n".join(m.group(1) for m in _NOTE_BLOCK.finditer(text))
    return _Parsed(utterances, header_date=_find_date(header))


# --------------------------------------------------------------------------- SRT


def _parse_srt(text: str, path: Path) -> _Parsed:
    import srt

    try:
        subtitles = list(srt.parse(text))
    except srt.SRTParseError as err:
        raise TranscriptError(f"malformed SRT subtitles: {err}", path) from err
    # srt folds a block it cannot parse into the previous cue's text; that is not speech.
    for sub in subtitles:
        if "-->" in str(sub.content):
            raise TranscriptError(f"malformed SRT subtitles: bad timing line after cue {sub.index}", path)
    cues = [(float(sub.start.total_seconds()), _cue_text(str(sub.content))) for sub in subtitles]
    return _Parsed(_labelled_cues(cues))


# --------------------------------------------------------------------------- JSON


def _json_speaker(value: object) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    label = str(value).strip()
    return label or None


def _whisper_segment(segment: dict[str, Any]) -> list[_Raw]:
    """One Whisper/whisperX segment; split where word-level diarisation changes speaker."""
    words = [w for w in segment.get("words") or [] if isinstance(w, dict) and isinstance(w.get("word"), str)]
    seg_speaker = _json_speaker(segment.get("speaker"))
    word_speakers = {_json_speaker(w.get("speaker")) for w in words} - {None}
    start = _as_seconds(segment.get("start"))
    text = segment.get("text")
    if len(word_speakers) <= 1 or not words:
        speaker = seg_speaker or next(iter(word_speakers), None)
        if not isinstance(text, str):
            text = " ".join(str(w["word"]).strip() for w in words)
        return [_raw(speaker, start, text)]
    out: list[_Raw] = []
    current = seg_speaker
    for word in words:
        current = _json_speaker(word.get("speaker")) or current
        if out and out[-1].speaker == current:
            out[-1].parts.append(str(word["word"]).strip())
        else:
            word_start = _as_seconds(word.get("start"))
            out.append(
                _raw(current, word_start if word_start is not None else start, str(word["word"]).strip())
            )
    return out


def _parse_json(data: object, path: Path) -> _Parsed:
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        items: list[object] = data["segments"]
        whisper = True
    elif isinstance(data, list):
        items = data
        whisper = False
    else:
        raise TranscriptError(
            "JSON is not a transcript (expected Whisper/whisperX 'segments' or a list of "
            "{speaker, start, text} objects)",
            path,
        )
    utterances: list[_Raw] = []
    for item in items:
        if not isinstance(item, dict) or not (isinstance(item.get("text"), str) or item.get("words")):
            raise TranscriptError("JSON transcript entry without a 'text' string", path)
        if whisper:
            utterances.extend(_whisper_segment(item))
        else:
            utterances.append(
                _raw(_json_speaker(item.get("speaker")), _as_seconds(item.get("start")), item["text"])
            )
    return _Parsed(utterances)


# --------------------------------------------------------------------------- text and markdown

_FRONTMATTER = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_HEADER_LINE = re.compile(
    r"^(?P<key>date|time|title|subject|meeting|attendees|participants|location|duration|"
    r"recorded(?: on)?|recording date)[ \t]*:[ \t]*(?P<value>.*)$",
    re.I,
)
_DATE_HEADER_KEYS = frozenset(("date", "time", "meeting", "recorded", "recorded on", "recording date"))
_MARKDOWN_NOISE = re.compile(r"^(?:#{1,6}[ \t].*|#{1,6}|[-*_][ \t]*(?:[-*_][ \t]*){2,})$")
_BOLD_LABEL = re.compile(r"^(\*\*|__)(?P<label>[^*_\n]{1,60}?)(?P<c1>:?)\1(?P<c2>:?)")
_ELITR = re.compile(r"^\((?P<label>[A-Z][A-Za-z0-9_]*(?:[ ][A-Za-z0-9_]+){0,3})\)[ \t]*(?P<text>.*)$")
_CLOCK = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_TIMESTAMP_LINE = re.compile(
    rf"^(?:[\[(](?P<ts1>{_CLOCK})[\])]|(?P<ts2>\d{{1,2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,3}})?))"
    r"[ \t]*(?:[-–—|][ \t]*)?(?P<rest>.*)$"
)
_OTTER_HEADER = re.compile(
    rf"^(?:\[(?P<name1>[^\]\n]{{1,60}})\]|(?P<name2>[^\W\d][^\n:]{{0,58}}?))[ \t]+(?P<ts>{_CLOCK})[ \t]*$"
)


def _split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    m = _FRONTMATTER.match(text)
    if m is None:
        return {}, text
    import yaml  # only for a transcript with frontmatter

    try:
        data = yaml.safe_load(m["yaml"])
    except yaml.YAMLError:
        data = None
    return (data if isinstance(data, dict) else {}), text[m.end() :]


def _paragraphs(lines: Iterable[tuple[float | None, str]]) -> list[_Raw]:
    """Speaker-less text: blank lines separate utterances."""
    out: list[_Raw] = []
    open_paragraph = False
    for start, line in lines:
        if not line.strip():
            open_paragraph = False
        elif open_paragraph:
            out[-1].parts.append(line)
        else:
            out.append(_raw(None, start, line))
            open_paragraph = True
    return out


def _parse_otter(lines: Sequence[str]) -> list[_Raw]:
    """Otter/Zoom text exports: a `Name  00:01:23` header, then that speaker's lines."""
    out: list[_Raw] = []
    prelude: list[tuple[float | None, str]] = []
    for line in lines:
        m = _OTTER_HEADER.match(line.strip())
        if m is not None:
            name = _WS.sub(" ", m["name1"] or m["name2"]).strip()
            out.append(_Raw(name, _parse_clock(m["ts"])))
        elif out:
            out[-1].parts.append(line)
        else:
            prelude.append((None, line))
    return _paragraphs(prelude) + out


def _parse_text_body(body: str) -> _Parsed:
    """Plain text and markdown: `Speaker: text`, `[00:01:23] Speaker: text`, ELITR, Otter, or prose."""
    lines: list[str] = []
    header_date: dt.date | None = None
    in_header = True
    for line in body.split("\n"):
        stripped = _clean_speech(line)
        if in_header and stripped:
            header = _HEADER_LINE.match(stripped)
            if header is None:
                in_header = False
            else:
                if header_date is None and header["key"].lower() in _DATE_HEADER_KEYS:
                    header_date = _find_date(header["value"])
                continue
        if _MARKDOWN_NOISE.match(stripped):
            lines.append("")
            continue
        bold = stripped.startswith(("**", "__"))  # the regex only matches there: most lines skip it
        lines.append(_BOLD_LABEL.sub(r"\g<label>\g<c1>\g<c2>", stripped) if bold else stripped)
    nonempty = [line for line in lines if line]
    total = len(nonempty)

    otter = sum(1 for line in nonempty if _OTTER_HEADER.match(line))
    if otter >= 2 and otter >= 0.15 * total and otter < total:
        return _Parsed(_parse_otter(lines), header_date=header_date)

    timed = sum(1 for line in nonempty if _TIMESTAMP_LINE.match(line))
    entries: list[tuple[float | None, str]] = []
    for line in lines:
        m = _TIMESTAMP_LINE.match(line) if timed >= max(2, 0.3 * total) else None
        entries.append((_parse_clock(m["ts1"] or m["ts2"]), m["rest"].strip()) if m else (None, line))

    elitr = [_ELITR.match(text) for _, text in entries]
    labels = [_split_label(text, _TEXT_LABEL, 40) if text else (None, "") for _, text in entries]
    accepted = _accepted_labels([label for label, _ in labels], total, lenient=False)
    label_hits = sum(1 for label, _ in labels if label in accepted)
    elitr_counts = Counter(m["label"] for m in elitr if m)
    elitr_hits = sum(elitr_counts.values())
    if elitr_hits >= 2 and elitr_hits > label_hits and any(n >= 2 for n in elitr_counts.values()):
        split = [
            (m["label"], m["text"]) if m else (None, text)
            for m, (_, text) in zip(elitr, entries, strict=True)
        ]
    elif label_hits:
        split = [
            (label, rest) if label in accepted else (None, text)
            for (label, rest), (_, text) in zip(labels, entries, strict=True)
        ]
    else:
        if timed >= max(2, 0.3 * total):
            return _Parsed(
                [_raw(None, start, text) for start, text in entries if text], header_date=header_date
            )
        return _Parsed(_paragraphs(entries), header_date=header_date)

    out: list[_Raw] = []
    prelude: list[tuple[float | None, str]] = []
    for (start, _), (speaker, text) in zip(entries, split, strict=True):
        if speaker is not None:
            out.append(_raw(speaker, start, text))
        elif out:
            # A line without a label continues the previous speaker (wrapped lines, ELITR).
            out[-1].parts.append(text)
        else:
            prelude.append((start, text))
    return _Parsed(_paragraphs(prelude) + out, header_date=header_date)


# --------------------------------------------------------------------------- detection and assembly

_SRT_START = re.compile(r"\A\s*(?:\d+[ \t]*\n)?[ \t]*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}[ \t]*-->")


def _parse_content(text: str, path: Path) -> _Parsed:
    """Pick the parser from what the text looks like, not from the file extension."""
    head = text.lstrip()
    if head.startswith("WEBVTT"):
        return _parse_vtt(head, path)
    if _SRT_START.match(text):
        return _parse_srt(text, path)
    if head[:1] in "[{":
        try:
            data = json.loads(head)
        except json.JSONDecodeError:
            pass  # `[00:01:23] Speaker: text` or `{vocalsound} ...`: it is text
        else:
            return _parse_json(data, path)
    meta, body = _split_frontmatter(text)
    parsed = _parse_text_body(body)
    parsed.meta = meta
    return parsed


def _finish(raw: Iterable[_Raw]) -> list[Utterance]:
    """Clean noise, drop what is left empty, merge consecutive turns of one named speaker."""
    out: list[Utterance] = []
    speakers: dict[str, str | None] = {}
    for item in raw:
        text = _clean_speech(" ".join(item.parts))
        if not _WORD.search(text):
            continue
        speaker = None
        if item.speaker:
            if item.speaker not in speakers:  # a meeting's few speakers name most of its turns
                speakers[item.speaker] = _clean_speech(item.speaker) or None
            speaker = speakers[item.speaker]
        if out and speaker is not None and out[-1].speaker == speaker:
            out[-1].text += " " + text
        else:
            out.append(Utterance(speaker=speaker, start=item.start, text=text))
    return out


def _meta_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return _find_date(value)
    return None


_WIKILINK = re.compile(r"^\[\[(?:[^\]|]*\|)?([^\]|]+)\]\]$")


def _meta_names(value: object) -> list[str]:
    """Participants from frontmatter: a list or a comma-separated string; `[[Name]]` links unwrapped."""
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list):
        items = value
    else:
        return []
    names: list[str] = []
    for item in items:
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            name = str(item).strip()
            name = _WIKILINK.sub(r"\1", name).strip()
            if name:
                names.append(name)
    return names


def _dedupe(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.casefold(), name)
    return list(seen.values())


_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(mode: int) -> str | None:
    """What a file of this mode is, when it is not a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _NOT_REGULAR if test(mode)), "not a regular file")


def check_input_file(
    path: Path, error: type[SummarizerError] = TranscriptError, what: str = "a transcript file"
) -> None:
    """Refuse at once, without opening it, anything but an existing regular file we may read.

    A FIFO or device would block a reader forever, a directory cannot be read: each gets one
    line naming the file (as `error`, so a command may make it a usage error).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error("no such file", path) from None
    except OSError as err:
        raise error(f"cannot read file: {err.strerror or err}", path) from None
    kind = _not_regular(mode)
    if kind is not None:
        raise error(f"is {kind}, not {what}", path)
    if not os.access(path, os.R_OK):
        raise error("cannot read file: Permission denied", path)


def _read_bytes(path: Path) -> bytes:
    check_input_file(path)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it cannot block.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise TranscriptError("no such file", path) from None
    except OSError as err:
        raise TranscriptError(f"cannot read file: {err.strerror or err}", path) from None
    with open(fd, "rb") as handle:
        try:
            info = os.fstat(handle.fileno())
            kind = _not_regular(info.st_mode)
            if kind is not None:
                raise TranscriptError(f"is {kind}, not a transcript file", path)
            if info.st_size > MAX_TRANSCRIPT_BYTES:
                raise TranscriptError(
                    f"file is too large to be a transcript ({info.st_size:,} bytes; limit {MAX_TRANSCRIPT_BYTES:,})",
                    path,
                )
            data = handle.read(MAX_TRANSCRIPT_BYTES + 1)
        except OSError as err:
            raise TranscriptError(f"cannot read file: {err.strerror or err}", path) from err
    if len(data) > MAX_TRANSCRIPT_BYTES:
        raise TranscriptError(f"file is too large to be a transcript (limit {MAX_TRANSCRIPT_BYTES:,} bytes)", path)
    return data


def read_transcript(path: Path, *, date: dt.date | None = None) -> Transcript:
    """Read one transcript file into a `Transcript`, or refuse it with a `TranscriptError`.

    The meeting date comes from, in order: frontmatter `date`, the file name,
    the file's own header (`Date: ...`, a VTT NOTE), then `date` (the CLI's
    `--date` fallback). It stays None when unknown: guessing today would file
    an old meeting under the wrong day.
    """
    path = Path(path)
    text = decode_transcript_bytes(_read_bytes(path), path)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    if not text.strip():
        raise TranscriptError("file is empty (only whitespace)", path)
    parsed = _parse_content(text, path)
    utterances = _finish(parsed.utterances)
    if not utterances:
        raise TranscriptError("no speech found (nothing left after removing noise tags and markup)", path)

    meta = parsed.meta
    meeting_date = _meta_date(meta.get("date")) or _date_from_name(path.name) or parsed.header_date or date
    title = meta.get("title")
    if not (isinstance(title, str) and title.strip()):
        m = _NAME_TITLE.match(path.stem)
        title = m["title"] if m else None
    speakers = [u.speaker for u in utterances if u.speaker]
    participants = _dedupe(
        [*_meta_names(meta.get("participants")), *_meta_names(meta.get("attendees")), *speakers]
    )
    return Transcript(
        utterances=utterances,
        date=meeting_date,
        title=title.strip() if isinstance(title, str) else None,
        participants=participants,
        source_name=path.stem,
    )
