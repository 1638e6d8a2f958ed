"""``llmopt finetune prepare | submit | status | wait``.

prepare writes a variant's training set as chat JSONL after validating it and
checking it for leaks into the evaluation cases; submit uploads it and creates a
job; status shows a job; wait follows a job to its end and writes the fine-tuned
model id into the spec. Exit codes: 0 done, 1 invalid data, leaks or a failed job,
2 a usage or spec error (printed by the ``llmopt`` command).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

from ..errors import FineTuneError, ProviderError, ProviderUnavailable
from ._commands import choose_variant, print_leaks, spec_scenario

if TYPE_CHECKING:
    from ..dataset._leaks import Leak
    from ..spec import Scenario
    from ._examples import ChatExample
    from ._jobs import Connection, FineTuningAPI, Job
    from ._validate import ValidationReport

__all__ = ["add_parser", "run"]

DEFAULT_INTERVAL_S = 10.0
#: Polls in a row that may fail (after the SDK's own retries) before ``wait`` gives up.
MAX_POLL_FAILURES = 5


def add_parser(sub: Any) -> None:
    """Add ``finetune`` and its subcommands to the ``llmopt`` parser's subparsers."""
    finetune = sub.add_parser("finetune", help="prepare training data, submit and follow fine-tuning jobs")
    commands = finetune.add_subparsers(dest="finetune_command", required=True)
    _prepare_parser(commands.add_parser("prepare", help="write a variant's training set as chat JSONL"))
    _submit_parser(commands.add_parser("submit", help="upload the training set and create a fine-tuning job"))
    status = commands.add_parser("status", help="show a fine-tuning job and its latest events")
    status.add_argument("job", help="the job id (ftjob-...)")
    _api_options(status)
    wait = commands.add_parser("wait", help="follow a job; on success write its model id into the spec")
    wait.add_argument("job", help="the job id (ftjob-...)")
    wait.add_argument("--spec", type=Path, required=True, help="the spec to write the fine-tuned model id into")
    wait.add_argument("--variant", required=True, help="the variant whose model.id is set")
    wait.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, metavar="S", help="seconds between polls (10)")
    wait.add_argument("--timeout", type=float, default=None, metavar="S", help="give up after S seconds (default: never)")
    _api_options(wait)
    from ._local_cli import add_train_parser

    add_train_parser(commands)


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="the spec file")
    parser.add_argument("--variant", help="the variant whose training cases and recipe are used (default: the only one)")
    parser.add_argument("--with-context", action="store_true", help="render each case with the variant's retrieved context")
    parser.add_argument(
        "--allow-leakage", action="store_true", help="go on when training inputs (nearly) equal evaluation inputs"
    )
    parser.add_argument("--threshold", type=float, default=0.9, help="TF-IDF cosine from which inputs are near duplicates (0.9)")
    parser.add_argument("--min-examples", type=int, default=10, metavar="N", help="fewest examples accepted (10)")
    parser.add_argument("--epochs", type=int, metavar="N", help="training epochs (for the cost estimate and the job)")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="project plugin module to load")


def _prepare_parser(parser: argparse.ArgumentParser) -> None:
    _data_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    parser.add_argument("--base", help="base model, for the cost estimate (default: finetune.base)")


def _submit_parser(parser: argparse.ArgumentParser) -> None:
    _data_options(parser)
    parser.add_argument("--base", help="the base model to fine-tune (default: finetune.base)")
    parser.add_argument("--file", type=Path, help="upload this JSONL instead of the spec's training set")
    parser.add_argument("--suffix", help="suffix of the fine-tuned model's name (default: finetune.suffix)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="hyperparameter batch_size")
    parser.add_argument("--learning-rate-multiplier", type=float, metavar="X", help="hyperparameter learning_rate_multiplier")
    parser.add_argument("--seed", type=int, help="the job's seed")
    _api_options(parser)


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help="API base URL (default: OPENAI_BASE_URL, else OpenAI's)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the ``finetune`` subcommand in ``args``; its exit code (output to ``out`` and
    ``err``, by default the process's stdout and stderr)."""
    commands: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
        "prepare": _prepare,
        "submit": _submit,
        "status": _status,
        "wait": _wait,
        "train": _train,
    }
    return commands[args.finetune_command](args, out or sys.stdout, err or sys.stderr)


def _train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._local_cli import run_train

    return run_train(args, out, err)


# -- prepare and submit: the training data ------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """Training data that passed the checks: the examples and their JSONL."""

    scenario: "Scenario"
    variant: str
    examples: tuple["ChatExample", ...]
    jsonl: bytes
    data_hash: str


def _prepare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    scenario = spec_scenario(args.spec, args.plugin)
    prepared = _checked_data(args, scenario, choose_variant(scenario, args.variant), out, err)
    if prepared is None:
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(prepared.jsonl)
    print(f"wrote {len(prepared.examples)} examples to {args.out} ({prepared.data_hash})", file=out)
    return 0


def _checked_data(args: argparse.Namespace, scenario: "Scenario", variant: str, out: TextIO, err: TextIO) -> _Prepared | None:
    """The training data of ``args``, validated and checked for leaks (reports printed);
    None when it must not be used."""
    import hashlib

    examples, leaks, jsonl = _data(args, scenario, variant)
    report = _report(args, scenario, variant, examples)
    print(f"{scenario.id}::{variant}: {len(examples)} training examples", file=out)
    print("\n".join(f"  {line}" for line in report.lines()), file=out)
    if leaks:
        print_leaks(leaks, args.allow_leakage, out, err)
    if not report.ok or (leaks and not args.allow_leakage):
        return None
    return _Prepared(scenario, variant, tuple(examples), jsonl, "sha256:" + hashlib.sha256(jsonl).hexdigest())


def _data(args: argparse.Namespace, scenario: "Scenario", variant: str) -> tuple[list["ChatExample"], list["Leak"], bytes]:
    """Examples, leaks and file bytes: from ``--file`` or the spec's training set."""
    file: Path | None = getattr(args, "file", None)
    if file is not None:
        from ._file import read_training_file
        from ._file_leaks import training_file_leaks

        return read_training_file(file), training_file_leaks(file, scenario, variant, args.threshold), file.read_bytes()
    from ._examples import training_set

    registry = None
    if args.with_context:
        from ..spec._project import Project

        registry = Project.of(scenario.path).registry(args.plugin)
    data = training_set(scenario, variant, with_context=args.with_context, registry=registry)
    return list(data.examples), data.leaks(args.threshold), data.jsonl().encode("utf-8")


def _report(
    args: argparse.Namespace, scenario: "Scenario", variant: str, examples: Sequence["ChatExample"]
) -> "ValidationReport":
    from ._validate import validate_examples

    finetune = scenario.variants[variant].finetune
    base = args.base or (finetune.base if finetune is not None else None)
    hyper = dict(finetune.hyperparameters) if finetune is not None else {}
    epochs = args.epochs or _int(hyper.get("n_epochs", hyper.get("epochs")))
    return validate_examples(examples, min_examples=args.min_examples, base_model=base, epochs=epochs)


# -- submit, status, wait: the job -----------------------------------------------------------


def _submit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    scenario = spec_scenario(args.spec, args.plugin)
    variant = choose_variant(scenario, args.variant)
    finetune = scenario.variants[variant].finetune
    base = args.base or (finetune.base if finetune is not None else None)
    if not base:
        raise FineTuneError("no base model: pass --base or set finetune.base in the spec")
    hyper = _hyperparameters(args, finetune.hyperparameters if finetune is not None else {})
    suffix = args.suffix or (finetune.suffix if finetune is not None else None)
    prepared = _checked_data(args, scenario, variant, out, err)
    if prepared is None:
        return 1
    name = args.file.name if args.file is not None else f"{scenario.id}-{variant}.jsonl"
    from ..engine.runner import run_sync

    job = run_sync(lambda: _upload_and_create(_api(args, base), name, prepared.jsonl, base, hyper, suffix, args.seed, out))
    print(f"created job {job.id} ({job.status}): {base}, hyperparameters {hyper or 'auto'}", file=out)
    print(f"follow it with: llmopt finetune wait {job.id} --spec {args.spec} --variant {variant}", file=out)
    return 0


async def _upload_and_create(
    api: "FineTuningAPI",
    name: str,
    data: bytes,
    base: str,
    hyper: dict[str, Any],
    suffix: str | None,
    seed: int | None,
    out: TextIO,
) -> "Job":
    async with api.connect() as connection:
        file_id = await connection.upload(name, data)
        print(f"uploaded {name} ({len(data)} bytes) as {file_id}", file=out)
        return await connection.create(base=base, training_file=file_id, hyperparameters=hyper, suffix=suffix, seed=seed)


def _hyperparameters(args: argparse.Namespace, spec_values: Any) -> dict[str, Any]:
    from ._jobs import openai_hyperparameters

    given = {"n_epochs": args.epochs, "batch_size": args.batch_size, "learning_rate_multiplier": args.learning_rate_multiplier}
    merged = openai_hyperparameters(dict(spec_values))
    merged.update({k: v for k, v in given.items() if v is not None})
    return openai_hyperparameters(merged)


def _status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..engine.runner import run_sync

    async def look() -> tuple["Job", list[Any]]:
        async with _api(args).connect() as connection:
            return await connection.job(args.job), await connection.events(args.job, limit=10)

    job, events = run_sync(look)
    print(job.summary(), file=out)
    print("\n".join(event.line() for event in events), file=out)
    return 0


def _wait(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..engine.runner import run_sync

    provider = _provider_to_write(args.spec, args.variant)
    try:
        job = run_sync(lambda: _follow(_api(args), args.job, args.interval, args.timeout, out))
    except KeyboardInterrupt:
        print(f"\nstopped waiting; job {args.job} goes on (wait for it again to write its model id)", file=err)
        return 130
    if job is None:
        print(f"llmopt: job {args.job} is still running after {args.timeout:g}s; wait again later", file=err)
        return 1
    if job.status != "succeeded" or not job.fine_tuned_model:
        reason = job.error or ("no model id in the finished job" if job.status == "succeeded" else "no error message")
        print(f"llmopt: job {job.id} {job.status}: {reason}", file=err)
        return 1
    from ._spec_edit import write_model_id

    write_model_id(args.spec, args.variant, job.fine_tuned_model, provider=provider)
    print(f"wrote {job.fine_tuned_model} into {args.spec} (variants.{args.variant}.model.id)", file=out)
    return 0


async def _follow(api: "FineTuningAPI", job_id: str, interval: float, timeout: float | None, out: TextIO) -> "Job | None":
    """Poll until the job ends (None after ``timeout``), printing each status change and
    each new event once."""
    import asyncio

    started = time.monotonic()
    seen: set[str] = set()
    last_status = ""
    failures = 0
    async with api.connect() as connection:
        while True:
            try:
                job = await connection.job(job_id)
                events = await _new_events(connection, job_id, seen)
                failures = 0
            except ProviderUnavailable:
                raise
            except ProviderError as exc:
                failures = _poll_failed(exc, failures, out)
            else:
                last_status = _progress(job, events, last_status, started, out)
                if job.done:
                    return job
            if timeout is not None and time.monotonic() - started + interval > timeout:
                return None
            await asyncio.sleep(interval)


def _poll_failed(exc: Exception, failures: int, out: TextIO) -> int:
    """Count a failed poll (the SDK's retries spent); raise after too many in a row, so
    a long wait survives a passing outage but not a lasting one."""
    failures += 1
    if failures >= MAX_POLL_FAILURES:
        raise FineTuneError(f"{failures} polls in a row failed; last: {exc}")
    print(f"poll failed ({failures}/{MAX_POLL_FAILURES}): {exc}; trying again", file=out)
    return failures


async def _new_events(connection: "Connection", job_id: str, seen: set[str]) -> list[Any]:
    events = [e for e in await connection.events(job_id) if e.id not in seen]
    seen.update(e.id for e in events)
    return events


def _progress(job: "Job", events: Sequence[Any], last_status: str, started: float, out: TextIO) -> str:
    for event in events:
        print(event.line(), file=out)
    if job.status != last_status:
        elapsed = time.monotonic() - started
        tokens = f", {job.trained_tokens} trained tokens" if job.trained_tokens else ""
        print(f"[{elapsed:6.0f}s] {job.id}: {job.status}{tokens}", file=out)
    out.flush()
    return job.status


# -- helpers -------------------------------------------------------------------------------------


def _api(args: argparse.Namespace, model: str | None = None) -> "FineTuningAPI":
    from ._jobs import FineTuningAPI

    return FineTuningAPI(args.base_url, model=model)


def _provider_to_write(spec: Path, variant: str) -> str | None:
    """"openai" when the variant's model is not an openai one yet (so the written id is
    served by the right provider); checks the spec and variant before any waiting."""
    from ..spec import load_scenario
    from ..spec._project import Project

    scenario = load_scenario(spec, display_path=str(spec), recipes=Project.of(spec).recipe_book())
    choose_variant(scenario, variant)
    model = scenario.variants[variant].model
    return None if model is not None and model.provider == "openai" else "openai"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
