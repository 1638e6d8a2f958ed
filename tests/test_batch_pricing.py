"""Batch rates in the price table and in ``model.price``; ``model.batch`` in specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmopt.errors import SpecError
from llmopt.provider._pricing import Price, check_price, price_for
from llmopt.registry import create_registry
from llmopt.spec import load_scenario


def test_a_batch_costs_half_the_synchronous_rates_unless_named() -> None:
    price = Price(input=2.0, output=8.0, cached_input=1.0)
    assert price.batched() == Price(input=1.0, output=4.0, cached_input=0.5)
    assert price.batched().cost(1_000_000, 1_000_000) == pytest.approx(price.cost(1_000_000, 1_000_000) / 2)
    named = Price(input=2.0, output=8.0, batch_input=0.7, batch_output=3.0)
    assert named.batched() == Price(input=0.7, output=3.0, cached_input=1.0)


def test_the_shipped_table_prices_batches_at_half() -> None:
    price = price_for("gpt-4o-mini-2024-07-18")
    assert price is not None and price.batched().input == pytest.approx(price.input / 2)
    assert price.batched().cached_input == pytest.approx((price.cached_input or price.input) / 2)


def test_model_price_may_name_batch_rates() -> None:
    override = {"input": 1.0, "output": 2.0, "batch_input": 0.25, "batch_output": 0.5}
    assert check_price(override) == []
    price = price_for("m", override)
    assert price is not None and price.batched() == Price(input=0.25, output=0.5, cached_input=0.5)
    assert check_price({"input": 1, "output": 1, "batch": 1}) == [
        "unknown key model.price.batch (known: input, output, cached_input, batch_input, batch_output, batch_cached_input)"
    ]


SPEC = """\
llmopt: 1
scenario: s
task: {cases: [{id: a, question: q}]}
recipe: {template: "{{ question }}"}
model: {provider: openai, id: gpt-4o-mini, batch: BATCH}
assertions:
  - {metric: contains, min: 0}
"""


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False), ("null", None)])
def test_model_batch_is_read(tmp_path: Path, text: str, expected: bool | None) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.replace("BATCH", text))
    scenario = load_scenario(path, create_registry(entry_points=False))
    model = scenario.variants["default"].model
    assert model is not None and model.batch is expected


def test_model_batch_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.replace("BATCH", "often"))
    with pytest.raises(SpecError) as info:
        load_scenario(path, create_registry(entry_points=False))
    assert "model.batch" in str(info.value)
