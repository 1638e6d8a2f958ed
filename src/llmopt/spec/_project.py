"""The project a spec belongs to, for commands run outside pytest (``llmopt validate``,
``recipes``, ``finetune``): its root folder and its llmopt settings, found the way
pytest finds its rootdir and ini file, starting from the spec rather than from the
current folder. So ``llmopt validate examples/shop/specs`` from a repository's root
uses the example's own recipes and plugins."""

from __future__ import annotations

import configparser
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from ..recipe import RecipeBook
    from ..registry import Registry
    from ._model import Scenario

#: Where pytest reads its settings: file name and section (None: a TOML table).
_INI_FILES: tuple[tuple[str, str | None], ...] = (
    ("pytest.ini", "pytest"),
    (".pytest.ini", "pytest"),
    ("pyproject.toml", None),
    ("tox.ini", "pytest"),
    ("setup.cfg", "tool:pytest"),
)
RECIPES_SETTING = "llmopt_recipes"
PLUGINS_SETTING = "llmopt_plugins"


@dataclass(frozen=True)
class Project:
    """A project's root folder and its pytest settings (``llmopt_recipes``, ...)."""

    root: Path
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, start: Path) -> "Project":
        """The project of ``start`` (a spec, or a folder): the nearest folder at or above
        it with pytest settings, else the nearest with a ``pyproject.toml``, else the
        current folder."""
        start = start.resolve()
        if not start.is_dir():
            start = start.parent
        folders = (start, *start.parents)
        for folder in folders:
            settings = _settings(folder)
            if settings is not None:
                return cls(folder, settings)
        for folder in folders:
            if (folder / "pyproject.toml").is_file():
                return cls(folder, {})
        return cls(Path.cwd(), {})

    def recipes_folder(self) -> Path:
        return self.root / str(self.settings.get(RECIPES_SETTING) or "recipes")

    def recipe_book(self, display: "Callable[[Path], str]" = str) -> "RecipeBook":
        """This project's recipes (its ``llmopt_recipes`` folder)."""
        from ..recipe import load_book

        return load_book(self.recipes_folder(), display)

    def plugins(self) -> list[str]:
        value = self.settings.get(PLUGINS_SETTING) or []
        return value.split() if isinstance(value, str) else [str(v) for v in value]

    def registry(self, given: Sequence[str] = ()) -> "Registry":
        """The registry with the ``given`` plugin modules, else this project's own
        (imported afresh from its root, for the length of the load)."""
        from ..registry import create_registry, importing_from

        names = list(given) or self.plugins()
        tops = () if given else {name.split(".")[0] for name in names}
        with importing_from(self.root, fresh=tops):
            return create_registry(names, rootdir=self.root)


def load_spec(
    path: Path, plugins: Sequence[str] = (), display: "Callable[[Path], str]" = str
) -> "Scenario":
    """The spec at ``path``, loaded with its own project's plugins (or the given plugin
    modules) and recipes: how every command outside pytest loads a spec."""
    from ._loader import load_scenario

    project = Project.of(path)
    registry = project.registry(plugins)
    return load_scenario(path, registry, display_path=display(path), recipes=project.recipe_book(display))


def _settings(folder: Path) -> dict[str, Any] | None:
    """The pytest settings in ``folder`` (None when it has none)."""
    for name, section in _INI_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if section is None:
            found = _toml_settings(path)
        else:
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read(path, encoding="utf-8")
            except configparser.Error:
                continue
            found = dict(parser[section]) if parser.has_section(section) else None
        if found is not None:
            return found
    return None


def _read_toml(path: Path) -> dict[str, Any] | None:
    """The TOML file's tables, or None when it cannot be read (Python 3.11 and later)."""
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return None


def _toml_settings(path: Path) -> dict[str, Any] | None:
    if sys.version_info < (3, 11):  # Python 3.10 has no tomllib: settings from pyproject.toml are not read
        return {}
    data = _read_toml(path)
    if data is None:
        return None
    options = data.get("tool", {}).get("pytest", {}).get("ini_options")
    return dict(options) if isinstance(options, dict) else None
