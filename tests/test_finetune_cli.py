"""``llmopt finetune``: prepare, submit, status and wait, through the real openai SDK
against the loopback fake of the files and fine-tuning endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from fakes.finetune_server import FAILED_ERROR, FakeFineTuning

from llmopt.cli import main
from llmopt.finetune import training_set
from llmopt.spec import load_scenario

KEY = "sk-test-FAKEKEY0123456789abcdef"
TRAIN = [
    ("t01", "How long is the refund window for online orders?", "30 days"),
    ("t02", "Can I return an item bought in a store to the website?", "No, only in a store"),
    ("t03", "Do you ship to Canada?", "Yes, in 5 to 7 days"),
    ("t04", "What payment methods do you accept?", "Cards and PayPal"),
    ("t05", "How do I reset my account password?", "Use the forgot password link"),
    ("t06", "Is gift wrapping available at checkout?", "Yes, for 3 dollars"),
    ("t07", "Where can I track my parcel?", "On the orders page"),
    ("t08", "Can I change the delivery address after ordering?", "Within one hour"),
    ("t09", "Do gift cards expire?", "Never"),
    ("t10", "What is the warranty on electronics?", "Two years"),
    ("t11", "Are there student discounts?", "Ten percent with a student card"),
]
EVAL = [
    ("e01", "Can I pay with a bank transfer?", "No"),
    ("e02", "How long does shipping to Mexico take?", "About 10 days"),
    ("e03", "Is there a loyalty programme?", "Yes, Acme Points"),
]
SPEC = """\
llmopt: 1
scenario: faq   # Acme help desk
task:
  dataset: eval.jsonl
  train: train.jsonl   # curated answers
  id: id
  expected: answer
  input: question
recipe:
  system: Answer in a few words.
  template: "Question: {{ question }}"
model:
  provider: openai
  id: gpt-4o-mini-2024-07-18
finetune:
  base: gpt-4o-mini-2024-07-18
  hyperparameters: {n_epochs: 2}
variants:
  base: {}
  # written by `llmopt finetune wait`
  tuned:
    finetune: {suffix: faq}
assertions:
  - metric: exact_match
    variant: tuned
    vs: base
"""


def rows(path: Path, items: list[tuple[str, str, str]]) -> None:
    path.write_text("".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n" for i, q, a in items))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows(tmp_path / "train.jsonl", TRAIN)
    rows(tmp_path / "eval.jsonl", EVAL)
    (tmp_path / "faq.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def fake() -> Iterator[FakeFineTuning]:
    with FakeFineTuning() as server:
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- prepare ------------------------------------------------------------------------------------


def test_prepare_writes_jsonl_whose_lines_equal_the_training_cases(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "finetune", "prepare", "faq.yaml", "--variant", "tuned", "--out", "data/train.jsonl")
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in (project / "data" / "train.jsonl").read_text().splitlines()]
    assert lines == [
        {
            "messages": [
                {"role": "system", "content": "Answer in a few words."},
                {"role": "user", "content": f"Question: {q}"},
                {"role": "assistant", "content": a},
            ]
        }
        for _, q, a in TRAIN
    ]
    data = training_set(load_scenario(project / "faq.yaml"), "tuned")
    assert out.splitlines()[0] == "faq::tuned: 11 training examples"
    assert "  valid" in out.splitlines()
    assert f"wrote 11 examples to data/train.jsonl ({data.data_hash})" in out
    cost = next(line for line in out.splitlines() if "estimated training cost" in line)
    assert cost.startswith("  estimated training cost: $0.0") and "over 2 epoch(s) on gpt-4o-mini-2024-07-18" in cost


def test_prepare_refuses_planted_exact_and_near_leaks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planted = [("e01", "can I pay with a BANK transfer", "No"), ("e02", "How long does shiping to Mexico take?", "10 days")]
    rows(project / "eval.jsonl", EVAL + [(f"x{i}", q, a) for i, (_, q, a) in enumerate([TRAIN[2], TRAIN[7]])])
    rows(project / "train.jsonl", TRAIN + [(f"p{i}", q, a) for i, (_, q, a) in enumerate(planted)])
    code, out, err = run(capsys, "finetune", "prepare", "faq.yaml", "--variant", "tuned", "--out", "train.out.jsonl")
    assert code == 1 and not (project / "train.out.jsonl").exists()
    assert err.splitlines() == [
        "4 leak(s): training inputs that equal or nearly equal evaluation inputs:",
        "  train 'p0' ~ eval 'e01': exact (1.000)",
        "  train 't03' ~ eval 'x0': exact (1.000)",
        "  train 't08' ~ eval 'x1': exact (1.000)",
        err.splitlines()[4],
        "refusing: drop or move these cases (or pass --allow-leakage)",
    ]
    assert err.splitlines()[4].startswith("  train 'p1' ~ eval 'e02': near (0.9")
    code, out, err = run(
        capsys, "finetune", "prepare", "faq.yaml", "--variant", "tuned", "--out", "train.out.jsonl", "--allow-leakage"
    )
    assert code == 0 and "going on anyway (--allow-leakage)" in out
    assert len((project / "train.out.jsonl").read_text().splitlines()) == 13


def test_prepare_refuses_invalid_data(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows(project / "train.jsonl", TRAIN[:4])
    code, out, _ = run(capsys, "finetune", "prepare", "faq.yaml", "--variant", "tuned", "--out", "t.jsonl")
    assert code == 1 and not (project / "t.jsonl").exists()
    assert "  problem: 4 example(s); at least 10 are needed" in out.splitlines()
    assert out.splitlines()[-1] == "  invalid: 1 problem(s)"


def test_prepare_needs_a_variant_when_there_are_several(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "finetune", "prepare", "faq.yaml", "--out", "t.jsonl")
    assert code == 2
    assert err == "llmopt: faq has 2 variants: choose one with --variant (base, tuned)\n"


# -- submit and wait -----------------------------------------------------------------------------


def test_submit_then_wait_writes_the_model_id_and_keeps_comments(
    project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned",
        "--learning-rate-multiplier", "0.5", "--base-url", fake.base_url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "uploaded faq-tuned.jsonl (" in out and "bytes) as file-fake0001" in out
    assert "created job ftjob-fake0001 (validating_files): gpt-4o-mini-2024-07-18" in out
    assert "follow it with: llmopt finetune wait ftjob-fake0001 --spec faq.yaml --variant tuned" in out
    uploaded = fake.files["file-fake0001"]["data"]
    assert uploaded == training_set(load_scenario(project / "faq.yaml"), "tuned").jsonl().encode()
    body = fake.jobs["ftjob-fake0001"].body
    assert body["model"] == "gpt-4o-mini-2024-07-18" and body["suffix"] == "faq"
    assert body["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2, "learning_rate_multiplier": 0.5}},
    }

    code, out, err = run(
        capsys, "finetune", "wait", "ftjob-fake0001", "--spec", "faq.yaml", "--variant", "tuned",
        "--interval", "0.01", "--base-url", fake.base_url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    model = "ft:gpt-4o-mini-2024-07-18:acme:faq:fake0001"
    statuses = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("[")]
    assert statuses == ["queued", "running", "succeeded, 2200 trained tokens"]
    assert f"info: New fine-tuned model created: {model}" in out
    assert out.splitlines()[-1] == f"wrote {model} into faq.yaml (variants.tuned.model.id)"
    after = (project / "faq.yaml").read_text()
    assert after == SPEC.replace("    finetune: {suffix: faq}\n", f"    finetune: {{suffix: faq}}\n    model:\n      id: {model}\n")
    assert load_scenario(project / "faq.yaml").variants["tuned"].model.id == model  # type: ignore[union-attr]


def test_wait_on_a_failed_job_exits_1_with_its_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeFineTuning(outcome="failed", running_polls=1) as fake:
        assert run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)[0] == 0
        code, out, err = run(
            capsys, "finetune", "wait", "ftjob-fake0001", "--spec", "faq.yaml", "--variant", "tuned",
            "--interval", "0.01", "--base-url", fake.base_url,
        )  # fmt: skip
    assert code == 1
    assert err == f"llmopt: job ftjob-fake0001 failed: {FAILED_ERROR['message']} (invalid_training_file)\n"
    assert f"error: {FAILED_ERROR['message']}" in out
    assert (project / "faq.yaml").read_text() == SPEC


def test_wait_times_out_without_touching_the_spec(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFineTuning(running_polls=1000) as fake:
        run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)
        code, _, err = run(
            capsys, "finetune", "wait", "ftjob-fake0001", "--spec", "faq.yaml", "--variant", "tuned",
            "--interval", "0.01", "--timeout", "0.05", "--base-url", fake.base_url,
        )  # fmt: skip
    assert code == 1 and err == "llmopt: job ftjob-fake0001 is still running after 0.05s; wait again later\n"
    assert (project / "faq.yaml").read_text() == SPEC


def test_wait_checks_the_variant_before_waiting(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "finetune", "wait", "ftjob-fake0001", "--spec", "faq.yaml", "--variant", "tunde", "--base-url", fake.base_url
    )
    assert code == 2 and err == "llmopt: faq: no variant 'tunde' (variants: base, tuned)\n"
    assert fake.paths == []


def test_status_shows_the_job_and_its_events(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)
    code, out, _ = run(capsys, "finetune", "status", "ftjob-fake0001", "--base-url", fake.base_url)
    assert code == 0
    assert out.splitlines() == [
        "job ftjob-fake0001: queued; base gpt-4o-mini-2024-07-18",
        "  22:13:21 info: Created fine-tuning job: ftjob-fake0001",
        "  22:13:22 info: Validated training file: file-fake0001",
    ]


def test_submit_uploads_a_given_file(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "finetune", "prepare", "faq.yaml", "--variant", "tuned", "--out", "mine.jsonl")[0] == 0
    code, out, _ = run(
        capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--file", "mine.jsonl", "--epochs", "4",
        "--base", "gpt-4.1-mini-2025-04-14", "--suffix", "v2", "--base-url", fake.base_url,
    )  # fmt: skip
    assert code == 0 and "uploaded mine.jsonl" in out
    assert fake.files["file-fake0001"]["data"] == (project / "mine.jsonl").read_bytes()
    body = fake.jobs["ftjob-fake0001"].body
    assert (body["model"], body["suffix"]) == ("gpt-4.1-mini-2025-04-14", "v2")
    assert body["method"]["supervised"]["hyperparameters"] == {"n_epochs": 4}


def test_submit_reads_the_base_url_from_the_environment(
    project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    assert run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned")[0] == 0
    assert "POST /v1/fine_tuning/jobs" in fake.paths


# -- errors ----------------------------------------------------------------------------------------


def test_missing_key_names_the_variable(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, _, err = run(capsys, "finetune", "status", "ftjob-x", "--base-url", fake.base_url)
    assert code == 2 and err == "llmopt: openai: no API key: set the environment variable OPENAI_API_KEY\n"
    assert fake.paths == []


def test_unknown_job_is_a_clear_error(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "finetune", "status", "ftjob-nope", "--base-url", fake.base_url)
    assert code == 2
    assert err == f"llmopt: openai: not found at {fake.base_url} (404): No fine-tuning job found with id 'ftjob-nope'.\n"


def test_rejected_key_is_mapped_and_redacted(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeFineTuning(accepted_key="sk-another-key-000000") as fake:
        code, _, err = run(capsys, "finetune", "status", "ftjob-x", "--base-url", fake.base_url)
    assert code == 2 and KEY not in err
    assert err == "llmopt: openai: authentication failed (401): check OPENAI_API_KEY: Incorrect API key provided: [redacted].\n"


def test_server_errors_after_retries_are_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "finetune", "status", "ftjob-x", "--base-url", "http://127.0.0.1:9/v1")
    assert code == 2 and err.startswith("llmopt: openai: could not connect to http://127.0.0.1:9/v1")


def test_hyperparameters_are_checked_for_the_backend(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    spec = project / "faq.yaml"
    spec.write_text(SPEC.replace("{n_epochs: 2}", "{n_epochs: 2, rank: 8, batch_size: -1}"))
    code, out, err = run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)
    assert code == 2 and out == ""
    assert err == (
        "llmopt: unknown hyperparameter 'rank' for openai (known: n_epochs, batch_size, learning_rate_multiplier, "
        "epochs); hyperparameter 'batch_size' must be 'auto' or a positive int, got -1\n"
    )
    assert fake.paths == []  # checked before any training data is prepared or sent


def test_submit_without_a_base_model(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "faq.yaml").write_text(SPEC.replace("  base: gpt-4o-mini-2024-07-18\n", ""))
    code, _, err = run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)
    assert code == 2 and err == "llmopt: no base model: pass --base or set finetune.base in the spec\n"


SERVER_ERROR = "openai: server error (500), still after 2 retries: The server had an error while processing your request."


def test_server_error_after_the_sdk_retries_is_an_error(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    fake.failures = [500, 500, 500]
    code, _, err = run(capsys, "finetune", "status", "ftjob-x", "--base-url", fake.base_url)
    assert code == 2 and err == f"llmopt: {SERVER_ERROR}\n"
    assert len(fake.paths) == 3  # the first try and the SDK's two retries


def test_wait_survives_a_passing_outage(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)
    fake.failures = [500, 500, 500, 503, 503, 503]
    code, out, _ = run(
        capsys, "finetune", "wait", "ftjob-fake0001", "--spec", "faq.yaml", "--variant", "tuned",
        "--interval", "0.01", "--base-url", fake.base_url,
    )  # fmt: skip
    assert code == 0
    failed = [line for line in out.splitlines() if line.startswith("poll failed")]
    assert failed[0] == f"poll failed (1/5): {SERVER_ERROR}; trying again"
    assert failed[1].startswith("poll failed (2/5): openai: server error (503)")
    assert "ft:gpt-4o-mini-2024-07-18:acme:faq:fake0001" in (project / "faq.yaml").read_text()


def test_wait_gives_up_on_a_lasting_outage(project: Path, fake: FakeFineTuning, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "finetune", "submit", "faq.yaml", "--variant", "tuned", "--base-url", fake.base_url)
    fake.failures = [500] * 15
    code, out, err = run(
        capsys, "finetune", "wait", "ftjob-fake0001", "--spec", "faq.yaml", "--variant", "tuned",
        "--interval", "0.01", "--base-url", fake.base_url,
    )  # fmt: skip
    assert code == 2 and err == f"llmopt: 5 polls in a row failed; last: {SERVER_ERROR}\n"
    assert out.count("poll failed") == 4
    assert (project / "faq.yaml").read_text() == SPEC
