"""One prompt builder: a case's training prompt is its evaluated prompt, byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmopt.engine.runner import Runner
from llmopt.finetune import training_set
from llmopt.recipe import load_book
from llmopt.registry import create_registry
from llmopt.spec import load_scenario

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    {"id": "refund", "question": "How long is the refund window?", "answer": "30 days"},
    {"id": "ship", "question": "Do you ship to Canada?", "answer": "Yes, in 5 to 7 days"},
    {"id": "cards", "question": "Which cards do you take?", "answer": "Visa and Mastercard"},
]
DOCS = {
    "refunds.md": "# Refunds\n\nThe refund window is 30 days for online orders.\n",
    "shipping.md": "# Shipping\n\nWe ship to Canada in 5 to 7 days.\n",
    "payment.md": "# Payment\n\nWe take Visa and Mastercard.\n",
}
RECORDER = '''\
import json
from pathlib import Path

def answer(messages, case):
    with open(Path(__file__).with_name("sent.jsonl"), "a", encoding="utf-8") as out:
        out.write(json.dumps({"id": case["id"], "messages": messages}) + "\\n")
    return "ok"
'''
RECIPES = {
    "inline": 'recipe:\n  system: "You answer in a few words. Ünïcode stays."\n  template: "Question: {{ question }}"\n',
    "use-v1": "recipe:\n  use: concise-qa@1\n  fields: {product: Acme}\n",
    "use-v2-examples": "recipe:\n  use: concise-qa@2\n  fields: {product: Acme, tone: formal}\n",
    "retrieval": (
        "recipe:\n  use: grounded-qa@1\n  fields: {product: Acme}\n"
        "retrieval:\n  source: docs\n  retriever: bm25\n  top_k: 2\n"
    ),
}


def project(tmp_path: Path, recipe: str) -> Path:
    (tmp_path / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    (tmp_path / "app.py").write_text(RECORDER, encoding="utf-8")
    (tmp_path / "docs").mkdir()
    for name, text in DOCS.items():
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    spec = tmp_path / "faq.yaml"
    spec.write_text(
        "llmopt: 1\nscenario: faq\n"
        "task:\n  dataset: faq.jsonl\n  train: faq.jsonl\n  id: id\n  input: question\n  expected: answer\n"
        f"{recipe}"
        "model:\n  provider: python\n  id: app.py:answer\n"
        "assertions:\n  - metric: contains\n    min: 0\n",
        encoding="utf-8",
    )
    return spec


@pytest.mark.parametrize("form", sorted(RECIPES))
def test_the_training_prompt_of_every_case_is_its_evaluated_prompt(tmp_path: Path, form: str) -> None:
    registry = create_registry(entry_points=False)
    path = project(tmp_path, RECIPES[form])
    scenario = load_scenario(path, registry, recipes=load_book(tmp_path / "recipes"))
    result = Runner(registry).evaluate(scenario, "default")
    assert result.errors == 0
    sent = {
        row["id"]: row["messages"]
        for row in map(json.loads, (tmp_path / "sent.jsonl").read_text(encoding="utf-8").splitlines())
    }
    trained = training_set(scenario, "default", with_context=form == "retrieval", registry=registry)
    assert [e.case_id for e in trained.examples] == [r["id"] for r in ROWS]
    for example in trained.examples:
        *prompt, answer = example.messages
        assert answer["role"] == "assistant"
        evaluated = json.dumps(sent[example.case_id], ensure_ascii=False).encode("utf-8")
        assert json.dumps(prompt, ensure_ascii=False).encode("utf-8") == evaluated
    if form == "retrieval":
        assert "30 days for online orders" in json.dumps(sent["refund"])
    if form == "use-v2-examples":
        assert [m["role"] for m in sent["refund"]] == ["system", "user", "assistant", "user"]
