"""The example projects: their specs and plugins load, and the CI example is complete.

Running them needs the embedded model (minutes); their READMEs show real runs. Here
each is validated the way ``llmopt validate`` does it from the project's folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROJECTS = ("helpdesk-rag", "ticket-routing", "json-extraction")
#: The specs of each project (ticket routing also has its demonstrations search).
SPECS = {"helpdesk-rag": 1, "ticket-routing": 2, "json-extraction": 1}


@pytest.mark.parametrize("name", PROJECTS)
def test_example_specs_validate_with_their_plugins(name: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "llmopt.cli", "validate"], cwd=EXAMPLES / name, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{SPECS[name]} spec(s), 0 with problems" in run.stdout


@pytest.mark.parametrize("name", PROJECTS)
def test_example_keeps_its_own_cache_and_skips_hosted_variants_without_a_key(name: str) -> None:
    text = (EXAMPLES / name / "pyproject.toml").read_text(encoding="utf-8")
    assert 'testpaths = ["specs"]' in text and 'llmopt_cache_dir = ".llmopt/cache"' in text
    assert 'addopts = "--llmopt-unavailable=skip"' in text
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    assert "llmopt summary" in readme and "passed" in readme  # a real run's output


def test_schema_metric_of_the_extraction_example() -> None:
    import importlib.util

    # Loaded under a name of its own: importing it as plugins.schema would leave another
    # project's "plugins" package in sys.modules for the tests that follow.
    spec = importlib.util.spec_from_file_location("example_schema_plugin", EXAMPLES / "json-extraction" / "plugins" / "schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    matches_schema = module.matches_schema

    from llmopt.dataset import Case
    from llmopt.metric import Sample

    def score(output: str) -> float:
        return matches_schema.score(Sample(case=Case(id="x"), output=output), {"schema": "order.schema.json"})

    assert score('Sure: {"order_id": "NB-4821", "customer": "Maria Lopez", "quantity": 2} done') == 1.0
    assert score('{"order_id": "4821", "customer": "Maria Lopez", "quantity": 2}') == 0.0  # pattern
    assert score('{"order_id": "NB-4821", "customer": "Maria Lopez", "quantity": "2"}') == 0.0  # type
    assert score("no JSON here {") == 0.0


def test_ci_example_gates_the_deploy_on_the_specs() -> None:
    workflow = YAML(typ="safe").load((EXAMPLES / "ci" / "llmopt-gate.yml").read_text(encoding="utf-8"))
    evaluate, deploy = workflow["jobs"]["evaluate"], workflow["jobs"]["deploy"]
    assert deploy["needs"] == "evaluate"
    steps = {s.get("name") or s.get("uses") or s.get("run"): s for s in evaluate["steps"]}
    assert steps["actions/cache@v4"]["with"]["path"] == ".llmopt/cache"
    command = steps["Evaluate"]["run"]
    for part in ("pytest specs/ -n auto", "--junitxml", "--llmopt-report reports/report.html", "--llmopt-cache="):
        assert part in command
    assert "actions/upload-artifact@v4" in steps
    assert "--body-file reports/summary.md" in steps["Comment the summary"]["run"]
    assert "--llmopt-cache=replay" in (EXAMPLES / "ci" / "README.md").read_text(encoding="utf-8")


def test_pytest_from_the_repository_root_collects_only_tests() -> None:
    root = EXAMPLES.parent
    assert 'testpaths = ["tests"]' in (root / "pyproject.toml").read_text(encoding="utf-8")
