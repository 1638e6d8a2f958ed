"""A seeded spec fuzzer: mutants of the spec fixtures never end in a traceback.

Every mutant either loads or fails with a SpecError whose problems name the file; the
loader (shallow and deep), ``llmopt validate`` over all of them at once, and pytest's
collection of a share of them are each run. The seed is fixed, so a failure
reproduces; LLMOPT_FUZZ_SEED and LLMOPT_FUZZ_COUNT explore further.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmopt.cli import main
from llmopt.errors import SpecError
from llmopt.recipe import RecipeBook, load_book
from llmopt.registry import Registry, create_registry
from llmopt.spec import is_spec_file, load_scenario, lookalike

TESTS = Path(__file__).resolve().parent
VALID = sorted((TESTS / "specs" / "valid").glob("*.yaml"))
SEEDS = VALID + sorted((TESTS / "specs" / "invalid").glob("*.yaml"))
SEED = int(os.environ.get("LLMOPT_FUZZ_SEED", "20261214"))
COUNT = int(os.environ.get("LLMOPT_FUZZ_COUNT", "300"))
#: Of the mutants, how many pytest also collects (collection is the slow part).
COLLECTED = 40

NASTY = [
    ".nan", "-.nan", ".inf", "-.inf", "1e400", "-1e400", "9" * 5000, "0x" + "f" * 5000, "1" * 30, "-1", "0", "1.5",
    '"\\ud800"', '"\\udfff tail"', '"\\x07"', "a" * 300, "../" + "b" * 300 + ".jsonl", "loop.jsonl", "../docs/loop",
    "/dev/null", ".", "..", "~", "null", "~", "[]", "{}", "[" * 600 + "]" * 600, "{a: " * 300 + "1" + "}" * 300,
    '"{{ x }"', '"{{ questoin }}"', '"{% for %}"', '"{{ 1/0 }}"', '"{{ context }} {{ documents }}"', "*nope",
    "&a [*a, *a]", "!!binary aGVsbG8=", "!!python/object/apply:os.system [ls]", "!custom x", "2024-01-01",
    "yes", "true", "echo", "python", "openai", "anthropic", "local", '"../app/bot.py:nope"', '"../app/bot.py:answer"',
    '"nomodule:fn"', '"a:b:c"', '"x" ', "'" + "z" * 5000 + "'", "|\n  block", ">-\n  folded", "? complex\n: key",
    "{id: x}", "[{id: a, q: x}, {id: a}]", "{input: .nan, output: .inf}", "{train: .nan}", "@at", "`tick", "%dir",
]
CHARS = ["{", "}", "[", "]", ":", ",", "&a ", "*a", "!!str ", "\t", "'", '"', "%", "|", ">", "#", "-", "?", "\\", "\x00", "\ufeff"]
Mutation = Callable[[random.Random, list[str]], list[str]]


def _value(rng: random.Random, lines: list[str]) -> list[str]:
    spots = [i for i, line in enumerate(lines) if ":" in line]
    if not spots:
        return lines
    i = rng.choice(spots)
    head = lines[i].split(":", 1)[0]
    return lines[:i] + [f"{head}: {rng.choice(NASTY)}"] + lines[i + 1 :]


def _delete(rng: random.Random, lines: list[str]) -> list[str]:
    i = rng.randrange(len(lines))
    return lines[:i] + lines[i + 1 :]


def _duplicate(rng: random.Random, lines: list[str]) -> list[str]:
    i = rng.randrange(len(lines))
    return lines[: i + 1] + lines[i:]


def _insert(rng: random.Random, lines: list[str]) -> list[str]:
    key = rng.choice(["llmopt", "llmpot", "scenario", "task", "model", "recipe", "retrieval", "variants", "x", "'q'"])
    i = rng.randrange(len(lines) + 1)
    return lines[:i] + [f"{key}: {rng.choice(NASTY)}"] + lines[i:]


def _indent(rng: random.Random, lines: list[str]) -> list[str]:
    i = rng.randrange(len(lines))
    line = lines[i]
    changed = "  " + line if rng.random() < 0.5 else line[2:] if line.startswith("  ") else " " + line
    return lines[:i] + [changed] + lines[i + 1 :]


def _characters(rng: random.Random, lines: list[str]) -> list[str]:
    i = rng.randrange(len(lines))
    line = lines[i]
    at = rng.randrange(len(line) + 1)
    return lines[:i] + [line[:at] + rng.choice(CHARS) + line[at:]] + lines[i + 1 :]


def _swap(rng: random.Random, lines: list[str]) -> list[str]:
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    out = list(lines)
    out[i], out[j] = out[j], out[i]
    return out


def _truncate(rng: random.Random, lines: list[str]) -> list[str]:
    return lines[: rng.randrange(1, len(lines) + 1)]


MUTATIONS: list[Mutation] = [_value, _value, _value, _delete, _duplicate, _insert, _indent, _characters, _swap, _truncate]


def _encode(rng: random.Random, text: str) -> bytes:
    """Mostly UTF-8; sometimes another encoding, a BOM or a broken byte."""
    roll = rng.random()
    if roll < 0.03:
        return text.encode("utf-16")
    if roll < 0.05:
        return text.encode("utf-32-le")
    if roll < 0.08:
        return text.encode("utf-8") + b"\nx: \xff\xfe\n"
    if roll < 0.10:
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.encode("utf-8", "surrogatepass")


def mutants(count: int, seed: int) -> list[tuple[str, bytes]]:
    """``count`` mutants of the fixtures, each one to four mutations away from a seed
    (most of them from a valid one, so that later checks are reached too)."""
    rng = random.Random(seed)
    valid = [path.read_text(encoding="utf-8").splitlines() for path in VALID]
    texts = [path.read_text(encoding="utf-8").splitlines() for path in SEEDS]
    out = []
    for n in range(count):
        lines = list(rng.choice(valid if rng.random() < 0.6 else texts)) or ["llmopt: 1"]
        for _ in range(rng.choice((1, 1, 2, 3, 4))):
            lines = rng.choice(MUTATIONS)(rng, lines) or ["llmopt: 1"]
        if not any(line.startswith("llmopt") for line in lines) and rng.random() < 0.7:
            lines.insert(0, "llmopt: 1")
        out.append((f"m{n:04d}.yaml", _encode(rng, "\n".join(lines) + "\n")))
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding the mutants in specs/, beside the data, docs and recipes they name."""
    root = tmp_path_factory.mktemp("fuzz")
    for folder in ("data", "docs"):
        shutil.copytree(TESTS / "specs" / folder, root / folder)
    shutil.copytree(TESTS / "recipes" / "valid", root / "recipes")
    (root / "app").mkdir()
    (root / "app" / "bot.py").write_text("def answer(prompt):\n    return prompt\n", encoding="utf-8")
    specs = root / "specs"
    specs.mkdir()
    (specs / "loop.jsonl").symlink_to(specs / "loop.jsonl")
    (root / "docs" / "loop").symlink_to(root / "docs" / "loop")
    (specs / "self.yaml").symlink_to(specs / "self.yaml")
    for name, data in mutants(COUNT, SEED):
        (specs / name).write_bytes(data)
    (root / "pytest.ini").write_text("[pytest]\nllmopt_cache_dir = .cache-llmopt\n", encoding="utf-8")
    return root


def _check_one(path: Path, registry: Registry, book: RecipeBook, deep: bool) -> str | None:
    """None when ``path`` loads or fails as a user's spec should; else what went wrong."""
    try:
        load_scenario(path, registry, display_path=path.name, recipes=book, deep=deep)
    except SpecError as exc:
        text = str(exc)
        text.encode("utf-8")  # no lone surrogate reaches a message
        if "internal error" in text:
            return text
        if not all(p.path == path.name for p in exc.problems):
            return f"a problem names another file: {text}"
    except Exception as exc:  # noqa: BLE001 - what the fuzzer looks for
        return f"{type(exc).__name__}: {exc}"
    return None


def test_the_loader_never_raises_anything_but_spec_errors(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    registry = create_registry(entry_points=False)
    book = load_book(project / "recipes", lambda p: p.name)
    start = time.perf_counter()
    failures = []
    for path in sorted((project / "specs").glob("m*.yaml")):
        if is_spec_file(path):
            for deep in (False, True):
                found = _check_one(path, registry, book, deep)
                if found is not None:
                    failures.append(f"{path.name} (deep={deep}): {found}\n--- mutant ---\n{path.read_bytes()[:2000]!r}")
        else:
            lookalike(path)
    assert failures == [], f"{len(failures)} of {COUNT} mutants ended in a traceback; the first:\n{failures[0]}"
    assert time.perf_counter() - start < 15 * max(1, COUNT / 300)


def test_validate_checks_every_mutant_without_a_traceback(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    assert main(["validate", "specs"]) in (0, 1)
    out, err = capsys.readouterr()
    assert "internal error" not in out and "Traceback" not in out + err
    specs = [p for p in (project / "specs").glob("m*.yaml") if is_spec_file(p)]
    assert out.splitlines()[-1].startswith(f"{len(specs)} spec(s), ")
    assert sum(1 for line in out.splitlines() if line.startswith("specs/m")) >= len(specs)


def test_collection_shows_no_traceback(project: Path, pytester: pytest.Pytester) -> None:
    chosen = sorted((project / "specs").glob("m*.yaml"))[:COLLECTED]
    for folder in ("data", "docs", "recipes", "app"):
        shutil.copytree(project / folder, pytester.path / folder, symlinks=True)
    (pytester.path / "specs").mkdir()
    for path in chosen:
        shutil.copy(path, pytester.path / "specs" / path.name)
    pytester.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\n")
    result = pytester.runpytest("specs", "--collect-only", "-q", "-p", "no:cacheprovider")
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text and "internal error" not in text
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.INTERRUPTED, pytest.ExitCode.NO_TESTS_COLLECTED)
