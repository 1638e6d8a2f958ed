"""The llmopt command: schema and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmopt.cli import main

GOOD = """\
llmopt: 1
scenario: good
task: {cases: [{id: a, q: x, expected: x}]}
recipe: {template: "{{ q }}"}
model: {provider: echo}
assertions:
  - {metric: exact_match, min: 1.0}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "specs" / "ci.yaml").write_text("jobs: {}\n", encoding="utf-8")
    return tmp_path


def test_schema_prints_the_packaged_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"task", "recipe", "model", "variants", "assertions"} <= set(schema["properties"])


def test_validate_passes_good_specs_and_skips_other_yaml(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "specs/good.yaml: ok (good: 1 variants, 1 checks)" in out
    assert "ci.yaml" not in out
    assert "1 spec(s), 0 with problems" in out


def test_validate_lists_every_problem_and_exits_1(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = GOOD.replace("provider: echo", "provider: ecko").replace("min: 1.0", "min: lots")
    (project / "specs" / "bad.yaml").write_text(bad, encoding="utf-8")
    assert main(["validate", "specs"]) == 1
    out = capsys.readouterr().out
    assert "specs/bad.yaml:5:19: model.provider: unknown provider 'ecko' (did you mean 'echo'?" in out
    assert "specs/bad.yaml:7:32: assertions[0].min: expected a number, got 'lots'" in out
    assert "2 spec(s), 1 with problems" in out


def test_validate_names_a_missing_path(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nowhere"]) == 2
    assert "no such file or folder: nowhere" in capsys.readouterr().err
