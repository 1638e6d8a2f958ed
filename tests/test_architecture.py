"""The shape of the code: leaves, the one gateway, no import circles between the
commands, plugin loading that leaves the interpreter as it found it."""

from __future__ import annotations

import ast
import asyncio
import gc
import re
import sys
from pathlib import Path

import pytest

from llmopt.errors import PluginError

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "llmopt"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "_scaffold" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every llmopt module that ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            targets = [f"{target}.{alias.name}" for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_command_modules_import_each_other_in_no_circle() -> None:
    modules = _modules()
    commands = {
        m for m in modules if m.startswith(("llmopt.cli", "llmopt.finetune", "llmopt.importer")) or m.endswith("._cli")
    }
    graph = {m: _imports(m, modules[m], modules) & commands for m in commands}
    assert _cycles(graph) == []


def test_providers_metrics_and_retrievers_never_import_the_engine() -> None:
    modules = _modules()
    leaves = [m for m in modules if m.startswith(("llmopt.provider", "llmopt.metric", "llmopt.retrieval"))]
    reaching = {m: sorted(t for t in _imports(m, modules[m], modules) if t.startswith("llmopt.engine")) for m in leaves}
    assert {m: t for m, t in reaching.items() if t} == {}


def test_only_the_call_gateway_reads_or_writes_the_response_cache() -> None:
    touching = re.compile(r"\bcache\.(get|put|key)\(|request_identity\(")
    allowed = {PACKAGE / "engine" / "calls.py", PACKAGE / "engine" / "cache.py"}
    found = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if path not in allowed
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if touching.search(line)
    ]
    assert found == []


def test_hosted_calls_leave_the_garbage_collector_as_the_user_set_it() -> None:
    from llmopt.provider import OpenAIProviderType
    from llmopt.spec._model import ModelSpec

    spec = ModelSpec(provider="openai", id="gpt-4o-mini", base_url="http://127.0.0.1:9")
    provider = OpenAIProviderType().create(spec, Path("."))

    async def open_and_close() -> None:
        provider._client_for_loop()  # what the first call does: import the SDK, make the client
        await provider.aclose()

    before = (gc.isenabled(), gc.get_freeze_count(), gc.get_threshold())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        asyncio.run(open_and_close())
    assert (gc.isenabled(), gc.get_freeze_count(), gc.get_threshold()) == before


def _project(root: Path, hook: str = "llmopt_metrics") -> Path:
    (root / "plugins").mkdir(parents=True)
    (root / "plugins" / "__init__.py").write_text("", encoding="utf-8")
    (root / "plugins" / "extra.py").write_text(
        f"import llmopt\n\n@llmopt.hookimpl\ndef {hook}():\n    return []\n", encoding="utf-8"
    )
    (root / "pytest.ini").write_text("[pytest]\nllmopt_plugins = plugins.extra\n", encoding="utf-8")
    return root


def test_loading_a_projects_plugins_leaves_sys_path_and_modules_as_they_were(tmp_path: Path) -> None:
    from llmopt.spec import Project

    first, second = _project(tmp_path / "one"), _project(tmp_path / "two")
    path_before = list(sys.path)
    Project.of(first).registry()
    assert sys.path == path_before
    sentinel = type(sys)("plugins")
    sys.modules["plugins"] = sentinel
    try:
        registry = Project.of(second).registry()
        assert sys.modules["plugins"] is sentinel  # the other project's module is back
        assert sys.path == path_before
        names = [name for name, _ in registry.pm.list_name_plugin()]
        assert "plugins.extra" in names
    finally:
        del sys.modules["plugins"]


def test_a_misspelled_hook_is_an_error_naming_the_plugin_and_the_hook(tmp_path: Path) -> None:
    from llmopt.spec import Project

    root = _project(tmp_path / "typo", hook="llmopt_metric")
    with pytest.raises(PluginError, match=r"plugins\.extra.*llmopt_metric.*llmopt_metrics"):
        Project.of(root).registry()
