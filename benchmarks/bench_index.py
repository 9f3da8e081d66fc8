"""How much the vault index and linking add to a run on a large vault.

    python benchmarks/bench_index.py [--notes 10000] [--lookups 1000] [--seed 7]

Generates a vault in a temp dir (people, companies, projects and meeting notes with realistic
frontmatter, some aliases), builds the index cold and from the cache, then times `resolve` over a
mix of exact, alias, case/accent, typo, first-name, speech-slip and unknown names, and
`candidates_for_prompt` over a synthetic hour-long transcript. Files are backdated a day, as a real
vault's notes are, so the cache's racy-entry rule does not force re-reads.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from summarizer.linking import _tables, candidates_for_prompt, resolve
from summarizer.models import Transcript, Utterance
from summarizer.vault_index import VaultIndex, default_cache_path

FIRST = [
    "Aaron",
    "Adriana",
    "Ahmed",
    "Aisha",
    "Alejandro",
    "Amara",
    "Anders",
    "Anil",
    "Anna",
    "Arjun",
    "Astrid",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Chloe",
    "Daniel",
    "Deepa",
    "Diego",
    "Elena",
    "Emeka",
    "Eva",
    "Farah",
    "Felix",
    "Fatima",
    "Gustavo",
    "Hana",
    "Hiroshi",
    "Ines",
    "Ivan",
    "Jai",
    "Jasmine",
    "Jeff",
    "Jonas",
    "Jose",
    "Julia",
    "Kai",
    "Karin",
    "Kenji",
    "Lars",
    "Leila",
    "Lucas",
    "Maneesh",
    "Marco",
    "Maria",
    "Mateo",
    "Mei",
    "Mohammed",
    "Nadia",
    "Nikhil",
    "Noor",
    "Olga",
    "Omar",
    "Pablo",
    "Priya",
    "Rafael",
    "Ravi",
    "Rosa",
    "Ronen",
    "Sahil",
    "Sara",
    "Sven",
    "Tariq",
    "Tomas",
    "Uma",
    "Vikram",
    "Yara",
    "Zoe",
]
LAST = [
    "Abebe",
    "Andersen",
    "Bauer",
    "Cohen",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Gupta",
    "Haddad",
    "Hansen",
    "Ito",
    "Jansen",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Menon",
    "Muller",
    "Nakamura",
    "Nielsen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Sah",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Tanaka",
    "Torres",
    "Vallery",
    "Wang",
    "Weber",
    "Williams",
    "Yilmaz",
    "Zhang",
    "Denworth",
]
ORG_WORDS = [
    "Acme",
    "Apex",
    "Blue",
    "Cedar",
    "Delta",
    "Echo",
    "Falcon",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nova",
    "Orbit",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Summit",
    "Tidal",
    "Umbra",
    "Vertex",
    "Willow",
    "Xenon",
    "Yonder",
    "Zephyr",
]
ORG_SUFFIX = ["Labs", "Systems", "Data", "Networks", "Capital", "Health", "Robotics", "Energy", "Cloud", "AI"]


def generate(vault: Path, n: int, rng: random.Random) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Write `n` notes; return person names, organisation names and (alias, note) pairs."""
    people: list[str] = []
    orgs: list[str] = []
    aliases: list[tuple[str, str]] = []
    seen: set[str] = set()
    counts = {"People": int(n * 0.4), "Companies": int(n * 0.15), "Projects": int(n * 0.05)}
    counts["Meetings"] = n - sum(counts.values())
    old = time.time() - 86_400
    for folder, count in counts.items():
        (vault / folder).mkdir(parents=True, exist_ok=True)
        made = 0
        while made < count:
            if folder == "People":
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                if name in seen:
                    name = f"{name} {rng.choice(LAST)}"
                fm = "type: person\n"
                if rng.random() < 0.3:
                    alias = name.split()[0]
                    fm += f"aliases:\n- {alias}\n- {name.split()[0][0]}. {name.split()[-1]}\n"
                    aliases.append((alias, name))
                fm += f"company: '[[{rng.choice(ORG_WORDS)} {rng.choice(ORG_SUFFIX)}]]'\n"
            elif folder == "Companies":
                name = f"{rng.choice(ORG_WORDS)} {rng.choice(ORG_WORDS)} {rng.choice(ORG_SUFFIX)}"
                fm = "type: company\n"
                if rng.random() < 0.4:
                    short = name.rsplit(" ", 1)[0]
                    fm += f"aliases: {short}\n"
                    aliases.append((short, name))
                fm += "tags:\n- company\n- customer\n"
            elif folder == "Projects":
                name = f"Project {rng.choice(ORG_WORDS)} {made}"
                fm = "type: project\nstatus: active\n"
            else:
                name = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} - Meeting {made}"
                fm = (
                    f"type: customer\ntitle: Meeting {made}\ndate: '2025-01-01'\n"
                    f"participants:\n- {rng.choice(FIRST)} {rng.choice(LAST)}\n- Jason Vallery\n"
                    f"source: transcript\nsource_ref: Inbox/_archive/2026-01-04/{name}.md\n"
                    "tags:\n- type/customer\n- generated\n"
                )
            if name in seen:
                continue
            seen.add(name)
            body = "\n# Notes\n\n" + ("Some meeting text with [[links]] and details. " * rng.randint(5, 200))
            path = vault / folder / f"{name}.md"
            path.write_text(f"---\n{fm}---\n{body}\n", encoding="utf-8")
            os.utime(path, (old, old))
            made += 1
            if folder == "People":
                people.append(name)
            elif folder == "Companies":
                orgs.append(name)
    # Hidden and inbox folders that must be skipped.
    for hidden in (".obsidian", ".trash", "Inbox"):
        (vault / hidden).mkdir(exist_ok=True)
        for i in range(50):
            (vault / hidden / f"skip {i}.md").write_text("x", encoding="utf-8")
    return people, orgs, aliases


def typo(name: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]


def lookups(
    people: list[str], orgs: list[str], aliases: list[tuple[str, str]], n: int, rng: random.Random
) -> list[str]:
    makers: list[Callable[[], str]] = [
        lambda: rng.choice(people),  # exact
        lambda: rng.choice(orgs),
        lambda: rng.choice(aliases)[0],  # alias
        lambda: rng.choice(people).upper(),  # normalised
        lambda: typo(rng.choice(people), rng),  # fuzzy
        lambda: rng.choice(FIRST),  # first name (mostly ambiguous in a big vault)
        lambda: "Manish",  # speech slip
        lambda: f"Unknown Person {rng.randint(0, 10**6)}",  # unknown: every rule runs
    ]
    return [rng.choice(makers)() for _ in range(n)]


def transcript(people: list[str], orgs: list[str], rng: random.Random, utterances: int = 600) -> Transcript:
    speakers = rng.sample(people, 4)
    filler = [
        "so",
        "we",
        "talked",
        "about",
        "the",
        "plan",
        "and",
        "the",
        "numbers",
        "for",
        "next",
        "quarter",
        "and",
        "what",
        "comes",
        "next",
    ]
    utts = []
    for _ in range(utterances):
        words = rng.sample(filler, 8)
        words.insert(rng.randrange(len(words)), rng.choice([*FIRST, *orgs, *rng.sample(people, 1)]))
        utts.append(Utterance(speaker=rng.choice(speakers), text=" ".join(words).capitalize() + "."))
    return Transcript(utterances=utts, participants=speakers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        vault = Path(tmp)
        t0 = time.perf_counter()
        people, orgs, aliases = generate(vault, args.notes, rng)
        gen_s = time.perf_counter() - t0
        cache = default_cache_path(vault)

        t0 = time.perf_counter()
        cold = VaultIndex.build(vault, cache_path=cache)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = VaultIndex.build(vault, cache_path=cache)
        warm_s = time.perf_counter() - t0
        assert warm.stats.read == 0, warm.stats

        names = lookups(people, orgs, aliases, args.lookups, rng)
        t0 = time.perf_counter()
        _tables(warm).normalised  # noqa: B018 - first-use table builds, timed on their own
        _tables(warm).fuzzy  # noqa: B018
        _tables(warm).first_names  # noqa: B018
        _tables(warm).phonetic  # noqa: B018
        tables_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = [resolve(name, warm) for name in names]
        resolve_s = time.perf_counter() - t0
        by_method: dict[str, int] = {}
        for r in results:
            key: str = r.method or ("ambiguous" if r.ambiguous else "unresolved")
            by_method[key] = by_method.get(key, 0) + 1

        tr = transcript(people, orgs, rng)
        t0 = time.perf_counter()
        cands = candidates_for_prompt(tr, warm, max_tokens=1500, count_tokens=lambda s: len(s) // 4 + 1)
        cand_s = time.perf_counter() - t0

    rows = [
        ("notes indexed", f"{len(warm.notes):,}"),
        ("vault generation (s)", f"{gen_s:.2f}"),
        ("cold build (s)", f"{cold_s:.3f}  ({cold.stats.read:,} frontmatters read)"),
        ("cached build (s)", f"{warm_s:.3f}  ({warm.stats.read} read, {warm.stats.cached:,} from cache)"),
        ("lookup tables, first use (s)", f"{tables_s:.3f}"),
        (f"resolve x{len(names):,} (s)", f"{resolve_s:.3f}"),
        ("resolve calls/s", f"{len(names) / resolve_s:,.0f}"),
        ("resolve outcomes", ", ".join(f"{k} {v}" for k, v in sorted(by_method.items()))),
        (
            f"candidates_for_prompt, {len(tr.utterances)} utterances (s)",
            f"{cand_s:.3f}  ({len(cands)} candidates)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
