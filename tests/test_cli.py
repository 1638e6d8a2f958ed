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


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"llmopt {version('llmopt')}"


def test_schema_into_a_closed_pipe_is_quiet() -> None:
    import subprocess
    import sys

    code = "import sys; from llmopt.cli import main; sys.exit(main(['schema']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written, as with `| head`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "BrokenPipeError" not in err and "Traceback" not in err


def test_validate_of_an_explicit_non_spec_file_is_an_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "specs" / "typo.yaml").write_text(GOOD.replace("llmopt: 1", "llmpot: 1"), encoding="utf-8")
    assert main(["validate", "specs/ci.yaml", "specs/typo.yaml", "specs/good.yaml"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "specs/ci.yaml: not a spec: a spec is a .yaml or .yml file that starts with 'llmopt: 1'",
        (
            "specs/typo.yaml:1:1: top-level key 'llmpot' looks like a misspelt 'llmopt' marker: the file is not read"
            " as a spec (a spec starts with 'llmopt: 1')"
        ),
        "specs/good.yaml: ok (good: 1 variants, 1 checks)",
        "3 spec(s), 2 with problems",
    ]


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("utf-16", "is a spec saved as UTF-16: llmopt reads specs as UTF-8 text only (save it as UTF-8)"),
        ("utf-32", "is a spec saved as UTF-32: llmopt reads specs as UTF-8 text only (save it as UTF-8)"),
        ("utf-16-le", "is a spec saved as UTF-16: llmopt reads specs as UTF-8 text only (save it as UTF-8)"),
    ],
)
def test_validate_warns_of_specs_saved_as_utf16_or_32(
    project: Path, capsys: pytest.CaptureFixture[str], encoding: str, message: str
) -> None:
    (project / "specs" / "wide.yaml").write_bytes(GOOD.encode(encoding))
    (project / "specs" / "near.yml").write_text("LLMOpt: 1\n", encoding="utf-8")
    assert main(["validate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        (
            "specs/near.yml:1:1: warning: top-level key 'LLMOpt' looks like a misspelt 'llmopt' marker: the file is"
            " not read as a spec (a spec starts with 'llmopt: 1')"
        ),
        f"specs/wide.yaml:1:1: warning: {message}",
        "specs/good.yaml: ok (good: 1 variants, 1 checks)",
        "1 spec(s), 0 with problems, 2 other YAML file(s) skipped with a warning",
    ]


def test_one_files_failure_never_stops_the_others(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmopt.spec

    real = llmopt.spec.load_scenario

    def flaky(path: Path, *args: object, **kwargs: object) -> object:
        if path.name == "a.yaml":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    (project / "specs" / "a.yaml").write_text(GOOD.replace("good", "first"), encoding="utf-8")
    monkeypatch.setattr(llmopt.spec, "load_scenario", flaky)
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "specs/a.yaml: internal error while checking the spec (RecursionError: maximum recursion depth exceeded)" in out
    assert "specs/good.yaml: ok" in out and "2 spec(s), 1 with problems" in out


def test_validate_of_a_path_the_system_refuses(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "specs" / "loop.yaml").symlink_to(project / "specs" / "loop.yaml")
    assert main(["validate", "x" * 300 + ".yaml", "specs/loop.yaml"]) == 2
    err = capsys.readouterr().err
    assert f"llmopt: cannot read {'x' * 60}... (305 characters): File name too long" in err
    assert "llmopt: a symbolic link that leads nowhere (a loop?): specs/loop.yaml" in err
    assert main(["validate"]) == 0
    assert "specs/loop.yaml:1:1: warning: cannot be read" in capsys.readouterr().out


def test_validate_reads_datasets_templates_and_functions(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "specs" / "data.jsonl").write_text('{"id": "a", "q": "x"}\n{"id": "a", "q": "y"}\nnot json\n', encoding="utf-8")
    spec = GOOD.replace("{cases: [{id: a, q: x, expected: x}]}", "{dataset: data.jsonl, id: id, expected: answer}")
    spec = spec.replace('"{{ q }}"', '"{{ qq }}"').replace("{provider: echo}", "{provider: python, id: 'bot.py:run'}")
    (project / "specs" / "good.yaml").write_text(spec, encoding="utf-8")
    (project / "specs" / "bot.py").write_text("def answer(prompt):\n    return prompt\n", encoding="utf-8")
    assert main(["validate"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == [
        "specs/good.yaml: 4 problems in spec:",
        "  specs/good.yaml:3:17: task.dataset: data.jsonl:1: missing field 'answer' (task.expected) in every row (2 rows)",
        "  specs/good.yaml:3:17: task.dataset: data.jsonl:2: duplicate id 'a' (first at line 1)",
        "  specs/good.yaml:3:17: task.dataset: data.jsonl:3: invalid JSON: Expecting value (column 1)",
        "  specs/good.yaml:5:31: model.id: python provider: bot.py defines no function 'run' (functions: answer)",
    ]
    (project / "specs" / "data.jsonl").write_text('{"id": "a", "q": "x", "answer": "x"}\n', encoding="utf-8")
    assert main(["validate"]) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        "  specs/good.yaml:4:20: recipe.template: template line 1: undefined variable 'qq': no case has that field"
        " (did you mean 'q'? fields: answer, id, q)"
    )
