"""The launcher examples of sharded runs: the CI matrix workflow gates the deploy on the
merge, and the Ray example's shards merge into the unsharded verdict (in Ray's local
mode when Ray is installed; its shard and merge steps without Ray otherwise)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from ruamel.yaml import YAML

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RAY = EXAMPLES / "ray-shards"


def test_ci_matrix_runs_four_shards_and_the_merge_gates_the_deploy() -> None:
    workflow = YAML(typ="safe").load((EXAMPLES / "ci" / "llmopt-shards.yml").read_text(encoding="utf-8"))
    shard, merge, deploy = (workflow["jobs"][name] for name in ("shard", "merge", "deploy"))
    assert shard["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    run = next(s["run"] for s in shard["steps"] if "pytest" in s.get("run", ""))
    assert "--llmopt-shard=${{ matrix.shard }}/4" in run and "--llmopt-json=shards/shard-${{ matrix.shard }}.json" in run
    upload = next(s for s in shard["steps"] if s.get("uses") == "actions/upload-artifact@v4")
    assert upload["with"]["name"] == "llmopt-shard-${{ matrix.shard }}" and upload["if"] == "always()"
    assert merge["needs"] == "shard" and deploy["needs"] == "merge"
    download = next(s for s in merge["steps"] if s.get("uses") == "actions/download-artifact@v4")
    assert download["with"] == {"pattern": "llmopt-shard-*", "path": "shards/", "merge-multiple": True}
    gate = next(s["run"] for s in merge["steps"] if "llmopt merge" in s.get("run", ""))
    for part in ("llmopt merge shards/shard-*.json", "-o reports/results.json", "--junitxml reports/junit.xml", "--report"):
        assert part in gate
    assert "llmopt-shards.yml" in (EXAMPLES / "ci" / "README.md").read_text(encoding="utf-8")


def _example(tmp_path: Path) -> tuple[Path, ModuleType]:
    """A copy of the Ray example and its ``run_shards`` module."""
    folder = tmp_path / "ray-shards"
    shutil.copytree(RAY, folder, ignore=shutil.ignore_patterns(".llmopt", "shards", "reports", "__pycache__"))
    spec = importlib.util.spec_from_file_location("ray_shards_example", folder / "run_shards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return folder, module


def _whole(folder: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "specs", "-q", "-p", "no:cacheprovider", "--llmopt-json=whole.json"],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((folder / "whole.json").read_text(encoding="utf-8"))


def _verdicts(doc: dict) -> list[tuple]:
    return [
        (a["id"], a["outcome"], a["observed"], a["delta"], a["ci"], a["p_value"], a["p_adjusted"])
        for s in doc["scenarios"]
        for a in s["assertions"]
    ]


def test_the_ray_examples_shards_merge_into_the_unsharded_verdicts(tmp_path: Path) -> None:
    folder, example = _example(tmp_path)
    results = [example.run_shard(k, 2, str(folder)) for k in (1, 2)]
    assert [status for _, status, _, _ in results] == [0, 0]
    assert example.merge(example.save(results, folder), folder) == 0
    merged = json.loads((folder / "reports" / "results.json").read_text(encoding="utf-8"))
    assert (folder / "reports" / "junit.xml").is_file() and (folder / "reports" / "report.html").is_file()
    assert _verdicts(merged) == _verdicts(_whole(folder))


def test_the_ray_example_runs_in_rays_local_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    folder, example = _example(tmp_path)
    monkeypatch.setattr(example, "HERE", folder)
    monkeypatch.chdir(folder)
    assert example.main(["--shards", "3", "--local-mode"]) == 0
    assert sorted(p.name for p in (folder / "shards").iterdir()) == ["shard-1.json", "shard-2.json", "shard-3.json"]
    merged = json.loads((folder / "reports" / "results.json").read_text(encoding="utf-8"))
    assert merged["merged"] == {"shards": 3}


def test_the_ray_example_validates_and_keeps_ray_optional() -> None:
    run = subprocess.run([sys.executable, "-m", "llmopt.cli", "validate"], cwd=RAY, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1 spec(s), 0 with problems" in run.stdout, run.stdout + run.stderr
    pyproject = (EXAMPLES.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'ray = ["ray>=2.9"]' in pyproject
    core = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "ray" not in core
    assert "import ray" not in (RAY / "run_shards.py").read_text(encoding="utf-8").split("def run_on_ray", 1)[0]
