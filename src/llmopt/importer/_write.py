"""Checking the imported spec in a scratch folder, then writing its files."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LLMOptError
from ._asserts import PythonCode
from ._python_code import checks_module, provider_module
from ._source import ConfigError, shown


@dataclass(frozen=True)
class Files:
    """Everything an import writes, before it is written."""

    name: str
    spec: str
    rows: Sequence[dict[str, Any]]
    adapters: Sequence[tuple[Path, str]] = ()
    plugin_path: Path | None = None
    plugin_module: str | None = None
    python: Sequence[tuple[str, PythonCode]] = field(default_factory=list)


def plugin_location(out: Path, name: str) -> tuple[Path, str]:
    """Where the python checks' plugin goes: ``plugins/`` at the project's root."""
    from ..spec._project import Project

    existing = next(p for p in (out.resolve(), *out.resolve().parents) if p.exists())
    root = Project.of(existing).root
    module = f"promptfoo_{name.replace('-', '_')}"
    return root / "plugins" / f"{module}.py", f"plugins.{module}"


def contents(files: Files, out: Path) -> dict[Path, str]:
    """Each target path and its text."""
    found = {out / f"{files.name}.yaml": files.spec,
             out / f"{files.name}.cases.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in files.rows)}
    if files.adapters:
        found[out / f"{files.name}_providers.py"] = provider_module(files.adapters, out)
    if files.plugin_path is not None:
        found[files.plugin_path] = checks_module(files.python, files.plugin_path.parent)
    return found


def write_checked(files: Files, out: Path, force: bool) -> list[Path]:
    """Validate the spec with its plugin, then write every file; nothing is written
    when the spec does not load or (without ``force``) a file is in the way."""
    targets = contents(files, out)
    taken = [shown(p) for p in targets if p.exists()]
    if taken and not force:
        raise FileExistsError(", ".join(taken))
    _validate(files, targets, out)
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(targets)


def _validate(files: Files, targets: dict[Path, str], out: Path) -> None:
    from ..registry import create_registry
    from ..spec import load_scenario

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for path, text in targets.items():
            if path.parent == out:
                (folder / path.name).write_text(text, encoding="utf-8")
        registry = create_registry()
        if files.plugin_path is not None:
            registry.metrics.update(_plugin_metrics(targets[files.plugin_path], folder))
        try:
            load_scenario(folder / f"{files.name}.yaml", registry, display_path=shown(out / f"{files.name}.yaml"))
        except LLMOptError as exc:
            raise ConfigError(f"the imported spec does not validate (a bug in the importer):\n{exc}") from None


def _plugin_metrics(text: str, folder: Path) -> dict[str, Any]:
    path = folder / "_promptfoo_checks.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("_llmopt_promptfoo_checks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop("_llmopt_promptfoo_checks", None)
    return {metric.name: metric for metric in module.llmopt_metrics()}
