"""The echo provider and the python provider (the user's own function)."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from llmopt.dataset._case import Case
from llmopt.errors import ProviderError, ProviderUnavailable
from llmopt.provider import (
    EchoProviderType,
    Provider,
    PythonProviderType,
    Request,
    Response,
    builtin_provider_types,
)
from llmopt.spec._model import ModelSpec

if TYPE_CHECKING:
    from conftest import WriteFile

REQUEST = Request(
    messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "Q: 2+2?"}],
    prompt="Q: 2+2?",
    case=Case(id="c1", fields={"question": "2+2?", "answer": "4"}, expected="4"),
    context="arithmetic notes",
    params={"temperature": 0},
)


def _run(provider: Provider, request: Request = REQUEST) -> Response:
    return asyncio.run(provider.generate(request))


@pytest.fixture
def spec_dir(tmp_path: Path) -> Iterator[Path]:
    """A spec folder whose modules are unloaded again after the test."""
    before = set(sys.modules)
    path_before = list(sys.path)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = path_before


def _python(spec_dir: Path, model_id: str, **options: Any) -> Provider:
    spec = ModelSpec(provider="python", id=model_id, options=options)
    return PythonProviderType().create(spec, spec_dir)


def test_builtin_types_are_named_and_fresh() -> None:
    first, second = builtin_provider_types(), builtin_provider_types()
    assert [t.name for t in first] == ["echo", "python", "local", "openai", "anthropic"]
    assert first[2] is not second[2]


# --- echo ---------------------------------------------------------------------


def test_echo_returns_the_rendered_prompt() -> None:
    provider = EchoProviderType().create(ModelSpec(provider="echo"), Path("."))
    response = _run(provider)
    assert response.text == "Q: 2+2?"
    assert response.latency_s >= 0 and not response.cached
    assert (provider.concurrency, provider.cacheable) == (64, False)
    assert isinstance(provider, Provider)


def test_echo_check_ignores_id() -> None:
    assert EchoProviderType().check(ModelSpec(provider="echo", id="anything"), Path(".")) == []


# --- python: argument injection ----------------------------------------------


@pytest.mark.parametrize(
    ("signature", "body", "expected"),
    [
        ("prompt", "prompt", "Q: 2+2?"),
        ("messages", "messages[0]['content'] + '|' + messages[-1]['role']", "be brief|user"),
        ("case", "case['answer']", "4"),
        ("context", "context", "arithmetic notes"),
        ("params", "repr(params)", "{'temperature': 0}"),
        ("prompt, case", "prompt + case['question']", "Q: 2+2?2+2?"),
        ("*, context, extra='x'", "context + extra", "arithmetic notesx"),
        ("**kwargs", "','.join(sorted(kwargs))", "case,context,messages,params,prompt"),
        ("", "'constant'", "constant"),
    ],
)
def test_function_gets_the_arguments_it_names(
    spec_dir: Path, signature: str, body: str, expected: str, write: WriteFile
) -> None:
    write(spec_dir, "pipeline.py", f"def answer({signature}):\n    return {body}\n")
    assert _run(_python(spec_dir, "pipeline.py:answer")).text == expected


def test_module_form_is_importable_from_the_spec_folder(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "mypkg_llmopt_t/__init__.py", "")
    write(spec_dir, "mypkg_llmopt_t/rag.py", "def run(prompt):\n    return 'rag:' + prompt\n")
    response = _run(_python(spec_dir, "mypkg_llmopt_t.rag:run"))
    assert response.text == "rag:Q: 2+2?"
    assert response.model == "mypkg_llmopt_t.rag:run"


def test_module_form_from_sys_path(spec_dir: Path, tmp_path_factory: pytest.TempPathFactory, write: WriteFile) -> None:
    elsewhere = tmp_path_factory.mktemp("site")
    write(elsewhere, "installed_llmopt_t.py", "class Agent:\n    @staticmethod\n    def run(prompt):\n        return prompt[::-1]\n")
    sys.path.insert(0, str(elsewhere))  # the fixture restores sys.path
    assert _run(_python(spec_dir, "installed_llmopt_t:Agent.run")).text == "?2+2 :Q"


def test_file_in_a_subfolder_can_import_its_neighbours(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "app/helper_llmopt_t.py", "PREFIX = 'helped:'\n")
    write(spec_dir, "app/main.py", "from helper_llmopt_t import PREFIX\ndef f(prompt):\n    return PREFIX + prompt\n")
    assert _run(_python(spec_dir, "app/main.py:f")).text == "helped:Q: 2+2?"


def test_async_function_is_awaited_on_the_loop(spec_dir: Path, write: WriteFile) -> None:
    write(
        spec_dir,
        "pipeline.py",
        """
        import asyncio, threading
        async def answer(prompt):
            await asyncio.sleep(0)
            return threading.current_thread().name
        """,
    )
    assert _run(_python(spec_dir, "pipeline.py:answer")).text == threading.main_thread().name


def test_sync_function_runs_in_a_worker_thread(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "pipeline.py", "import threading\ndef answer():\n    return threading.current_thread().name\n")
    assert _run(_python(spec_dir, "pipeline.py:answer")).text != threading.main_thread().name


def test_function_is_imported_once(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "counted.py", "IMPORTS = []\nIMPORTS.append(1)\ndef f():\n    return str(len(IMPORTS))\n")
    provider = _python(spec_dir, "counted.py:f")
    assert [_run(provider).text for _ in range(3)] == ["1", "1", "1"]


# --- python: errors -------------------------------------------------------------


def test_exception_becomes_provider_error_with_type_and_function(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "pipeline.py", "def answer(prompt):\n    raise ValueError('no index built')\n")
    with pytest.raises(ProviderError, match=r"answer\(\) raised ValueError: no index built") as info:
        _run(_python(spec_dir, "pipeline.py:answer"))
    assert not isinstance(info.value, ProviderUnavailable)


def test_non_str_return_is_an_error(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "pipeline.py", "def answer():\n    return 42\n")
    with pytest.raises(ProviderError, match="python provider function must return a str, got int"):
        _run(_python(spec_dir, "pipeline.py:answer"))


def test_import_error_is_unavailable_and_names_the_id(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "broken.py", "import no_such_module_llmopt\n")
    with pytest.raises(ProviderUnavailable, match=r"'broken.py:f'.*ModuleNotFoundError"):
        _run(_python(spec_dir, "broken.py:f"))
    with pytest.raises(ProviderUnavailable, match=r"'no_such_mod_llmopt:f'.*cannot import no_such_mod_llmopt"):
        _run(_python(spec_dir, "no_such_mod_llmopt:f"))


def test_missing_function_is_unavailable(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "pipeline.py", "VALUE = 1\n")
    with pytest.raises(ProviderUnavailable, match="has no attribute 'answer'"):
        _run(_python(spec_dir, "pipeline.py:answer"))
    with pytest.raises(ProviderUnavailable, match="'VALUE' is not callable"):
        _run(_python(spec_dir, "pipeline.py:VALUE"))


def test_parameter_that_cannot_be_supplied_is_named(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "pipeline.py", "def answer(prompt, question):\n    return prompt\n")
    with pytest.raises(ProviderUnavailable, match="parameter 'question' cannot be supplied"):
        _run(_python(spec_dir, "pipeline.py:answer"))


# --- python: check, identity, options -----------------------------------------


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        (None, "the python provider needs model.id: 'module:function' or 'path/to/file.py:function'"),
        ("just_a_module", "model.id must be 'module:function' or 'path/to/file.py:function', got 'just_a_module'"),
        ("mod:", "model.id must be"),
        ("mod:not-a-name", "model.id must be"),
        ("my-mod:f", "'my-mod' is not a module name"),
    ],
)
def test_check_reports_a_malformed_id(tmp_path: Path, model_id: str | None, message: str) -> None:
    problems = PythonProviderType().check(ModelSpec(provider="python", id=model_id), tmp_path)
    assert len(problems) == 1 and message in problems[0]


def test_check_reports_a_missing_file_without_importing(tmp_path: Path, write: WriteFile) -> None:
    ptype = PythonProviderType()
    assert ptype.check(ModelSpec(provider="python", id="nope/run.py:f"), tmp_path) == [
        f"python file not found: {tmp_path / 'nope' / 'run.py'}"
    ]
    write(tmp_path, "boom.py", "raise SystemExit('imported at collection!')\n")
    assert ptype.check(ModelSpec(provider="python", id="boom.py:f"), tmp_path) == []
    assert ptype.check(ModelSpec(provider="python", id="not_imported_llmopt:f"), tmp_path) == []
    assert "not_imported_llmopt" not in sys.modules


def test_create_rejects_a_malformed_id(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="model.id must be"):
        PythonProviderType().create(ModelSpec(provider="python", id="bad"), tmp_path)


def test_identity_concurrency_and_cache_option(spec_dir: Path) -> None:
    plain = _python(spec_dir, "m:f")
    assert plain.identity() == {"id": "m:f"}
    assert (plain.concurrency, plain.cacheable) == (8, False)
    cached = PythonProviderType().create(
        ModelSpec(provider="python", id="m:f", concurrency=2, options={"cache": True}), spec_dir
    )
    assert (cached.concurrency, cached.cacheable, cached.cache_includes_case) == (2, True, True)


# -- cached answers are keyed on the user's source (issue 14, item 1) -------------------

CACHED_SPEC = """\
llmopt: 1
scenario: app
task:
  id: id
  expected: answer
  cases: [{id: a, question: one, answer: v1}, {id: b, question: two, answer: v1}]
recipe:
  template: "{{ question }}"
model:
  provider: python
  id: ../app/bot.py:answer
  options: {cache: true}
assertions:
  - {metric: exact_match, min: 0.0}
"""

BOT = """\
from pathlib import Path

from helpers.version import VERSION


def answer(prompt):
    with open(Path(__file__).with_name("calls.txt"), "a") as calls:
        calls.write("x")
    return VERSION
"""


def _app_run(pytester: pytest.Pytester) -> tuple[list[str], int]:
    pytester.runpytest("specs", "--llmopt-json", "r.json").assert_outcomes(passed=1)
    import json

    doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    cases = doc["scenarios"][0]["variants"]["default"]["cases"]
    return [c["output"] for c in cases], len((pytester.path / "app" / "calls.txt").read_text())


def test_editing_the_function_or_a_project_module_it_imports_misses_the_cache(pytester: pytest.Pytester, write: WriteFile) -> None:
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\nllmopt_cache_dir = '.cache-llmopt'\n")
    write(pytester.path, "specs/app.yaml", CACHED_SPEC)
    write(pytester.path, "app/bot.py", BOT)
    write(pytester.path, "app/helpers/__init__.py", "")
    write(pytester.path, "app/helpers/version.py", "VERSION = 'v1'\n")
    assert _app_run(pytester) == (["v1", "v1"], 2)
    assert _app_run(pytester) == (["v1", "v1"], 2)  # unchanged code: answered from the cache
    write(pytester.path, "app/helpers/version.py", "VERSION = 'v2'\n")
    assert _app_run(pytester) == (["v2", "v2"], 4)  # an imported project module changed
    write(pytester.path, "app/bot.py", BOT.replace("return VERSION", "return VERSION + '!'"))
    assert _app_run(pytester) == (["v2!", "v2!"], 6)  # the function's own file changed


def test_source_digest_follows_project_imports_only(spec_dir: Path, write: WriteFile) -> None:
    from llmopt.provider._python_source import source_digest
    from llmopt.provider._python_target import parse_target

    write(spec_dir, "pyproject.toml", "")
    write(spec_dir, "pkg/__init__.py", "")
    write(spec_dir, "pkg/main.py", "import json\nfrom . import util\nfrom .deep import thing\n\ndef f():\n    return 'x'\n")
    write(spec_dir, "pkg/util.py", "A = 1\n")
    write(spec_dir, "pkg/deep/__init__.py", "from .inner import thing\n")
    write(spec_dir, "pkg/deep/inner.py", "thing = 1\n")
    target = parse_target("pkg.main:f")
    first = source_digest(target, spec_dir)
    assert first is not None and first == source_digest(target, spec_dir)
    write(spec_dir, "pkg/deep/inner.py", "thing = 2\n")
    second = source_digest(target, spec_dir)
    assert second != first
    write(spec_dir, "unrelated.py", "B = 2\n")
    assert source_digest(target, spec_dir) == second
    assert "pkg.main" not in sys.modules  # found without importing


def test_cached_identity_carries_the_source_digest(spec_dir: Path, write: WriteFile) -> None:
    write(spec_dir, "bot.py", "def f(prompt):\n    return prompt\n")
    cached = _python(spec_dir, "bot.py:f", cache=True)
    first = dict(cached.identity())
    assert first["id"] == "bot.py:f" and isinstance(first["source"], str) and len(first["source"]) == 64
    write(spec_dir, "bot.py", "def f(prompt):\n    return prompt + '!'\n")
    assert _python(spec_dir, "bot.py:f", cache=True).identity()["source"] != first["source"]
    assert _python(spec_dir, "bot.py:f").identity() == {"id": "bot.py:f"}


def test_importing_the_echo_provider_imports_no_other_provider_nor_dataset_reader() -> None:
    import subprocess
    import sys

    code = "import sys, llmopt.provider.echo; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    ours = [name for name in loaded if name.startswith("llmopt")]
    assert not [n for n in ours if n.startswith(("llmopt.dataset", "llmopt.spec", "llmopt.engine"))]
    assert [n for n in ours if n.startswith("llmopt.provider.") and not n.split(".")[-1].startswith("_")] == [
        "llmopt.provider.echo"
    ]
    assert not {"openai", "anthropic", "llama_cpp", "jinja2"} & set(loaded)
