"""``llmopt init``: a new project whose ``pytest specs/`` passes offline at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmopt.cli import main


def test_init_writes_a_project_whose_specs_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "shop"
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"next: cd {target} && pytest specs/" in out
    for name in ("specs/support.yaml", "data/questions.jsonl", "plugins/support.py", "plugins/__init__.py",
                 "recipes/grounded-answer.yaml", "pyproject.toml", ".github/workflows/llmopt.yml", ".gitignore", "app/bot.py"):
        assert (target / name).is_file(), name
    assert (target / "README.md").read_text(encoding="utf-8").startswith("# shop\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "specs/", "-p", "no:cacheprovider", "--llmopt-json", "results.json"],
        cwd=target, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
    assert "rag        concise      1.000" in run.stdout  # the project's own metric plugin ran
    assert (target / ".llmopt" / "cache").is_dir()


def test_init_specs_and_recipes_validate(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path)]) == 0

    def llmopt(*args: str) -> subprocess.CompletedProcess[str]:
        # In a process of its own: the project's "plugins" package must not meet another's.
        return subprocess.run([sys.executable, "-m", "llmopt.cli", *args], cwd=tmp_path, capture_output=True, text=True)

    validate = llmopt("validate")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "specs/support.yaml: ok (support: 3 variants, 4 checks)" in validate.stdout
    lint = llmopt("recipes", "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "support.yaml").write_text("mine\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "already has: pyproject.toml, specs/support.yaml; nothing was written" in err
    assert not (tmp_path / "data").exists()
    assert (tmp_path / "pyproject.toml").read_text(encoding="utf-8") == "mine\n"
