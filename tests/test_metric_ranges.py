"""A check outside the values its metric can take is a spec error, found before any call."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from llmopt.cli import main

SPEC = """\
llmopt: 1
scenario: ranges
task: {{cases: [{{id: a, q: x, expected: x}}, {{id: b, q: y, expected: y}}]}}
recipe: {{template: "{{{{ q }}}}"}}
model: {{provider: echo}}
variants:
  base: {{}}
  other: {{}}
assertions:
{assertions}
"""


Validate = Callable[..., tuple[int, list[str]]]


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Validate:
    """``validate(*assertions, ini="")``: ``llmopt validate`` of a spec with those
    assertions, in a project of its own; its exit code and its lines."""
    monkeypatch.chdir(tmp_path)

    def run(*assertions: str, ini: str = "") -> tuple[int, list[str]]:
        if ini:
            (tmp_path / "pytest.ini").write_text(ini, encoding="utf-8")
        body = "\n".join(f"  - {a}" for a in assertions)
        (tmp_path / "spec.yaml").write_text(SPEC.format(assertions=body), encoding="utf-8")
        code = main(["validate", "spec.yaml"])
        return code, [line.strip() for line in capsys.readouterr().out.splitlines()]

    return run


def test_thresholds_outside_the_range_are_errors_at_their_lines(validate: Validate) -> None:
    code, out = validate(
        "{metric: contains, min: 1.5}",
        "{metric: exact_match, max: -0.1}",
        "{metric: latency_p95, min: -1}",
        "{metric: token_f1, max: 2}",
        "{metric: exact_match, variant: other, vs: base, min_delta: 1.2}",
        "{metric: exact_match, variant: other, vs: base, min_delta: -1.5}",
        "{metric: exact_match, variant: other, vs: base, max_drop: 1.5}",
    )
    assert code == 1
    assert out[1:8] == [
        "spec.yaml:10:29: assertions[0].min: min 1.5 can never be met: contains takes values from 0 to 1",
        "spec.yaml:11:32: assertions[1].max: max -0.1 can never be met: exact_match takes values from 0 to 1",
        "spec.yaml:12:32: assertions[2].min: min -1 is always met, so the check cannot fail: latency_p95 takes"
        " values of 0 or more",
        "spec.yaml:13:29: assertions[3].max: max 2 is always met, so the check cannot fail: token_f1 takes values"
        " from 0 to 1",
        "spec.yaml:14:64: assertions[4].min_delta: min_delta 1.2 can never be met: exact_match takes values from 0"
        " to 1, 1 apart at most",
        "spec.yaml:15:64: assertions[5].min_delta: min_delta -1.5 is always met, so the check cannot fail:"
        " exact_match takes values from 0 to 1, 1 apart at most",
        "spec.yaml:16:63: assertions[6].max_drop: max_drop 1.5 is always met, so the check cannot fail:"
        " exact_match takes values from 0 to 1, 1 apart at most",
    ]
    assert out[0] == "spec.yaml: 7 problems in spec:"


def test_thresholds_at_the_range_s_ends_and_unbounded_sides_are_fine(validate: Validate) -> None:
    code, out = validate(
        "{metric: contains, min: 1.0}",
        "{metric: exact_match, max: 0}",
        "{metric: latency_p95, max: 100000}",
        "{metric: cost, max: 0}",
        "{metric: exact_match, variant: other, vs: base, min_delta: 1}",
        "{metric: exact_match, regression: {max_drop: 1}}",
    )
    assert (code, out[-1]) == (0, "1 spec(s), 0 with problems"), out


PLUGIN = (
    "import llmopt\nfrom llmopt.metric import case_metric\n\n\n"
    "@case_metric(value_range=(0, 10))\n"
    "def stars(sample, args):\n    return 5\n\n\n"
    "@case_metric()\n"
    "def anything(sample, args):\n    return 5\n\n\n"
    "class Odd:\n    name = 'odd'\n    description = 'a range the wrong way round'\n"
    "    value_range = (1, 0)\n\n"
    "    def check_args(self, args):\n        return []\n\n"
    "    def score(self, sample, args):\n        return 0.5\n\n"
    "    def aggregate(self, samples, scores, args):\n        return 0.5\n\n\n"
    "@llmopt.hookimpl\ndef llmopt_metrics():\n    return [stars, anything{more}]\n"
)


def test_the_range_a_plugin_metric_declares_is_checked_and_a_malformed_one_named(
    tmp_path: Path, validate: Validate
) -> None:
    (tmp_path / "range_plugins").mkdir()
    module = tmp_path / "range_plugins" / "scores.py"
    module.write_text(PLUGIN.format(more=""), encoding="utf-8")
    ini = "[pytest]\nllmopt_plugins = range_plugins.scores\n"
    checks = ("{metric: stars, min: 11}", "{metric: stars, min: 9.5}", "{metric: anything, min: 1000}")
    code, out = validate(*checks, ini=ini)
    assert code == 1
    assert out[:2] == [
        "spec.yaml: 1 problem in spec:",
        "spec.yaml:10:26: assertions[0].min: min 11 can never be met: stars takes values from 0 to 10",
    ]
    module.write_text(PLUGIN.format(more=", Odd()"), encoding="utf-8")
    code, out = validate(*checks, ini=ini)
    assert code == 1
    assert out[0] == ("spec.yaml: metric 'odd' (range_plugins.scores) declares value_range (1, 0): it must be"
                      " (lowest, highest), each a number or None")


@pytest.mark.parametrize("declared", [(1, 0), (0, "10"), (True, None), (0,), "0-1", None])
def test_a_malformed_value_range_is_refused_when_the_metric_is_registered(declared: object) -> None:
    from llmopt.errors import PluginError
    from llmopt.metric import case_metric, declared_metric

    metric = case_metric(name="m", value_range=declared)(lambda sample, args: 1.0)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"metric 'm' \(.*\) declares value_range .*: it must be \(lowest, highest\)"):
        declared_metric(metric)


@pytest.mark.parametrize("declared", [(0, 1), [0, 10], (None, 5), (0.5, None), (None, None), (2, 2)])
def test_a_well_formed_value_range_is_kept(declared: object) -> None:
    from llmopt.metric import case_metric, declared_metric

    metric = case_metric(name="m", value_range=declared)(lambda sample, args: 1.0)  # type: ignore[arg-type]
    assert declared_metric(metric).value_range == declared


def test_a_mean_s_interval_stays_inside_the_range_its_metric_declares() -> None:
    from llmopt.engine.results import CaseResult
    from llmopt.metric import case_metric
    from llmopt.metric._values import aggregate

    @case_metric(value_range=(0, 10))
    def stars(sample: object, args: object) -> float:
        return 10.0

    @case_metric()
    def unbounded(sample: object, args: object) -> float:
        return 10.0

    cases = [CaseResult(id=f"c{i}", outputs=("x",), latencies_s=(0.1,), scores={"s": s})
             for i, s in enumerate([10, 10, 9, 10, 10, 8, 10])]
    bounded = aggregate(stars, {}, "s", cases)
    free = aggregate(unbounded, {}, "s", cases)
    assert bounded is not None and free is not None and free.ci is not None
    assert free.ci[1] > 10  # the t interval on its own runs past the top
    assert bounded.ci == (free.ci[0], 10.0)
    outside = [*cases, CaseResult(id="odd", outputs=("x",), latencies_s=(0.1,), scores={"s": 12})]
    assert aggregate(stars, {}, "s", outside).ci == aggregate(unbounded, {}, "s", outside).ci  # type: ignore[union-attr]
