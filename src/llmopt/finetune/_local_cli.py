"""``llmopt finetune train``: fine-tune the local model on a variant's training set.

The variant's training cases (``task.train`` or ``task.split``) are rendered with its
recipe, checked for leaks into its evaluation cases (refused unless
``--allow-leakage``), and a LoRA is trained on the base GGUF and stored as
``.llmopt/models/NAME/``; on success the variant's ``model`` becomes
``{provider: local, id: ft:NAME}`` in the spec (comments kept).

The base model is ``--base``, else the variant's ``finetune.base``, else its
``model.id`` (when that is a GGUF path or the embedded model's name), else the
embedded model. Hyperparameters are the variant's ``finetune.hyperparameters``
with flags on top.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import FineTuneError

if TYPE_CHECKING:
    from ..spec import Scenario, VariantSpec
    from ._examples import TrainingSet

__all__ = ["add_train_parser", "run_train"]

#: Flags that set a hyperparameter, with their types (``--target-modules q_proj,v_proj``).
_FLAGS: dict[str, Any] = {
    "rank": int, "alpha": float, "target_modules": str, "epochs": int, "learning_rate": float,
    "batch_size": int, "max_length": int, "seed": int, "threads": int,
}


def add_train_parser(commands: Any) -> None:
    """Add ``train`` to the ``finetune`` subcommands."""
    parser = commands.add_parser("train", help="train a LoRA of the local model on a variant's training set")
    parser.add_argument("spec", type=Path, help="the spec file")
    parser.add_argument("--variant", help="the variant whose training cases and recipe are used (default: the only one)")
    parser.add_argument("--name", required=True, help="the model's name: stored in .llmopt/models/NAME, used as ft:NAME")
    parser.add_argument("--base", help="base GGUF file (default: finetune.base, the variant's model, the embedded model)")
    parser.add_argument(
        "--allow-leakage", action="store_true", help="go on when training inputs (nearly) equal evaluation inputs"
    )
    parser.add_argument("--threshold", type=float, default=0.9, help="TF-IDF cosine from which inputs are near duplicates (0.9)")
    parser.add_argument("--no-write", action="store_true", help="do not write ft:NAME into the spec")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="project plugin module to load")
    for key, kind in _FLAGS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, help=f"hyperparameter {key}")


def run_train(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``llmopt finetune train``; 0 when the model was stored, 1 for leaked data."""
    from ..provider._adapters import models_home
    from ._commands import choose_variant, spec_scenario
    from ._local import LocalRun, check_name, train_local
    from ._lora_settings import lora_settings

    out, err = out or sys.stdout, err or sys.stderr
    name = check_name(args.name)
    scenario = spec_scenario(args.spec, args.plugin)
    variant = choose_variant(scenario, args.variant)
    spec = scenario.variants[variant]
    settings = lora_settings(_hyperparameters(spec, args))
    data = _training_set(scenario, variant)
    print(f"{scenario.id}::{variant}: {len(data.examples)} training examples ({data.data_hash})", file=out)
    if not _leaks_ok(data, args, out, err):
        return 1
    run = LocalRun(
        name=name,
        base=_base(spec, args.base, scenario.base_dir),
        examples=tuple(e.messages for e in data.examples),
        settings=settings,
        data_hash=data.data_hash,
        folder=models_home(scenario.base_dir) / name,
        source={"spec": _shown(args.spec), "scenario": scenario.id, "variant": variant},
        rebuild=_rebuild(args, variant),
    )
    print(f"hyperparameters: {settings.as_dict()}", file=out)
    manifest = train_local(run, lambda line: print(line, file=out, flush=True))
    print(f"stored {run.folder} (adapter {manifest['adapter']['bytes']} bytes, final loss {manifest['final_loss']})", file=out)
    _write_spec(args, spec, variant, name, out)
    return 0


def _hyperparameters(spec: "VariantSpec", args: argparse.Namespace) -> dict[str, Any]:
    values = dict(spec.finetune.hyperparameters) if spec.finetune is not None else {}
    values.update({k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None})
    return values


def _training_set(scenario: "Scenario", variant: str) -> "TrainingSet":
    from ._examples import training_set

    data = training_set(scenario, variant)
    if not data.examples:
        raise FineTuneError(f"{scenario.id}::{variant}: no training cases (set task.train or task.split)")
    return data


def _leaks_ok(data: "TrainingSet", args: argparse.Namespace, out: TextIO, err: TextIO) -> bool:
    """Print the leaks as ``prepare`` does; False when they stop the run."""
    from ._commands import print_leaks

    leaks = data.leaks(args.threshold)
    if not leaks:
        print("leakage check: no training input equals or nearly equals an evaluation input", file=out)
        return True
    print_leaks(leaks, args.allow_leakage, out, err)
    return args.allow_leakage


def _base(spec: "VariantSpec", given: str | None, base_dir: Path) -> Path:
    """The base GGUF to train on (see the module's docstring for the order)."""
    from ..provider._adapters import finetuned_name
    from ..provider._gguf import default_model_path, is_default_alias

    model_id = spec.model.id if spec.model is not None and spec.model.provider == "local" else None
    if finetuned_name(model_id) is not None:
        model_id = None
    chosen = given or (spec.finetune.base if spec.finetune is not None else None) or model_id
    if is_default_alias(chosen):
        return default_model_path()
    assert chosen is not None
    path = Path(chosen).expanduser()
    path = path if path.is_absolute() or given else base_dir / path
    if not path.is_file():
        raise FineTuneError(f"base model file not found: {path}")
    return path.resolve()


def _write_spec(args: argparse.Namespace, spec: "VariantSpec", variant: str, name: str, out: TextIO) -> None:
    from ..provider._adapters import FT_PREFIX
    from ._spec_edit import write_model_id

    if args.no_write:
        return
    provider = None if spec.model is not None and spec.model.provider == "local" else "local"
    write_model_id(args.spec, variant, f"{FT_PREFIX}{name}", provider=provider)
    print(f"wrote {FT_PREFIX}{name} into {args.spec} (variants.{variant}.model.id)", file=out)


def _rebuild(args: argparse.Namespace, variant: str) -> str:
    """The command that trains the same model again (the flags given included)."""
    parts = ["llmopt", "finetune", "train", _shown(args.spec), "--variant", variant, "--name", args.name]
    if args.base:
        parts += ["--base", args.base]
    for key in _FLAGS:
        value = getattr(args, key, None)
        if value is not None:
            parts += [f"--{key.replace('_', '-')}", str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)
