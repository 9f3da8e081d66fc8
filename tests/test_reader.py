"""Tests for `summarizer.reader`: formats, encodings, refusals and metadata.

Corpus files under tests/data/corpus are real third-party transcripts (see
ATTRIBUTION.md there); every other fixture is written by hand in this file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summarizer import reader
from summarizer.errors import TranscriptError
from summarizer.models import Transcript, Utterance
from summarizer.reader import decode_transcript_bytes, read_transcript, repair_mojibake

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
SEED = DATA / "seed"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def read_text(tmp_path: Path, content: str, name: str = "meeting.txt") -> Transcript:
    return read_transcript(write(tmp_path, name, content))


def pairs(t: Transcript) -> list[tuple[str | None, str]]:
    return [(u.speaker, u.text) for u in t.utterances]


def normalised_words(t: Transcript) -> list[str]:
    """Words of all utterances, case-folded, punctuation dropped (formats differ only in layout)."""
    joined = " ".join(u.text for u in t.utterances).casefold()
    return re.sub(r"[^\w'\s-]", " ", joined).split()


# --------------------------------------------------------------------------- real corpus


def test_ami_is1001a_three_renderings_yield_the_same_words() -> None:
    vtt = read_transcript(CORPUS / "ami_IS1001a.teams-style.vtt")
    srt = read_transcript(CORPUS / "ami_IS1001a.whisper-style.srt")
    wx = read_transcript(CORPUS / "ami_IS1001a.whisperx-style.json")
    words = normalised_words(vtt)
    assert len(words) == 1790  # the corpus README's word count for this meeting
    assert normalised_words(srt) == words
    assert normalised_words(wx) == words
    assert [u.start for u in (vtt.utterances[0], srt.utterances[0], wx.utterances[0])] == [14.48] * 3


def test_teams_vtt_gives_voice_names_and_merges_consecutive_cues() -> None:
    t = read_transcript(CORPUS / "ami_IS1001a.teams-style.vtt")
    assert t.speakers() == [
        "User Interface Designer",
        "Project Manager",
        "Industrial Designer",
        "Marketing Expert",
    ]
    assert t.participants == t.speakers()
    # Cues 5..11 are all the Project Manager: one utterance starting at cue 5.
    pm = t.utterances[3]
    assert pm.speaker == "Project Manager"
    assert pm.start == pytest.approx(78.74)
    assert pm.text.startswith("Is recorded? Okay? Okay so welcome everyone. So we are here")
    assert pm.text.endswith("to complete this process. So")
    assert all(a.speaker != b.speaker for a, b in zip(t.utterances, t.utterances[1:], strict=False))
    assert not any("<" in u.text or ">" in u.text for u in t.utterances)


def test_whisper_srt_has_no_speakers() -> None:
    t = read_transcript(CORPUS / "ami_IS1001a.whisper-style.srt")
    assert t.speakers() == []
    assert t.participants == []
    assert len(t.utterances) == 236  # one per cue: nothing to merge on
    assert t.utterances[1] == Utterance(speaker=None, start=21.01, text="Hmm. Mm mm mm.")


def test_whisperx_keeps_diarisation_labels() -> None:
    t = read_transcript(CORPUS / "ami_IS1001a.whisperx-style.json")
    assert t.speakers() == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03"]
    assert t.participants == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03"]
    assert t.utterances[0] == Utterance(speaker="SPEAKER_00", start=14.48, text="How do you wear this thing?")


def test_zoom_vtt_speakers_are_display_names() -> None:
    t = read_transcript(CORPUS / "zoom_ethereum_rpcstandards_2026-08-10_032.vtt")
    assert t.speakers() == ["Boma", "Chase Wright", "lightclient"]
    assert t.utterances[0] == Utterance(speaker="Boma", start=104.19, text="Hello? Hello?")
    assert t.utterances[1].speaker == "Chase Wright"
    assert not any(u.text.startswith(("Boma:", "Chase Wright:")) for u in t.utterances)
    assert t.date == dt.date(2026, 8, 10)
    assert t.title is None
    assert t.source_name == "zoom_ethereum_rpcstandards_2026-08-10_032"


def test_ami_text_drops_noise_tags_and_noise_only_lines() -> None:
    t = read_transcript(CORPUS / "ami_ES2008a.txt")
    assert t.speakers() == ["Marketing", "Project Manager", "Industrial Designer", "User Interface"]
    # Lines 1-3 are only `{vocalsound}`; line 4 is `Marketing: {vocalsound} Hmm .`
    assert t.utterances[0] == Utterance(speaker="Marketing", start=None, text="Hmm .")
    assert not any("{" in u.text or "  " in u.text for u in t.utterances)
    assert t.date is None


# --------------------------------------------------------------------------- mojibake and encodings


def test_seed_note_mac_roman_mojibake_is_repaired_exactly() -> None:
    original = (SEED / "original-note.md").read_text(encoding="utf-8")
    note = (SEED / "note.md").read_text(encoding="utf-8")
    assert original != note
    assert repair_mojibake(original) == note
    assert repair_mojibake(note) == note
    assert (
        decode_transcript_bytes((SEED / "original-note.md").read_bytes(), SEED / "original-note.md") == note
    )


@pytest.mark.parametrize(
    "clean",
    [
        "José Müller: Grüße aus Köln, naïve café.",
        "Łukasz Rozmej and Toni Wahrstätter 😀 📅 2025-10-26 🔺 ⏫",
        "会议纪要：下周一发布。 日本語のテキスト",
        "“Curly quotes”, it’s — fine… «École» “Äpfel” „Übersicht“ ﬁne ½ €5",
        "Straße, Bjørn Æsir, Ωmega, Привет, שלום",
        "tabs\tand\r\nCRLF lines\n",
    ],
)
def test_clean_text_comes_through_unchanged(clean: str) -> None:
    assert repair_mojibake(clean) == clean


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("JosÃ© MÃ¼ller said itâ€™s fine", "José Müller said it’s fine"),  # UTF-8 read as cp1252
        ("Jos√© said it‚Äôs fine \uf8ffüìÖ", "José said it’s fine 📅"),  # UTF-8 read as Mac Roman
        ("Toni Wahrst√§tter", "Toni Wahrstätter"),  # ftfy alone leaves this one
    ],
)
def test_mojibake_is_repaired(broken: str, fixed: str) -> None:
    assert repair_mojibake(broken) == fixed


_WORDS = st.sampled_from(
    [
        "the",
        "Plan",
        "José",
        "Müller",
        "café",
        "naïve",
        "Straße",
        "Bjørn",
        "Æsir",
        "Wahrstätter",
        "it’s",
        "“quoted”",
        "—",
        "…",
        "€5",
        "📅",
        "🎉",
        "🔺",
        "⏫",
        "会议",
        "纪要",
        "Łukasz",
        "señor",
        "Ça",
        "2025-10-26",
    ]
)
_SEPARATORS = st.sampled_from([" ", "\n", ", ", ": "])


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.tuples(_WORDS, _SEPARATORS), max_size=12))
def test_mac_roman_round_trip_is_undone_and_clean_text_kept(tokens: list[tuple[str, str]]) -> None:
    text = "".join(word + sep for word, sep in tokens)
    assert repair_mojibake(text) == text
    assert repair_mojibake(text.encode("utf-8").decode("mac_roman")) == text


ENCODED_TEXT = "Anaïs Müller: Voilà, the café’s budget is €5.\nBob Smith: Noted.\n"


@pytest.mark.parametrize(
    "data",
    [
        ENCODED_TEXT.encode("utf-8"),
        b"\xef\xbb\xbf" + ENCODED_TEXT.encode("utf-8"),
        ENCODED_TEXT.encode("utf-16"),  # with BOM, native order
        b"\xff\xfe" + ENCODED_TEXT.encode("utf-16-le"),
        b"\xfe\xff" + ENCODED_TEXT.encode("utf-16-be"),
        ENCODED_TEXT.encode("utf-16-le"),  # no BOM: recognised from its NUL pattern
        ENCODED_TEXT.encode("cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "utf16le-bom", "utf16be-bom", "utf16le-nobom", "cp1252"],
)
def test_encodings_are_decoded(tmp_path: Path, data: bytes) -> None:
    t = read_transcript(write(tmp_path, "m.txt", data))
    assert pairs(t) == [
        ("Anaïs Müller", "Voilà, the café’s budget is €5."),
        ("Bob Smith", "Noted."),
    ]


def test_latin1_is_decoded(tmp_path: Path) -> None:
    text = "Ana: Ça coûte 5 ½ francs, señor.\nBob: Très bien.\n"
    t = read_transcript(write(tmp_path, "m.txt", text.encode("latin-1")))
    assert pairs(t) == [("Ana", "Ça coûte 5 ½ francs, señor."), ("Bob", "Très bien.")]


def test_mojibake_in_a_transcript_is_repaired(tmp_path: Path) -> None:
    broken = "Jos√© M√ºller: it‚Äôs done \uf8ffüìÖ\nAnn: ok\n"
    t = read_transcript(write(tmp_path, "m.txt", broken))
    assert pairs(t) == [("José Müller", "it’s done 📅"), ("Ann", "ok")]


# --------------------------------------------------------------------------- refusals


def assert_refused(path: Path, reason: str) -> None:
    with pytest.raises(TranscriptError) as info:
        read_transcript(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert reason in message


def test_refuses_binary_file(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4
    assert_refused(write(tmp_path, "photo.txt", png), "binary")


def test_refuses_control_garbage_without_nul_bytes(tmp_path: Path) -> None:
    assert_refused(write(tmp_path, "blob.txt", bytes(range(1, 32)) * 20 + b"hello"), "cannot be decoded")


def test_refuses_empty_file(tmp_path: Path) -> None:
    assert_refused(write(tmp_path, "empty.txt", b""), "empty")


def test_refuses_whitespace_only_file(tmp_path: Path) -> None:
    assert_refused(write(tmp_path, "blank.md", "\n  \n\t\n"), "empty")


def test_refuses_file_with_only_noise(tmp_path: Path) -> None:
    noise = "Marketing: {vocalsound}\nProject Manager: {disfmarker} {gap}\n<other_noise/>\n"
    assert_refused(write(tmp_path, "noise.txt", noise), "no speech")


def test_refuses_vtt_without_cues(tmp_path: Path) -> None:
    assert_refused(write(tmp_path, "m.vtt", "WEBVTT\n\nNOTE nothing was said\n"), "no speech")


def test_refuses_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_TRANSCRIPT_BYTES", 100)
    assert_refused(write(tmp_path, "big.txt", "Ann: hello there\n" * 10), "too large")


def test_default_size_limit_is_twenty_megabytes() -> None:
    assert reader.MAX_TRANSCRIPT_BYTES == 20 * 1024 * 1024


def test_refuses_missing_file(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nope.txt", "no such file")


def test_refuses_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    assert_refused(tmp_path / "folder.txt", "directory")


def test_refuses_json_that_is_not_a_transcript(tmp_path: Path) -> None:
    assert_refused(
        write(tmp_path, "config.json", '{"model": "gpt", "temperature": 0}'), "JSON is not a transcript"
    )


def test_refuses_malformed_srt(tmp_path: Path) -> None:
    bad = "1\n00:00:01,000 --> 00:00:02,000\nAnn: hi\n\n2\n00:00:xx,000 --> nonsense\nBob: yo\n"
    assert_refused(write(tmp_path, "m.srt", bad), "malformed SRT")


def test_decode_refuses_nul_bytes_with_path() -> None:
    with pytest.raises(TranscriptError, match=r"^x/y\.txt: .*binary"):
        decode_transcript_bytes(b"abc\x00\x00\x00\x01def", Path("x/y.txt"))


# --------------------------------------------------------------------------- text formats


def test_speaker_labels_with_spaces(tmp_path: Path) -> None:
    text = (
        "Project Manager: Let's start.\n"
        "PhD A: The front end is ready.\n"
        "Kirsty Williams AM: Thank you, Chair.\n"
        "Project Manager: Good.\n"
        "PhD A: Yes.\n"
        "Kirsty Williams AM: Indeed.\n"
    )
    t = read_text(tmp_path, text)
    assert t.speakers() == ["Project Manager", "PhD A", "Kirsty Williams AM"]
    assert pairs(t)[2] == ("Kirsty Williams AM", "Thank you, Chair.")


def test_prose_and_urls_are_not_speakers(tmp_path: Path) -> None:
    text = (
        "Alice: We ship on Friday.\n"
        "Note: this is only a draft plan.\n"
        "https://example.com/plan is the link.\n"
        "Bob: Agreed.\n"
        "Alice: Then that's settled.\n"
        "Bob: Good.\n"
    )
    t = read_text(tmp_path, text)
    assert t.speakers() == ["Alice", "Bob"]
    assert t.utterances[0] == Utterance(
        speaker="Alice",
        text="We ship on Friday. Note: this is only a draft plan. https://example.com/plan is the link.",
    )


def test_prose_with_colons_and_no_dialogue_is_plain_text(tmp_path: Path) -> None:
    text = "Note: the budget was approved.\n\nThe plan is simple: ship it.\n"
    t = read_text(tmp_path, text)
    assert pairs(t) == [(None, "Note: the budget was approved."), (None, "The plan is simple: ship it.")]


def test_single_turn_speaker_in_a_dialogue_is_kept(tmp_path: Path) -> None:
    text = "Lynne Neagle AM: Welcome.\nRob Orford: Thanks.\nLynne Neagle AM: Next.\nHuw Morris: Yes.\n"
    t = read_text(tmp_path, text)
    assert t.speakers() == ["Lynne Neagle AM", "Rob Orford", "Huw Morris"]


def test_otter_export(tmp_path: Path) -> None:
    text = (
        "Weekly sync\n\n"
        "Jason Vallery  0:03\nSo the offer came in.\nIt is complicated.\n\n"
        "Jai Menon  1:15\nTell me more.\n\n"
        "Jason Vallery  1:02:07\nLater.\n"
    )
    t = read_text(tmp_path, text)
    assert t.utterances == [
        Utterance(speaker=None, start=None, text="Weekly sync"),
        Utterance(speaker="Jason Vallery", start=3.0, text="So the offer came in. It is complicated."),
        Utterance(speaker="Jai Menon", start=75.0, text="Tell me more."),
        Utterance(speaker="Jason Vallery", start=3727.0, text="Later."),
    ]


def test_zoom_text_export_with_bracketed_names(tmp_path: Path) -> None:
    text = "[Jai Menon] 00:01:23\nHello there.\n\n[Jason Vallery] 00:01:30\nHi.\n"
    t = read_text(tmp_path, text)
    assert t.utterances == [
        Utterance(speaker="Jai Menon", start=83.0, text="Hello there."),
        Utterance(speaker="Jason Vallery", start=90.0, text="Hi."),
    ]


def test_bracketed_timestamps(tmp_path: Path) -> None:
    text = (
        "[00:01:23] Alice Smith: Hello.\n[00:01:30] Bob: Hi.\n"
        "[00:02:00] Alice Smith: Bye.\n[00:02:05] Bob: Ok.\n"
    )
    t = read_text(tmp_path, text)
    assert t.utterances[:2] == [
        Utterance(speaker="Alice Smith", start=83.0, text="Hello."),
        Utterance(speaker="Bob", start=90.0, text="Hi."),
    ]
    assert len(t.utterances) == 4


def test_timestamps_without_speakers(tmp_path: Path) -> None:
    t = read_text(tmp_path, "[00:00:05] Hello there.\n[00:00:09] Yes, hello.\n")
    assert t.utterances == [
        Utterance(speaker=None, start=5.0, text="Hello there."),
        Utterance(speaker=None, start=9.0, text="Yes, hello."),
    ]


def test_elitr_style_with_continuation_lines(tmp_path: Path) -> None:
    text = (
        "(PERSON3) Hello, <other_noise/> can you hear me?\n"
        "This line continues person three.\n"
        "(PERSON7) Yes [PERSON3], loud and clear.\n"
        "(PERSON3) Good.\n"
    )
    t = read_text(tmp_path, text)
    assert pairs(t) == [
        ("PERSON3", "Hello, can you hear me? This line continues person three."),
        ("PERSON7", "Yes [PERSON3], loud and clear."),
        ("PERSON3", "Good."),
    ]


def test_plain_text_paragraphs(tmp_path: Path) -> None:
    text = "We discussed the budget.\nIt was tight.\n\n\nThen we talked about hiring.\n"
    t = read_text(tmp_path, text)
    assert pairs(t) == [
        (None, "We discussed the budget. It was tight."),
        (None, "Then we talked about hiring."),
    ]
    assert t.participants == []


def test_markdown_with_frontmatter(tmp_path: Path) -> None:
    text = (
        "---\n"
        "title: Offer discussion\n"
        "date: 2025-10-06\n"
        "participants:\n  - '[[Jai Menon]]'\n  - Jason Vallery\n"
        "attendees: Maneesh Sah\n"
        "---\n"
        "# Transcript\n\n"
        "**Jason Vallery:** I have two offers.\n"
        "**Jai Menon**: Which one?\n"
        "**Alex Doe:** Hi.\n"
    )
    t = read_text(tmp_path, text, name="notes.md")
    assert t.title == "Offer discussion"
    assert t.date == dt.date(2025, 10, 6)
    assert t.participants == ["Jai Menon", "Jason Vallery", "Maneesh Sah", "Alex Doe"]
    assert pairs(t) == [
        ("Jason Vallery", "I have two offers."),
        ("Jai Menon", "Which one?"),
        ("Alex Doe", "Hi."),
    ]


def test_broken_frontmatter_is_skipped_not_spoken(tmp_path: Path) -> None:
    text = "---\ntitle: [unclosed\n---\nAnn: hello\nBob: hi\nAnn: bye\n"
    t = read_text(tmp_path, text, name="m.md")
    assert t.title is None
    assert pairs(t) == [("Ann", "hello"), ("Bob", "hi"), ("Ann", "bye")]


def test_noise_tags_removed_and_whitespace_collapsed(tmp_path: Path) -> None:
    text = (
        "Ann: {vocalsound} So {disfmarker} the {gap} plan {pause} is {nonvocalsound}"
        " {cough} good <laugh/> .\n"
        "Bob: {vocalsound}\n"
        "Ann: <other_noise/> Right.\n"
        "Bob: Yes.\n"
    )
    t = read_text(tmp_path, text)
    # Bob's noise-only line is dropped, so Ann's two lines become one utterance.
    assert pairs(t) == [("Ann", "So the plan is good . Right."), ("Bob", "Yes.")]


# --------------------------------------------------------------------------- WebVTT and SRT


def test_teams_vtt_with_settings_notes_multiline_and_entities(tmp_path: Path) -> None:
    text = (
        "WEBVTT\n\n"
        "NOTE Recorded on 6 October 2025\nwith Teams\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "a1b2-1\n00:00:01.500 --> 00:00:03.000 align:start position:10%\n"
        "<v Jai Menon>Hello &amp; welcome,\nthis is <i>line two</i>.</v>\n\n"
        "a1b2-2\n00:00:03.000 --> 00:00:04.000\n<v Jai Menon>Still me.</v>\n\n"
        "NOTE a mid-file comment\n\n"
        "00:01:02.000 --> 00:01:05.000\n<v.loud Jason Vallery>Hi {vocalsound} Jai.</v>\n"
    )
    t = read_text(tmp_path, text, name="meeting.vtt")
    assert t.utterances == [
        Utterance(speaker="Jai Menon", start=1.5, text="Hello & welcome, this is line two . Still me."),
        Utterance(speaker="Jason Vallery", start=62.0, text="Hi Jai."),
    ]
    assert t.date == dt.date(2025, 10, 6)


def test_vtt_cue_with_two_voices(tmp_path: Path) -> None:
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Ann>Ready?</v>\n<v Bob>Yes.</v>\n"
    t = read_text(tmp_path, text, name="m.vtt")
    assert pairs(t) == [("Ann", "Ready?"), ("Bob", "Yes.")]


def test_zoom_vtt_labels_multiline_and_lowercase_names(tmp_path: Path) -> None:
    text = (
        "WEBVTT\n\n"
        "1\n00:00:01.000 --> 00:00:02.000\nlightclient: so the time is: now\nand more\n\n"
        "2\n00:00:03.000 --> 00:00:04.000\nChris - Base: Yep.\n\n"
        "3\n00:00:05.000 --> 00:00:06.000\nlightclient: ok\n"
    )
    t = read_text(tmp_path, text, name="m.vtt")
    assert t.utterances == [
        Utterance(speaker="lightclient", start=1.0, text="so the time is: now and more"),
        Utterance(speaker="Chris - Base", start=3.0, text="Yep."),
        Utterance(speaker="lightclient", start=5.0, text="ok"),
    ]


def test_vtt_detected_from_content_not_extension(tmp_path: Path) -> None:
    text = "\ufeffWEBVTT\r\n\r\n00:00:01.000 --> 00:00:02.000\r\n<v Ann>Hi.</v>\r\n"
    t = read_text(tmp_path, text, name="export.txt")
    assert t.utterances == [Utterance(speaker="Ann", start=1.0, text="Hi.")]


def test_srt_with_speaker_prefixes(tmp_path: Path) -> None:
    text = (
        "1\n00:00:01,000 --> 00:00:02,000\nAnn Lee: Hello,\n<i>everyone</i>.\n\n"
        "2\n00:00:02,500 --> 00:00:03,000\nAnn Lee: Shall we?\n\n"
        "3\n00:01:00,250 --> 00:01:02,000\n{\\an8}Bob: Yes.\n"
    )
    t = read_text(tmp_path, text, name="subs.srt")
    assert t.utterances == [
        Utterance(speaker="Ann Lee", start=1.0, text="Hello, everyone . Shall we?"),
        Utterance(speaker="Bob", start=60.25, text="Yes."),
    ]


def test_srt_without_speakers_detected_from_content(tmp_path: Path) -> None:
    text = (
        "1\n00:00:01,000 --> 00:00:02,000\nHello.\n\n2\n00:00:03,000 --> 00:00:04,000\nBottom line: ship.\n"
    )
    t = read_text(tmp_path, text, name="whisper.txt")
    assert t.utterances == [
        Utterance(speaker=None, start=1.0, text="Hello."),
        Utterance(speaker=None, start=3.0, text="Bottom line: ship."),
    ]


# --------------------------------------------------------------------------- JSON


def test_whisper_json_without_speakers(tmp_path: Path) -> None:
    text = '{"text": "x", "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": " Hello there."}]}'
    t = read_text(tmp_path, text, name="w.json")
    assert t.utterances == [Utterance(speaker=None, start=0.0, text="Hello there.")]


def test_whisperx_segment_split_where_word_speakers_change(tmp_path: Path) -> None:
    text = (
        '{"segments": [{"start": 1.0, "end": 3.0, "text": "Yes no", "words": ['
        '{"word": "Yes", "start": 1.0, "speaker": "SPEAKER_01"},'
        '{"word": "no", "start": 2.0, "speaker": "SPEAKER_00"}]}]}'
    )
    t = read_text(tmp_path, text, name="wx.json")
    assert t.utterances == [
        Utterance(speaker="SPEAKER_01", start=1.0, text="Yes"),
        Utterance(speaker="SPEAKER_00", start=2.0, text="no"),
    ]


def test_plain_json_list(tmp_path: Path) -> None:
    text = (
        '[{"speaker": "Ann", "start": 1.5, "text": "Hi."},'
        ' {"speaker": "Ann", "start": "00:00:03", "text": "Again."},'
        ' {"speaker": null, "text": "{vocalsound}"},'
        ' {"speaker": "Bob", "start": 7, "text": "Hello."}]'
    )
    t = read_text(tmp_path, text, name="list.json")
    assert t.utterances == [
        Utterance(speaker="Ann", start=1.5, text="Hi. Again."),
        Utterance(speaker="Bob", start=7.0, text="Hello."),
    ]


def test_text_starting_with_brace_is_not_json(tmp_path: Path) -> None:
    t = read_text(tmp_path, "{vocalsound} Ann: hello\nAnn: again\n")
    assert pairs(t) == [("Ann", "hello again")]


# --------------------------------------------------------------------------- metadata


NAME = "2025-10-06 - Jason updated Jai that he has a complex, high-variance offer from VAST and an ex.md"


def test_metadata_from_file_name(tmp_path: Path) -> None:
    t = read_text(tmp_path, "Jason: hi\nJai: hello\n", name=NAME)
    assert t.date == dt.date(2025, 10, 6)
    assert t.title == "Jason updated Jai that he has a complex, high-variance offer from VAST and an ex"
    assert t.source_name == NAME.removesuffix(".md")
    assert t.participants == ["Jason", "Jai"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("20251006 call.txt", dt.date(2025, 10, 6)), ("call_2025_10_07.txt", dt.date(2025, 10, 7))],
)
def test_compact_dates_in_file_name(tmp_path: Path, name: str, expected: dt.date) -> None:
    assert read_text(tmp_path, "Ann: hi\n", name=name).date == expected


def test_frontmatter_date_beats_file_name(tmp_path: Path) -> None:
    text = "---\ndate: '2025-10-07'\n---\nAnn: hi\n"
    assert read_text(tmp_path, text, name=NAME).date == dt.date(2025, 10, 7)


def test_file_name_date_beats_header_date(tmp_path: Path) -> None:
    assert read_text(tmp_path, "Date: 2025-01-01\nAnn: hi\n", name="2025-10-06 x.txt").date == dt.date(
        2025, 10, 6
    )


@pytest.mark.parametrize("header", ["Date: 6 October 2025", "Date: October 6, 2025", "date: 2025/10/06"])
def test_header_date_beats_argument_and_is_not_speech(tmp_path: Path, header: str) -> None:
    t = read_transcript(write(tmp_path, "m.txt", f"{header}\nAnn: hi\nBob: yo\n"), date=dt.date(2000, 1, 1))
    assert t.date == dt.date(2025, 10, 6)
    assert pairs(t) == [("Ann", "hi"), ("Bob", "yo")]


def test_date_argument_is_only_a_fallback(tmp_path: Path) -> None:
    path = write(tmp_path, "m.txt", "Ann: hi\n")
    assert read_transcript(path, date=dt.date(2024, 2, 29)).date == dt.date(2024, 2, 29)
    assert read_transcript(path).date is None  # never today's date
    dated = write(tmp_path, "2025-10-06 - x.txt", "Ann: hi\n")
    assert read_transcript(dated, date=dt.date(2024, 2, 29)).date == dt.date(2025, 10, 6)


def test_no_title_without_frontmatter_or_description(tmp_path: Path) -> None:
    assert read_text(tmp_path, "Ann: hi\n", name="2025-10-06.txt").title is None
