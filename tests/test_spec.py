"""Tests of llmopt.spec: YAML loading, schema and semantic checks, variants, assertions."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest

from llmopt.errors import SpecError
from llmopt.recipe import RecipeBook, load_book
from llmopt.spec import Scenario, is_spec_file, load_scenario, spec_schema
from llmopt.spec._model import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
SPECS = Path(__file__).resolve().parent / "specs"
VALID = sorted((SPECS / "valid").glob("*.yaml"))
INVALID = sorted((SPECS / "invalid").glob("*.yaml"))
RECIPES = ROOT / "tests" / "recipes" / "valid"


@dataclass
class FakeMetric:
    name: str
    required_args: tuple[str, ...] = ()
    asks_model: bool = False
    needs_output: bool = True
    needs_retrieval: bool = False

    def check_args(self, args: Mapping[str, Any]) -> list[str]:
        return [f"missing argument '{a}'" for a in self.required_args if a not in args]


@dataclass
class FakeProviderType:
    name: str
    needs_id: bool = False

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        return [f"{self.name} needs a model id"] if self.needs_id and not spec.id else []


@dataclass
class FakeRetrieverType:
    name: str

    def check(self, spec: Any, base_dir: Path) -> list[str]:
        return []


@dataclass
class FakeRegistry:
    metrics: dict[str, FakeMetric] = field(default_factory=dict)
    providers: dict[str, FakeProviderType] = field(default_factory=dict)
    retrievers: dict[str, FakeRetrieverType] = field(default_factory=dict)


@pytest.fixture
def registry() -> FakeRegistry:
    metrics = [FakeMetric(n) for n in ("exact_match", "contains", "token_f1", "json_valid", "latency_p95")]
    metrics.append(FakeMetric("regex", required_args=("pattern",)))
    providers = [FakeProviderType("echo"), FakeProviderType("openai", needs_id=True), FakeProviderType("python", needs_id=True)]
    retrievers = {"tfidf": FakeRetrieverType("tfidf")}
    return FakeRegistry({m.name: m for m in metrics}, {p.name: p for p in providers}, retrievers)


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _book() -> RecipeBook:
    return load_book(RECIPES, _shown)


def _load(path: Path, registry: FakeRegistry | None = None) -> Scenario:
    return load_scenario(path, registry, display_path=_shown(path), recipes=_book())  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path, registry: FakeRegistry | None = None) -> str:
    with pytest.raises(SpecError) as info:
        load_scenario(path, registry, display_path="spec.yaml")  # type: ignore[arg-type]
    return str(info.value)


MINIMAL = """\
llmopt: 1
scenario: minimal
task:
  cases: [{id: a, q: x}]
recipe:
  template: "{{ q }}"
model:
  provider: echo
"""


# -- fixtures: valid specs load, invalid specs give exactly the expected text -----------


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_fixture_loads(path: Path, registry: FakeRegistry) -> None:
    scenario = _load(path, registry)
    assert scenario.variants
    assert is_spec_file(path)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_reports_expected_text(path: Path, registry: FakeRegistry) -> None:
    expected = path.with_suffix(".expected.txt").read_text(encoding="utf-8").rstrip("\n")
    with pytest.raises(SpecError) as info:
        _load(path, registry)
    assert str(info.value) == expected


def test_every_invalid_fixture_has_expected_text() -> None:
    assert INVALID
    missing = [p.name for p in INVALID if not p.with_suffix(".expected.txt").is_file()]
    assert missing == []


# -- is_spec_file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["llmopt: 1\n", "# comment\n---\nllmopt : 1\n", "\ufeffllmopt: 1\n", "scenario: x\nllmopt: 1\n"],
)
def test_is_spec_file_finds_top_level_key(tmp_path: Path, text: str) -> None:
    assert is_spec_file(_write(tmp_path, text))


@pytest.mark.parametrize(
    "text", ["name: ci\n", "# llmopt: 1\n", "jobs:\n  llmopt: 1\n", "llmoptx: 1\n", ""]
)
def test_is_spec_file_ignores_other_yaml(tmp_path: Path, text: str) -> None:
    assert not is_spec_file(_write(tmp_path, text))


def test_is_spec_file_needs_a_yaml_file(tmp_path: Path) -> None:
    assert is_spec_file(_write(tmp_path, "llmopt: 1\n", "spec.yml"))
    assert not is_spec_file(_write(tmp_path, "llmopt: 1\n", "spec.txt"))
    assert not is_spec_file(tmp_path / "missing.yaml")
    (tmp_path / "dir.yaml").mkdir()
    assert not is_spec_file(tmp_path / "dir.yaml")


# -- the loaded model ----------------------------------------------------------------


def test_design_example_merges_variants(registry: FakeRegistry) -> None:
    scenario = _load(SPECS / "valid" / "design_example.yaml", registry)
    assert scenario.id == "support-faq"
    assert scenario.description == "Acme help-desk answers"
    assert list(scenario.variants) == ["baseline", "rag", "tuned", "tuned-rag"]
    baseline, rag, tuned = (scenario.variants[n] for n in ("baseline", "rag", "tuned"))
    assert baseline.recipe.template == "{{ question }}"
    assert baseline.recipe.system == "You answer help-desk questions."
    assert baseline.retrieval is None and tuned.retrieval is None
    assert rag.retrieval is not None and rag.retrieval.top_k == 3 and rag.retrieval.source == "../docs/"
    assert rag.model.id == "gpt-4o-mini-2024-07-18"
    assert tuned.model.id == "ft:gpt-4o-mini-2024-07-18:acme:faq:9zX"
    assert rag.model.params == {"temperature": 0, "max_tokens": 200}


def test_dataset_path_is_absolute_from_the_spec_folder(registry: FakeRegistry) -> None:
    scenario = _load(SPECS / "valid" / "design_example.yaml", registry)
    task = scenario.variants["rag"].task
    assert task.dataset == (SPECS / "data" / "qa.jsonl")
    assert (task.id_field, task.expected_field, task.sample, task.repeat, task.seed) == ("id", "answer", 50, 1, 0)
    assert task.location is not None and (task.location.line, task.location.col) == (6, 1)


def test_design_example_assertions(registry: FakeRegistry) -> None:
    scenario = _load(SPECS / "valid" / "design_example.yaml", registry)
    first, delta, latency = scenario.assertions
    assert (first.index, first.variant, first.min, first.max, first.is_delta) == (0, "tuned-rag", 0.8, None, False)
    assert (delta.variant, delta.vs, delta.min_delta, delta.is_delta) == ("rag", "baseline", 0.10, True)
    assert (latency.index, latency.max, latency.max_error_rate) == (2, 3.0, 0.0)
    assert latency.location is not None and str(latency.location) == "tests/specs/valid/design_example.yaml:41:5"
    assert scenario.metrics_for("baseline") == {"exact_match": ("exact_match", {})}


def test_assertion_without_variant_expands_to_every_variant(registry: FakeRegistry) -> None:
    scenario = _load(SPECS / "valid" / "merge_and_nulls.yaml", registry)
    delta = [a for a in scenario.assertions if a.index == 0]
    assert [a.variant for a in delta] == ["local", "same"]
    assert all(a.vs == "plain" and a.min_delta == 0.0 for a in delta)


def test_threshold_without_variant_applies_to_default(registry: FakeRegistry) -> None:
    scenario = _load(SPECS / "valid" / "inline_cases.yaml", registry)
    assert list(scenario.variants) == ["default"]
    regex = scenario.assertions[1]
    assert (regex.variant, regex.args, regex.max, regex.max_error_rate) == ("default", {"pattern": "^[0-9]+$"}, 1.0, 0.5)
    assert isinstance(regex.max, float)
    assert regex.metric_key == "regex"  # one set of args for this metric: the bare name


def test_inline_cases_are_kept(registry: FakeRegistry) -> None:
    task = _load(SPECS / "valid" / "inline_cases.yaml", registry).variants["default"].task
    assert task.dataset is None
    assert task.cases == ({"id": "a", "question": "1+1", "answer": "2"}, {"id": "b", "question": "2+3", "answer": "5"})


def test_null_removes_parts_and_merge_keys_work(registry: FakeRegistry) -> None:
    scenario = _load(SPECS / "valid" / "merge_and_nulls.yaml", registry)
    plain, local, same = (scenario.variants[n] for n in ("plain", "local", "same"))
    assert plain.recipe.system is None and plain.retrieval is None
    assert plain.model.params == {"max_tokens": 64}
    assert same.model.params == {"temperature": 0.2, "max_tokens": 64}
    assert (local.model.provider, local.model.id, local.model.concurrency) == ("python", "pipeline.py:answer", 4)
    assert local.model.base_url == "http://localhost:8000/v1"
    assert local.model.options == {"organization": "acme"}
    assert same.task.seed == 7


def test_retrieval_extra_settings_go_to_options(registry: FakeRegistry) -> None:
    retrieval = _load(SPECS / "valid" / "merge_and_nulls.yaml", registry).variants["same"].retrieval
    assert retrieval is not None
    assert (retrieval.source, retrieval.retriever, retrieval.top_k) == ("../docs", "tfidf", 5)
    assert retrieval.options == {"chunk": {"size": 400}, "lowercase": True}


def test_empty_variants_mean_the_top_level(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL + "variants:\n  x: null\n  y: {}\n")
    x, y = load_scenario(spec).variants.values()
    assert (x.name, y.name) == ("x", "y")
    assert (x.task, x.recipe, x.model, x.retrieval) == (y.task, y.recipe, y.model, None)
    assert x.recipe.template == "{{ q }}" and x.model.provider == "echo"


def test_scenario_path_and_default_display_path(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL)
    scenario = load_scenario(spec)
    assert scenario.path == spec.absolute() and scenario.base_dir == tmp_path
    assert scenario.location is not None and scenario.location.path == str(spec)
    assert (scenario.location.line, scenario.location.col) == (2, 1)


def test_yaml_scalars_become_plain_python(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        MINIMAL.replace("provider: echo", "provider: echo\n  params: {a: 0x10, b: 1_000, c: .inf, d: 2024-01-02, e: yes, f: ~}"),
    )
    params = load_scenario(spec).variants["default"].model.params
    assert params == {"a": 16, "b": 1000, "c": float("inf"), "d": "2024-01-02", "e": "yes"}
    assert type(params["a"]) is int and type(params["c"]) is float


# -- problems found outside the fixtures -------------------------------------------------


def test_missing_dataset_file_is_reported_once_at_the_dataset(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("cases: [{id: a, q: x}]", "dataset: nowhere.jsonl") + "variants: {a: {}, b: {}}\n")
    text = _problems(spec)
    assert text.startswith("1 problem in spec:\n  spec.yaml:4:12: task.dataset: dataset file not found: nowhere.jsonl")


def test_without_registry_names_are_not_checked(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("echo", "no-such-provider") + "assertions:\n  - {metric: nope, min: 1}\n")
    assert load_scenario(spec).assertions[0].metric == "nope"


def test_comparison_needs_another_variant(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL + "assertions:\n  - {metric: exact_match, vs: default}\n")
    assert _problems(spec) == "1 problem in spec:\n  spec.yaml:10:5: assertions[0]: nothing to compare: 'default' is the only variant"


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    spec = _write(tmp_path, MINIMAL.replace("  provider: echo", "  provider: echo\n  params:\n    " + "\n    ".join(levels)))
    assert "too many values (are aliases expanding?)" in _problems(spec)


def test_tagged_key_is_refused(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL + "!!python/name:os.system : 1\n")
    assert _problems(spec) == (
        "1 problem in spec:\n  spec.yaml:9:1: tag '!!python/name:os.system' is not allowed: a spec holds plain data only"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    text = _problems(tmp_path / "missing.yaml")
    assert text.startswith("1 problem in spec:\n  spec.yaml: cannot read the spec")


def test_not_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"llmopt: 1\nscenario: \xff\n")
    assert _problems(spec) == "1 problem in spec:\n  spec.yaml:2: the spec is not UTF-8 text"


def test_control_character(tmp_path: Path) -> None:
    spec = _write(tmp_path, "llmopt: 1\nscenario: a\x07\n")
    assert _problems(spec).endswith("spec.yaml:2:12: YAML error: character #x0007: special characters are not allowed")


def test_problems_are_sorted_by_line(tmp_path: Path, registry: FakeRegistry) -> None:
    spec = _write(tmp_path, "assertions:\n  - {metric: nope}\nllmopt: 3\nscenarioo: x\n")
    with pytest.raises(SpecError) as info:
        load_scenario(spec, registry)  # type: ignore[arg-type]
    lines = [p.line or 0 for p in info.value.problems]
    assert lines == sorted(lines) and len(lines) >= 4


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("  provider: echo", "  provider: echo\n  zzzz: 1"))
    assert _problems(spec).endswith(
        "spec.yaml:9:3: model.zzzz: unknown key 'zzzz' (valid keys: base_url, batch, concurrency, id, max_retries, options, params, price, provider, timeout)"
    )


# -- the schema ------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    schema = spec_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]


def _object_schemas(node: Any, where: str = "#") -> list[tuple[str, dict]]:
    found = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((where, node))
        for key, value in node.items():
            found += _object_schemas(value, f"{where}/{key}")
    return found


def test_schema_closes_every_object_and_describes_its_keys() -> None:
    objects = _object_schemas(spec_schema())
    assert len(objects) >= 7
    for where, node in objects:
        # Closed, or (search.axes, keyed by spec paths) every other key held to a schema.
        assert node.get("additionalProperties") is False or isinstance(node.get("additionalProperties"), dict), where
    assert isinstance(spec_schema()["properties"]["search"]["properties"]["axes"]["additionalProperties"], dict)
    for name, prop in spec_schema()["properties"].items():
        assert prop.get("description"), name
    for name in ("task", "recipe", "retrieval", "model", "assertion"):
        for key, prop in spec_schema()["$defs"][name]["properties"].items():
            assert prop.get("description"), f"{name}.{key}"


def test_spec_schema_returns_a_fresh_copy() -> None:
    spec_schema()["title"] = "changed"
    assert spec_schema()["title"] != "changed"


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_fixtures_match_the_schema_directly(path: Path) -> None:
    from jsonschema import Draft202012Validator
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(spec_schema()).iter_errors(data)) == []


# -- cost --------------------------------------------------------------------------------


def test_import_is_light() -> None:
    code = "import sys, llmopt.spec; print(sorted(m for m in ('ruamel.yaml', 'jsonschema', 'jinja2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_loading_a_valid_spec_is_fast(registry: FakeRegistry) -> None:
    path = SPECS / "valid" / "design_example.yaml"
    _load(path, registry)
    start = time.perf_counter()
    for _ in range(5):
        _load(path, registry)
    assert (time.perf_counter() - start) / 5 < 0.1


def test_same_metric_with_different_args_gets_distinct_keys(tmp_path: Path, registry: FakeRegistry) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "llmopt: 1\nscenario: two\ntask: {cases: [{id: a, q: x}]}\nrecipe: {template: '{{ q }}'}\n"
        "model: {provider: echo}\nassertions:\n"
        "  - {metric: regex, args: {pattern: a}, min: 0}\n  - {metric: regex, args: {pattern: b}, min: 0}\n"
        "  - {metric: exact_match, min: 0}\n",
        encoding="utf-8",
    )
    keys = [a.metric_key for a in load_scenario(spec, registry).assertions]  # type: ignore[arg-type]
    assert keys == ["regex(pattern='a')", "regex(pattern='b')", "exact_match"]


# -- numbers that fail open: NaN, infinities, numbers too large ----------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("  - {metric: exact_match, min: 0, max_error_rate: .nan}", "spec.yaml:10:51: assertions[0].max_error_rate: must be a finite number, got .nan"),
        ("  - {metric: exact_match, min: .inf}", "spec.yaml:10:32: assertions[0].min: must be a finite number, got .inf"),
        ("  - {metric: exact_match, max: -.inf}", "spec.yaml:10:32: assertions[0].max: must be a finite number, got -.inf"),
        ("  - {metric: exact_match, min: 1e400}", "spec.yaml:10:32: assertions[0].min: must be a finite number, got .inf"),
        ("  - {metric: exact_match, min: 0, confidence: .NaN}", "spec.yaml:10:47: assertions[0].confidence: must be a finite number, got .nan"),
        ("  - {metric: exact_match, min: 0, args: {threshold: .nan}}", "spec.yaml:10:53: assertions[0].args.threshold: must be a finite number, got .nan"),
        (
            "  - {metric: exact_match, min: " + "1" * 30 + "}",
            "spec.yaml:10:32: assertions[0].min: is too large: at most 9223372036854775807, got a number of 30 digits",
        ),
    ],
)
def test_non_finite_numbers_are_schema_errors_in_assertions(tmp_path: Path, edit: str, expected: str) -> None:
    spec = _write(tmp_path, MINIMAL + "assertions:\n" + edit + "\n")
    assert _problems(spec) == "1 problem in spec:\n  " + expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("price: {input: .nan, output: 1}", "model.price.input: must be a finite number, got .nan"),
        ("price: {input: 1, output: .inf}", "model.price.output: must be a finite number, got .inf"),
        ("timeout: .inf", "model.timeout: must be a finite number, got .inf"),
        ("concurrency: .inf", "model.concurrency: must be a finite number, got .inf"),
        ("max_retries: " + "9" * 40, "model.max_retries: is too large: at most 9223372036854775807, got a number of 40 digits"),
    ],
)
def test_non_finite_numbers_are_schema_errors_in_the_model(tmp_path: Path, model: str, expected: str) -> None:
    spec = _write(tmp_path, MINIMAL.replace("  provider: echo", "  provider: echo\n  " + model))
    assert _problems(spec).endswith(": " + expected)


def test_non_finite_numbers_are_refused_in_task_and_retrieval(tmp_path: Path) -> None:
    text = MINIMAL.replace("  cases:", "  split: {train: .nan}\n  sample: .inf\n  cases:") + (
        "retrieval: {source: ., top_k: .inf, embedding: {provider: openai, price: {input: .nan}}}\n"
    )
    assert _problems(_write(tmp_path, text)) == (
        "4 problems in spec:\n"
        "  spec.yaml:4:18: task.split.train: must be a finite number, got .nan\n"
        "  spec.yaml:5:11: task.sample: must be a finite number, got .inf\n"
        "  spec.yaml:11:31: retrieval.top_k: must be a finite number, got .inf\n"
        "  spec.yaml:11:82: retrieval.embedding.price.input: must be a finite number, got .nan"
    )


def test_generation_params_keep_their_values(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("  provider: echo", "  provider: echo\n  params: {x: .inf}"))
    assert load_scenario(spec).variants["default"].model.params == {"x": float("inf")}  # type: ignore[union-attr]


# -- top-level model: null -----------------------------------------------------------


def test_top_level_model_null_is_accepted_as_in_variants(tmp_path: Path) -> None:
    text = MINIMAL.replace("model:\n  provider: echo\n", "model: null\n") + "variants:\n  a: {model: {provider: echo}}\n"
    assert load_scenario(_write(tmp_path, text)).variants["a"].model.provider == "echo"  # type: ignore[union-attr]
    alone = MINIMAL.replace("model:\n  provider: echo\n", "model: null\n")
    assert _problems(_write(tmp_path, alone, "alone.yaml")) == "1 problem in spec:\n  spec.yaml:1:1: missing required key 'model'"


# -- every problem at once, those of files and folders included -------------------------


def test_schema_problem_and_missing_retrieval_folder_are_both_listed(tmp_path: Path) -> None:
    text = MINIMAL.replace("  cases:", "  sample: 0\n  cases:") + "retrieval: {source: no-docs/}\n"
    assert _problems(_write(tmp_path, text)) == (
        "2 problems in spec:\n"
        "  spec.yaml:4:11: task.sample: must be >= 1, got 0\n"
        f"  spec.yaml:10:1: retrieval: retrieval.source 'no-docs/' not found (resolved to {tmp_path / 'no-docs'})"
    )


def test_model_problem_and_missing_dataset_are_both_listed(tmp_path: Path, registry: FakeRegistry) -> None:
    text = MINIMAL.replace("cases: [{id: a, q: x}]", "dataset: nowhere.jsonl").replace("provider: echo", "provider: echo\n  temprature: 0")
    with pytest.raises(SpecError) as info:
        load_scenario(_write(tmp_path, text), registry, display_path="spec.yaml")  # type: ignore[arg-type]
    text_out = str(info.value)
    assert "task.dataset: dataset file not found: nowhere.jsonl" in text_out
    assert "model.temprature: unknown key 'temprature'" in text_out


# -- what Python itself refuses: each a problem with its place ------------------------


def test_deep_nesting_is_a_problem_at_its_line(tmp_path: Path) -> None:
    flow = _write(tmp_path, MINIMAL + "description: " + "[" * 600 + "]" * 600 + "\n", "flow.yaml")
    assert _problems(flow) == "1 problem in spec:\n  spec.yaml:9:77: mappings and lists nest more than 64 levels deep"
    block = "".join("  " * (i + 1) + f"k{i}:\n" for i in range(1, 300)) + "  " * 301 + "v: 1\n"
    nested = _write(tmp_path, MINIMAL.replace("  provider: echo", "  provider: echo\n  params:\n" + block), "block.yaml")
    assert _problems(nested) == "1 problem in spec:\n  spec.yaml:73:131: model.params: mappings and lists nest more than 64 levels deep"


def test_lone_surrogates_are_problems_and_never_reach_a_message(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("scenario: minimal", 'scenario: "\\ud800x"'))
    text = _problems(spec)
    text.encode("utf-8")
    assert "spec.yaml:2:11: scenario: holds a lone surrogate escape (such as \\ud800), which is not valid Unicode text" in text


def test_paths_the_system_refuses_are_problems(tmp_path: Path) -> None:
    long = "d" * 300
    text = MINIMAL.replace("cases: [{id: a, q: x}]", f"dataset: {long}.jsonl") + f"retrieval: {{source: {long}}}\n"
    assert _problems(_write(tmp_path, text)) == (
        "2 problems in spec:\n"
        f"  spec.yaml:4:12: task.dataset: dataset file cannot be read: {long[:60]}... (306 characters) (File name too long)\n"
        "  spec.yaml:9:1: retrieval: cannot check this path: File name too long"
    )


def test_a_symlink_loop_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    text = MINIMAL.replace("cases: [{id: a, q: x}]", "dataset: loop.jsonl")
    assert _problems(_write(tmp_path, text)) == (
        f"1 problem in spec:\n  spec.yaml:4:12: task.dataset: dataset file not found: loop.jsonl (resolved to {tmp_path / 'loop.jsonl'})"
    )


def test_huge_numbers_are_problems(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("  cases:", "  seed: " + "9" * 5000 + "\n  repeat: 0x" + "f" * 5000 + "\n  cases:"))
    assert _problems(spec) == (
        "2 problems in spec:\n"
        "  spec.yaml:4:9: task.seed: cannot read '999999999999999999999999999999... (5000 characters)' as !!int\n"
        "  spec.yaml:5:11: task.repeat: cannot read '0xffffffffffffffffffffffffffff... (5002 characters)' as !!int"
    )


def test_an_unexpected_failure_is_still_a_spec_error_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmopt.spec._loader as loader

    def boom(*args: Any) -> Any:
        raise TypeError("a bug")

    monkeypatch.setattr(loader, "schema_issues", boom)
    assert _problems(_write(tmp_path, MINIMAL)) == (
        "1 problem in spec:\n  spec.yaml: internal error while checking the spec (TypeError: a bug); please report it"
    )


def test_a_quoted_marker_marks_a_spec(tmp_path: Path) -> None:
    assert is_spec_file(_write(tmp_path, '"llmopt": 1\n'))
    assert is_spec_file(_write(tmp_path, "'llmopt': 1\n", "b.yaml"))


def test_case_data_may_hold_any_number(tmp_path: Path) -> None:
    spec = _write(tmp_path, MINIMAL.replace("cases: [{id: a, q: x}]", "cases: [{id: a, q: x, price: .nan, args: .inf}]"))
    assert load_scenario(spec).variants["default"].task.cases[0]["args"] == float("inf")  # type: ignore[index]
