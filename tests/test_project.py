"""The project a spec belongs to, for the commands run outside pytest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llmopt.spec._project import Project

if TYPE_CHECKING:
    from conftest import WriteFile


def test_the_nearest_folder_with_pytest_settings_is_the_project(tmp_path: Path, write: WriteFile) -> None:
    write(tmp_path, "pyproject.toml", '[tool.pytest.ini_options]\nllmopt_recipes = "prompts"\n')
    write(tmp_path, "examples/shop/pytest.ini", "[pytest]\nllmopt_plugins = plugins.shop\n  plugins.extra\n")
    write(tmp_path, "examples/shop/specs/s.yaml", "llmopt: 1\n")
    write(tmp_path, "examples/bare/pyproject.toml", "[project]\nname = 'bare'\n")  # no pytest settings
    write(tmp_path, "examples/cfg/setup.cfg", "[tool:pytest]\nllmopt_recipes = r\n")
    outer = Project.of(tmp_path / "specs")
    assert outer.root == tmp_path.resolve() and outer.recipes_folder() == tmp_path.resolve() / "prompts"
    shop = Project.of(tmp_path / "examples" / "shop" / "specs" / "s.yaml")
    assert shop.root == (tmp_path / "examples" / "shop").resolve()
    assert shop.plugins() == ["plugins.shop", "plugins.extra"] and shop.recipes_folder().name == "recipes"
    assert Project.of(tmp_path / "examples" / "bare").root == tmp_path.resolve()  # settings live further up
    assert Project.of(tmp_path / "examples" / "cfg").recipes_folder() == (tmp_path / "examples" / "cfg" / "r").resolve()


BRAND = """\
import llmopt
from llmopt.metric import CaseMetric


class {name}(CaseMetric):
    name = "{metric}"

    def score_case(self, sample, args):
        return 1.0


@llmopt.hookimpl
def llmopt_metrics():
    return [{name}()]
"""

SPEC = """\
llmopt: 1
scenario: {scenario}
task:
  cases: [{{id: a, q: hi, expected: hi}}]
recipe: {{use: greet@1}}
model: {{provider: echo}}
assertions:
  - {{metric: {metric}, min: 1.0}}
"""

RECIPE = """\
recipe: greet
versions:
  1:
    template: "{{ q }}"
"""


def test_validate_uses_each_specs_own_plugins_and_recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], write: WriteFile) -> None:
    from llmopt.cli import main

    for shop, metric in (("north", "north_rule"), ("south", "south_rule")):
        root = tmp_path / "examples" / shop
        write(root, "pyproject.toml", '[tool.pytest.ini_options]\nllmopt_plugins = ["plugins.brand"]\n')
        write(root, "plugins/__init__.py", "")
        write(root, "plugins/brand.py", BRAND.format(name=shop.title() + "Rule", metric=metric))  # same module name
        write(root, "recipes/greet.yaml", RECIPE)
        write(root, "specs/spec.yaml", SPEC.format(scenario=shop, metric=metric))
    monkeypatch.chdir(tmp_path)  # the repository's root: no settings, no recipes here
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m == "plugins" or m.startswith("plugins.")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        code = main(["validate", "examples"])
    finally:
        for name in [m for m in sys.modules if m == "plugins" or m.startswith("plugins.")]:
            del sys.modules[name]
    out = capsys.readouterr().out
    assert "examples/north/specs/spec.yaml: ok (north: 1 variants, 1 checks)" in out
    assert "examples/south/specs/spec.yaml: ok (south: 1 variants, 1 checks)" in out
    assert code == 0


def test_a_misspelt_hook_is_an_error_naming_the_plugin_and_the_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: WriteFile) -> None:
    from llmopt.errors import PluginError
    from llmopt.registry import create_registry

    write(tmp_path, "typo_plugin.py", "import llmopt\n\n\n@llmopt.hookimpl\ndef llmopt_metric():\n    return []\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        with pytest.raises(PluginError) as info:
            create_registry(["typo_plugin"], tmp_path, entry_points=False)
    finally:
        sys.modules.pop("typo_plugin", None)
    assert "llmopt plugin 'typo_plugin': unknown hook 'llmopt_metric'" in str(info.value)
    assert "llmopt_metrics" in str(info.value)
