"""Linking names from a meeting to vault notes: confident links only, never a guess."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summarizer.linking import (
    MYSELF,
    Candidate,
    LinkResult,
    candidates_for_prompt,
    format_explain,
    link_extraction,
    normalise_name,
    phonetic_key,
    resolve,
    slugify,
    stub_frontmatter,
    stub_text,
)
from summarizer.models import ActionItem, Entity, MeetingExtraction, Transcript, Utterance
from summarizer.vault_index import IndexedNote, VaultIndex

OLD = time.time() - 86_400

NOTES = {
    "People/Jai Menon.md": "---\ntype: person\n---\n",
    "People/Maneesh Sah.md": "---\ntype: person\naliases: [Maneesh]\n---\n",
    "People/Ronen Cohen.md": "---\ntype: person\n---\n",
    "People/Jeff Denworth.md": "---\ntype: person\n---\n",
    "People/Jason Vallery.md": "---\ntype: person\n---\n",
    "People/Jason Bourne.md": "",
    "People/José Müller.md": "---\ntype: person\n---\n",
    "People/Ann [Ops].md": "",
    "Companies/VAST.md": "---\ntype: company\naliases: [VAST Data]\n---\n",
    "Companies/Microsoft.md": "---\ntype: company\n---\n",
    "Companies/OpenAI.md": "---\ntype: company\n---\n",
    "Meetings/2025-10-06 Jason offer decision.md": "---\ntype: people\nparticipants: [Jai Menon]\n---\n",
    "Inbox/Crusoe.md": "",
}


@pytest.fixture
def index(tmp_path: Path) -> VaultIndex:
    for rel, text in NOTES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (OLD, OLD))
    return VaultIndex.build(tmp_path, cache_path=None)


# --------------------------------------------------------------------------- resolve


@pytest.mark.parametrize(
    ("name", "target", "method"),
    [
        ("Jai Menon", "Jai Menon", "exact"),
        ("[[Jai Menon]]", "Jai Menon", "exact"),
        ("@Jai Menon", "Jai Menon", "exact"),
        ("VAST Data", "VAST", "alias"),
        ("Maneesh", "Maneesh Sah", "alias"),
        ("jose muller", "José Müller", "normalised"),
        ("JAI  MENON", "Jai Menon", "normalised"),
        ("Dr. Jai Menon", "Jai Menon", "normalised"),
        ("vast-data", "VAST", "normalised"),
        ("Jeff Denworht", "Jeff Denworth", "fuzzy"),
        ("Menon Jai", "Jai Menon", "fuzzy"),
        ("Microsft", "Microsoft", "fuzzy"),
        ("Jeff", "Jeff Denworth", "first-name"),
        ("jeff", "Jeff Denworth", "first-name"),
        ("Manish", "Maneesh Sah", "phonetic/asr-slip"),
        ("Renan", "Ronen Cohen", "phonetic/asr-slip"),
        ("Renan Kohen", "Ronen Cohen", "phonetic/asr-slip"),
        ("Geoff", "Jeff Denworth", "phonetic/asr-slip"),
        ("Jay Menon", "Jai Menon", "phonetic/asr-slip"),
    ],
)
def test_resolves_confident_matches(index: VaultIndex, name: str, target: str, method: str) -> None:
    res = resolve(name, index)
    assert (res.target, res.method) == (target, method)
    assert res.score is not None and res.score >= 55


def test_two_jasons_are_ambiguous_not_guessed(index: VaultIndex) -> None:
    res = resolve("Jason", index)
    assert res.target is None and res.ambiguous
    assert res.candidates == ("Jason Bourne", "Jason Vallery")


@pytest.mark.parametrize(
    "name",
    [
        "Crusoe",
        "Ryan",
        "Satya Nadella",
        "Menon",
        "Jan",
        "Jay",
        "Jan Niemus",
        "OpenAI Foundation",
        "",
        "  ",
        "###",
    ],
)
def test_unknown_names_never_link(index: VaultIndex, name: str) -> None:
    res = resolve(name, index)
    assert res.target is None and res.method is None and res.reason


def test_person_rules_are_skipped_for_non_people(index: VaultIndex) -> None:
    assert resolve("Manish", index, kind="organisation").target is None
    assert resolve("Jeff", index, kind="concept").target is None
    assert resolve("Manish", index, kind="person").target == "Maneesh Sah"


def test_meeting_notes_are_not_fuzzy_targets(index: VaultIndex) -> None:
    assert resolve("2025-10-06 Jason offer decision", index).target is not None  # exact is fine
    assert resolve("2025-10-06 Jason offer decisions", index).target is None


def test_note_names_that_break_links_are_refused(index: VaultIndex) -> None:
    res = resolve("Ann [Ops]", index)
    assert res.target is None and "cannot be linked" in res.reason


def test_ambiguous_alias(index: VaultIndex) -> None:
    index.add(IndexedNote("Jeff Bezos", "People", ("JB",), "person", "person"))
    index.add(IndexedNote("Jason Bourne", "People", ("JB",), "person", "person"))
    res = resolve("JB", index)
    assert res.target is None and res.candidates == ("Jason Bourne", "Jeff Bezos")
    assert resolve("Jeff", index).ambiguous  # the added note is seen: tables rebuilt after add


def test_phonetic_slip_must_be_unique(index: VaultIndex) -> None:
    index.add(IndexedNote("Manesh Patel", "People", (), "person", "person"))
    res = resolve("Manish", index)
    assert res.target is None and set(res.candidates) == {"Maneesh Sah", "Manesh Patel"}


@pytest.mark.parametrize(
    ("a", "b"),
    [("Manish", "Maneesh"), ("Renan", "Ronen"), ("Jeff", "Geoff"), ("Steven", "Stephen"), ("Jon", "John")],
)
def test_phonetic_key_equates_spelling_slips(a: str, b: str) -> None:
    assert phonetic_key(a) == phonetic_key(b) != ""


@pytest.mark.parametrize(("a", "b"), [("Ryan", "Ronen"), ("Jason", "Jai"), ("Manish", "Maris")])
def test_phonetic_key_separates_different_names(a: str, b: str) -> None:
    assert phonetic_key(a) != phonetic_key(b)


def test_normalise_name() -> None:
    assert normalise_name("  José   MÜLLER ") == "jose muller"
    assert normalise_name("O'Brien") == normalise_name("OBrien") == "obrien"
    assert normalise_name("Jean-Luc Picard") == "jean luc picard"
    assert normalise_name("Søren Straße") == "soren strasse"
    assert normalise_name("...") == ""


@settings(derandomize=True, max_examples=300)  # deterministic: same examples every run
@given(st.text(max_size=40))
def test_normalise_name_is_idempotent(s: str) -> None:
    once = normalise_name(s)
    assert normalise_name(once) == once
    assert once == once.strip() and "  " not in once


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Jai Menon", "jai-menon"),
        ("José Müller", "josé-müller"),
        ("VAST", "vast"),
        ("AT&T  --  Labs", "att-labs"),
        ("Acme/Research", "acme/research"),
        ("[[Jai]] #x", "jai-x"),
        ("2025", None),
        ("!!!", None),
    ],
)
def test_slugify(name: str, slug: str | None) -> None:
    assert slugify(name) == slug


@settings(derandomize=True, max_examples=300)
@given(st.text(max_size=40))
def test_slugs_are_valid_tags(s: str) -> None:
    slug = slugify(s)
    if slug is not None:
        assert re.fullmatch(r"[\w\-/]+", slug) and "--" not in slug
        assert re.search(r"[^\d\-/_]", slug) and slug == slug.lower()


# --------------------------------------------------------------------------- link_extraction


def extraction(
    *,
    account: str | None = "Jai Menon",
    participants: list[str] | None = None,
    owners: list[str | None] | None = None,
    related: list[tuple[str, str]] | None = None,
) -> MeetingExtraction:
    return MeetingExtraction(
        title="Jason offer decision discussion",
        meeting_date="2025-10-06",
        note_type="people",
        account=account,
        account_category="colleague",
        participants=participants if participants is not None else ["Jai Menon", "Jason Vallery"],
        summary="Jason discussed offers.",
        action_items=[
            ActionItem(text=f"Do thing {i}", owner=o, due=None, priority="none", evidence="quote")
            for i, o in enumerate(owners or [])
        ],
        decisions=[],
        key_information=[],
        related=[Entity(name=n, kind=k) for n, k in (related or [])],  # type: ignore[arg-type]
    )


SEED_RELATED = [
    ("Jason Vallery", "person"),
    ("Manish", "person"),
    ("Jeff Denworth", "person"),
    ("Renan", "person"),
    ("Jan Niemus", "person"),
    ("Cloud control plane", "concept"),
    ("VAST", "organisation"),
    ("Crusoe", "organisation"),
    ("Microsoft", "organisation"),
    ("OpenAI", "organisation"),
    ("Jai Menon", "person"),  # the account
    ("VAST Data", "organisation"),  # VAST again
    ("Jason", "person"),  # the owner by alias
    ("Jeff", "person"),  # Jeff Denworth again
    ("Satya", "person"),  # unknown first name
]


def link_seed(index: VaultIndex, **kwargs: object) -> LinkResult:
    ex = extraction(
        participants=["Jai Menon", "Jason", "Manish"],
        owners=["Jason Vallery", "Jason", "me", "Manish", "Jeff", "Felix Adler", "Jason Bourne", None],
        related=SEED_RELATED,
    )
    return link_extraction(ex, index, owner="Jason Vallery", owner_aliases=["Jason"], **kwargs)  # type: ignore[arg-type]


def test_link_seed_meeting(index: VaultIndex) -> None:
    result = link_seed(index)
    assert (result.account, result.account_linked, result.account_tag_slug) == (
        "Jai Menon",
        True,
        "jai-menon",
    )
    assert result.participants == ["Jai Menon", "Jason Vallery", "Maneesh Sah"]
    assert result.owners == {
        "Jason Vallery": MYSELF,
        "Jason": MYSELF,
        "me": MYSELF,
        "Manish": "Maneesh Sah",
        "Jeff": "Jeff Denworth",
        "Felix Adler": "Felix Adler",
        "Jason Bourne": "Jason Bourne",
    }
    # People first: participants, action owners, then who was discussed; organisations last.
    assert result.related == [
        "Maneesh Sah",
        "Jeff Denworth",
        "Jason Bourne",
        "Ronen Cohen",
        "VAST",
        "Microsoft",
        "OpenAI",
    ]
    assert result.stubs_to_create == []


def test_every_related_link_exists_and_is_well_formed(index: VaultIndex) -> None:
    result = link_seed(index)
    for name in result.related:
        assert name in index
        assert not set(name) & set("[]|#^")


def test_owner_can_be_kept_in_related(index: VaultIndex) -> None:
    result = link_seed(index, keep_owner_in_related=True)
    assert result.related[0] == "Jason Vallery"
    assert result.related.count("Jason Vallery") == 1  # "Jason" the alias is the same note


def test_stubs_only_for_people_who_spoke_or_were_given_work(index: VaultIndex) -> None:
    result = link_seed(index, stub_folder="People/Stubs/")
    assert result.related == [
        "Maneesh Sah",
        "Jeff Denworth",
        "Felix Adler",  # an action owner: a stub
        "Jason Bourne",
        "Ronen Cohen",
        "VAST",
        "Microsoft",
        "OpenAI",
    ]
    # Jan Niemus, Cloud control plane and Crusoe were only talked about: no stubs for them.
    assert result.stubs_to_create == [("People/Stubs/Felix Adler.md", "Felix Adler")]
    assert result.stub_kinds == {"People/Stubs/Felix Adler.md": "person"}
    assert result.owners["Felix Adler"] == "Felix Adler"
    assert "stubs are only made for speakers, action owners and the account" in format_explain(result)


def test_stub_names_are_safe_and_planned_once(index: VaultIndex) -> None:
    ex = extraction(
        account="Acme [R&D] #1",
        participants=["Red|Stapler", "red stapler", "Felix"],
        related=[("Acme [R&D] #1", "organisation"), ("red stapler", "person"), ("PR", "concept")],
    )
    ex = ex.model_copy(update={"note_type": "customer"})
    result = link_extraction(ex, index, owner=None, owner_aliases=[], stub_folder="")
    assert result.account == "Acme R&D 1" and result.account_linked
    assert result.related == ["Red Stapler"]  # account left out, duplicate folded, no "PR" stub
    assert result.stubs_to_create == [("Acme R&D 1.md", "Acme R&D 1"), ("Red Stapler.md", "Red Stapler")]
    assert result.stub_kinds == {"Acme R&D 1.md": "organisation", "Red Stapler.md": "person"}
    assert result.account_tag_slug == "acme-rd-1"


def test_no_stubs_for_speaker_labels_that_name_a_role(index: VaultIndex) -> None:
    labels = ["Project Manager", "Grad C", "Speaker 2", "PhD A", "Industrial Designer", "Felix", "Huw Morris"]
    result = link_extraction(extraction(participants=labels), index, owner=None, owner_aliases=[], stub_folder="S")
    assert result.stubs_to_create == [("S/Huw Morris.md", "Huw Morris")]
    assert result.participants == labels  # shown as given


def test_stub_text_has_a_type_the_index_understands() -> None:
    assert stub_text("Felix Adler", "person") == "---\ntype: people\ntags:\n- stub\n---\n\n# Felix Adler\n"
    assert IndexedNote.from_frontmatter("S/Felix Adler.md", stub_frontmatter("person")).kind == "person"
    assert IndexedNote.from_frontmatter("S/Acme.md", stub_frontmatter("organisation")).kind == "organisation"


def test_unknown_account_stays_plain_text(index: VaultIndex) -> None:
    result = link_extraction(extraction(account="Acme Corp"), index, owner=None, owner_aliases=[])
    assert (result.account, result.account_linked, result.account_tag_slug) == (
        "Acme Corp",
        False,
        "acme-corp",
    )


def test_ambiguous_account_is_not_linked_or_stubbed(index: VaultIndex) -> None:
    result = link_extraction(
        extraction(account="Jason"), index, owner=None, owner_aliases=[], stub_folder="S"
    )
    assert (result.account, result.account_linked, result.stubs_to_create) == ("Jason", False, [])


def test_account_by_alias_is_canonical_and_excluded_from_related(index: VaultIndex) -> None:
    ex = extraction(account="VAST Data", related=[("VAST", "organisation"), ("OpenAI", "organisation")])
    result = link_extraction(ex, index, owner=None, owner_aliases=[])
    assert (result.account, result.account_tag_slug) == ("VAST", "vast")
    assert result.related == ["Jai Menon", "Jason Vallery", "OpenAI"]  # participants, then the rest


def test_no_account(index: VaultIndex) -> None:
    result = link_extraction(extraction(account=None), index, owner=None, owner_aliases=[])
    assert (result.account, result.account_linked, result.account_tag_slug) == (None, False, None)


def test_owner_matched_through_the_vault(index: VaultIndex) -> None:
    """No aliases configured, but "Jason Valery" resolves to the owner's note."""
    ex = extraction(owners=["Jason Valery", "Jason"], related=[("Jason Valery", "person")])
    result = link_extraction(ex, index, owner="Jason Vallery", owner_aliases=[])
    assert result.owners == {"Jason Valery": MYSELF, "Jason": "Jason"}  # bare "Jason" is ambiguous
    assert result.related == []


def test_explain_covers_every_name(index: VaultIndex) -> None:
    result = link_seed(index)
    assert len([e for e in result.explain if e.role == "related"]) == len(SEED_RELATED)
    text = format_explain(result)
    assert "Manish" in text and "phonetic/asr-slip" in text and "[[Maneesh Sah]]" in text
    assert "the meeting's account" in text and "the vault owner" in text
    assert "not in the vault" in text and "duplicate of VAST" in text
    jason = next(e for e in result.explain if e.role == "owner" and e.name == "Jason Bourne")
    assert jason.method == "exact"


# --------------------------------------------------------------------------- prompt candidates


def words(s: str) -> int:
    return len(s.split())


def transcript() -> Transcript:
    return Transcript(
        utterances=[
            Utterance(speaker="Jai Menon", text="So how are the offers looking, Jason?"),
            Utterance(speaker="Jason Vallery", text="VAST is complicated. Manish can't match it."),
            Utterance(speaker="Jason Vallery", text="I would report to Jeff and Renan at VAST Data."),
            Utterance(speaker="Jai Menon", text="The Crusoe offer expires Wednesday."),
        ],
        participants=["Jai Menon", "Jason Vallery"],
    )


def test_candidates_are_the_vault_notes_mentioned(index: VaultIndex) -> None:
    found = candidates_for_prompt(transcript(), index, max_tokens=1000, count_tokens=words)
    names = [c.name for c in found]
    assert {"Jai Menon", "Jason Vallery", "Maneesh Sah", "Jeff Denworth", "Ronen Cohen", "VAST"} <= set(names)
    assert "Jason Bourne" in names  # "Jason" alone: the model sees both and decides from context
    assert "Microsoft" not in names and "Crusoe" not in names  # not mentioned / not in the index
    assert not any("offer decision" in n for n in names)  # meeting notes are not candidates
    assert names.index("Jai Menon") < names.index("Jason Bourne")  # speakers rank first
    vast = next(c for c in found if c.name == "VAST")
    assert vast.prompt_line() == "- VAST (company; also: VAST Data)"


def test_candidates_fit_the_token_budget(index: VaultIndex) -> None:
    full = candidates_for_prompt(transcript(), index, max_tokens=1000, count_tokens=words)
    cut = candidates_for_prompt(transcript(), index, max_tokens=12, count_tokens=words)
    assert 0 < len(cut) < len(full)
    assert cut == full[: len(cut)]
    assert sum(words(c.prompt_line() + "\n") for c in cut) <= 12
    assert candidates_for_prompt(transcript(), index, max_tokens=0, count_tokens=words) == []


def test_candidate_line_without_aliases() -> None:
    c = Candidate("Ronen Cohen", (), None, "person", 1.0, ("Renan",))
    assert c.prompt_line() == "- Ronen Cohen (person)"
