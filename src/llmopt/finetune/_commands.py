"""What the fine-tuning commands share: loading the spec, choosing the variant,
showing leaks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TextIO

from ..errors import FineTuneError

if TYPE_CHECKING:
    from ..dataset._leaks import Leak
    from ..spec import Scenario

__all__ = ["choose_variant", "print_leaks", "spec_scenario"]


def spec_scenario(path: Path, plugins: Sequence[str]) -> "Scenario":
    """The spec at ``path`` with its own project's plugins and recipes."""
    from ..spec._project import load_spec

    if not path.is_file():
        raise FineTuneError(f"no such spec file: {path}")
    return load_spec(path, plugins)


def choose_variant(scenario: "Scenario", given: str | None) -> str:
    """The variant named by ``--variant``, or the only one."""
    names = list(scenario.variants)
    if given is not None:
        if given not in scenario.variants:
            raise FineTuneError(f"{scenario.id}: no variant {given!r} (variants: {', '.join(names)})")
        return given
    if len(names) == 1:
        return names[0]
    raise FineTuneError(f"{scenario.id} has {len(names)} variants: choose one with --variant ({', '.join(names)})")


def print_leaks(leaks: Sequence["Leak"], allowed: bool, out: TextIO, err: TextIO) -> None:
    """The leaks found, and whether the command goes on (``--allow-leakage``)."""
    shown = [f"  {leak}" for leak in leaks[:20]] + ([f"  ... and {len(leaks) - 20} more"] if len(leaks) > 20 else [])
    head = f"{len(leaks)} leak(s): training inputs that equal or nearly equal evaluation inputs:"
    if allowed:
        print("\n".join([head, *shown, "going on anyway (--allow-leakage)"]), file=out)
        return
    tail = "refusing: drop or move these cases (or pass --allow-leakage)"
    print("\n".join([head, *shown, tail]), file=err)
