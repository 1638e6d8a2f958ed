"""Proposed instructions: a proposer model writes instruction candidates for a recipe.

The proposer (``search.axes.instructions.proposer``, else the ``from`` variant's model)
is shown the task (its description, the current instruction, the input and expected
field names, a seeded sample of training cases) and asked for one instruction per
request. With ``failures`` the proposals come in two rounds: the first half from the
task alone, then the instruction as written and each kept first-round proposal are
scored on the same training cases, and the second half is shown the best one and up
to five of its wrong answers beside the expected ones (as OPRO and GEPA do).

Every call goes through the call gateway, so it is cached (a rerun with the same seed
asks the same requests and reads the same texts), counted and held to the search's
limit; each request differs by its proposal number and seed. A proposal that is empty,
repeats the instruction as written or an earlier proposal, or makes a prompt that
breaks the recipe's guardrails is dropped, never silently: it stays in the list with
its reason. Only training cases are read here.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..engine.calls import Call, response_usage
from ..engine.results import Usage
from ..errors import BudgetExceeded, GuardrailError, LLMOptError, ProviderError, RenderError

if TYPE_CHECKING:
    from ..dataset import Case
    from ..engine.results import VariantResult
    from ..engine.runner import Runner
    from ..provider import Provider
    from ..recipe import Renderer
    from ..spec import ModelSpec, ProposeSpec, Scenario, VariantSpec

__all__ = ["Proposal", "Proposals", "ProposingStopped", "clean_proposal", "propose_instructions"]

#: Longest instruction kept (characters); a longer answer is cut at a word.
MAX_CHARS = 1000
#: Longest text of one training case (input, answer) shown to the proposer.
SHOWN_CHARS = 300
#: Most wrong answers shown in the failures round.
MAX_FAILURES = 5
#: Defaults of the proposer's generation parameters (its own params go over them).
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0.8, "max_tokens": 160}
#: Parameters of the ``from`` variant's model that shape its answers for evaluation, not
#: for proposing (a max_tokens of 8 for a label): left out when it is the proposer.
_ANSWER_SHAPING = ("temperature", "max_tokens", "max_completion_tokens", "seed", "stop")
#: Providers whose API refuses a ``seed`` parameter.
_NO_SEED = frozenset({"anthropic"})
#: One hint per proposal number (in turn), so even a greedy small model writes different texts.
HINTS = (
    "Keep it to one or two sentences.",
    "Say exactly what form the answer must take.",
    "Name the mistakes to avoid.",
    "Write it as a few short rules.",
    "Make it specific to this task.",
    "Say how to decide between the possible answers.",
)


@dataclass(frozen=True)
class Proposal:
    """One proposed instruction: its number (1-based, in the order written), its text,
    the round that wrote it, why it was dropped (None: kept) and, for a first-round
    proposal with ``failures``, its score on the training cases shown."""

    number: int
    text: str
    round: int
    dropped: str | None = None
    train_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "round": self.round, "text": self.text, "dropped": self.dropped,
                "train_score": self.train_score}


@dataclass
class Proposals:
    """Every proposal written (kept or dropped), what writing and scoring them used,
    the as-written instruction's training score (with ``failures``) and notes."""

    items: list[Proposal] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    base_train_score: float | None = None
    notes: list[str] = field(default_factory=list)

    def kept(self) -> list[Proposal]:
        return [p for p in self.items if p.dropped is None]

    def text_of(self, number: int) -> str | None:
        """The text of proposal ``number``; None when it was dropped (or not written)."""
        return next((p.text for p in self.items if p.number == number and p.dropped is None), None)

    def to_json(self) -> dict[str, Any]:
        kept = len(self.kept())
        return {
            "counts": {"proposed": len(self.items), "kept": kept, "dropped": len(self.items) - kept},
            "items": [p.to_json() for p in self.items],
            "base_train_score": self.base_train_score,
            "usage": self.usage.to_json(),
            "notes": list(self.notes),
        }


class ProposingStopped(BudgetExceeded):
    """The search's budget (or the run's) refused a proposer call: ``partial`` holds the
    proposals written before it and what they used."""

    def __init__(self, message: str, partial: Proposals) -> None:
        super().__init__(message)
        self.partial = partial


async def propose_instructions(
    runner: "Runner", scenario: "Scenario", spec: "ProposeSpec", start: "VariantSpec", metric: str,
    args: Mapping[str, Any], train: Sequence[Case],
) -> Proposals:
    """``spec.propose`` instruction candidates for ``start``'s recipe, written by
    ``spec.proposer`` (else ``start.model``) from ``train`` only.

    Raises the proposer's ProviderError (or ProviderUnavailable), CacheMiss in replay
    mode, and :class:`ProposingStopped` (a BudgetExceeded) when a limit refuses a call.
    """
    job = _Job(runner, scenario, spec, start, metric, args, train)
    return await job.run()


def clean_proposal(text: str) -> str:
    """A proposer's answer as an instruction: stripped of surrounding quotes, markdown
    fences and a leading ``Instruction:`` label, at most ``MAX_CHARS`` long."""
    text = text.replace("\r\n", "\n").strip()
    for _ in range(4):
        before = text
        text = _unquoted(_LABEL.sub("", _unfenced(text), count=1).strip())
        if text == before:
            break
    return _shortened(text)


_LABEL = re.compile(
    r"^(?:\*\*|__)?\s*(?:(?:new|improved|revised|better)\s+)?(?:instructions?|proposal)(?:\s+(?:number\s+)?#?\d+)?"
    r"\s*(?:\*\*|__)?\s*[:\-\u2013]\s*(?:\*\*|__)?\s*",
    re.IGNORECASE,
)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb", "`": "`"}


def _unfenced(text: str) -> str:
    if not text.startswith("```"):
        return text
    body = text[3:].split("\n", 1)[1] if "\n" in text else text[3:]
    return body.split("```", 1)[0].strip()


def _unquoted(text: str) -> str:
    close = _QUOTES.get(text[:1])
    if close is None or len(text) < 2 or not text.endswith(close) or close in text[1:-1]:
        return text
    return text[1:-1].strip()


def _shortened(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.split("\n"))).strip()
    if len(text) <= MAX_CHARS:
        return text
    cut = text[:MAX_CHARS]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return (cut[:space] if space > MAX_CHARS // 2 else cut).rstrip()


def _normal(text: str) -> str:
    """What two instructions must share to count as the same (case, spacing, a final stop)."""
    return " ".join(text.casefold().split()).rstrip(". ")


def _short(text: str, limit: int = SHOWN_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected_text(expected: Any) -> str:
    if isinstance(expected, str):
        return expected
    return "" if expected is None else json.dumps(expected, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class _Basis:
    """What the failures round is shown: the best instruction so far and its misses
    (input, its answer, expected)."""

    label: str
    text: str
    misses: tuple[tuple[str, str, str], ...]


class _Job:
    """One proposing: its proposer, the training cases shown, the proposals so far."""

    def __init__(
        self, runner: "Runner", scenario: "Scenario", spec: "ProposeSpec", start: "VariantSpec", metric: str,
        args: Mapping[str, Any], train: Sequence[Case],
    ) -> None:
        from ..recipe import Renderer
        from ..spec import metric_key

        self.runner, self.scenario, self.spec, self.start = runner, scenario, spec, start
        self.metric, self.args, self.key = metric, dict(args), metric_key(metric, args)
        self.where = f"{scenario.path.name} [{scenario.id}] search.axes.instructions"
        self.model = _proposer(spec, start, self.where)
        self.provider: "Provider" = runner.model_provider(self.model, scenario)
        self.sample = _sample(train, spec)
        self.renderer: "Renderer" = Renderer()
        self.current = _current_instruction(start)
        self.checkable = [c for c in self.sample if self._breach(start.recipe.instruction, c) is None]
        self.out = Proposals()

    async def run(self) -> Proposals:
        total = self.spec.propose
        first = math.ceil(total / 2) if "failures" in self.spec.sources else total
        await self._round(1, range(1, first + 1), None)
        if first < total:
            basis = await self._basis()
            await self._round(2, range(first + 1, total + 1), basis)
        self._add_notes()
        return self.out

    # -- writing ------------------------------------------------------------------------

    async def _round(self, number: int, proposals: range, basis: _Basis | None) -> None:
        for n in proposals:
            text = clean_proposal(await self._ask(n, self._prompt(n, basis)))
            self.out.items.append(Proposal(n, text, number, self._dropped(n, text)))

    async def _ask(self, number: int, prompt: str) -> str:
        from ..dataset import Case
        from ..provider import Request

        what = f"{self.where} proposal {number}"
        request = Request(messages=[{"role": "user", "content": prompt}], prompt=prompt,
                          case=Case(id=f"proposal-{number}"), params=self._params(number))
        try:
            response = await self.runner.calls.call(Call(self.provider, self.model.provider, request, what, "proposer"))
        except BudgetExceeded as exc:
            self._add_notes()
            written = f"{number - 1} of {self.spec.propose} proposals written"
            raise ProposingStopped(f"{exc} ({written})", self.out) from None
        except ProviderError as exc:
            raise _proposer_failed(exc, what) from None
        self.out.usage = self.out.usage + response_usage(response)
        return response.text

    def _params(self, number: int) -> dict[str, Any]:
        own = dict(self.model.params)
        if self.spec.proposer is None:
            own = {k: v for k, v in own.items() if k not in _ANSWER_SHAPING}
        params = {**DEFAULT_PARAMS, **own, "seed": self.spec.seed * 1000 + number}
        if "max_completion_tokens" in own and "max_tokens" not in own:
            params.pop("max_tokens")
        if self.model.provider in _NO_SEED:
            params.pop("seed")
        return params

    # -- the meta-prompt ------------------------------------------------------------------

    def _prompt(self, number: int, basis: _Basis | None) -> str:
        inp, exp = self._names()
        lines = ["You write instructions for an AI assistant."]
        if self.scenario.description.strip():
            lines.append(f"Task: {_short(self.scenario.description)}")
        lines += [f"The assistant reads the {inp} and must reply with the {exp}.",
                  f"Current instruction: {_short(self.current, MAX_CHARS)}"]
        if self.sample:
            lines += ["", "Examples:"]
            for case in self.sample:
                lines += [f"{inp}: {_short(self._input_of(case))}", f"{exp}: {_short(_expected_text(case.expected))}", ""]
        lines += self._basis_lines(basis, inp, exp)
        required = self.start.recipe.guardrails.required
        if required:
            lines.append("The instruction must contain: " + ", ".join(json.dumps(r, ensure_ascii=False) for r in required))
        hint = HINTS[(number - 1) % len(HINTS)]
        lines += [f"Write instruction number {number}: one new instruction that makes the assistant reply with "
                  f"the right {exp}. {hint}", "Reply with the instruction only."]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))

    @staticmethod
    def _basis_lines(basis: _Basis | None, inp: str, exp: str) -> list[str]:
        if basis is None:
            return []
        lines = [f"Best instruction so far ({basis.label}): {_short(basis.text, MAX_CHARS)}"]
        if not basis.misses:
            return lines + ["It got every example right. Write a clearer one.", ""]
        lines.append("It got these wrong:")
        for given, answer, expected in basis.misses:
            lines += [f"{inp}: {_short(given)}", f"Its answer: {_short(answer)}", f"Right {exp}: {_short(expected)}", ""]
        return lines

    def _names(self) -> tuple[str, str]:
        task = self.start.task
        return task.input_field or "input", task.expected_field or "answer"

    def _input_of(self, case: Case) -> str:
        name = self.start.task.input_field
        if name and name in case.fields:
            return str(case.fields[name])
        return "; ".join(f"{k}: {v}" for k, v in case.fields.items() if k != self.start.task.expected_field)

    # -- guardrails -----------------------------------------------------------------------

    def _dropped(self, number: int, text: str) -> str | None:
        """Why proposal ``number`` is dropped (None: kept)."""
        if not text:
            return "empty answer"
        if _normal(text) == _normal(self.current):
            return "the same as the instruction as written"
        same = next((p.number for p in self.out.items if p.text and _normal(p.text) == _normal(text)), None)
        if same is not None:
            return f"the same as proposal {same}"
        return next((found for case in self.checkable if (found := self._breach(text, case)) is not None), None)

    def _breach(self, instruction: str | None, case: Case) -> str | None:
        """Why the recipe with ``instruction`` cannot make ``case``'s prompt (None: it can)."""
        recipe = replace(self.start.recipe, instruction=instruction)
        where = f"{self.where} training case {case.id!r}"
        try:
            self.renderer.render(recipe, {**case.fields, "context": case.fields.get("context")}, where)
        except GuardrailError as exc:
            return f"breaks a guardrail on training case {case.id!r}: {str(exc).removeprefix(where + ': ')}"
        except RenderError as exc:
            return f"the prompt does not render for training case {case.id!r}: {str(exc).removeprefix(where + ': ')}"
        return None

    # -- the failures round -------------------------------------------------------------

    async def _basis(self) -> _Basis:
        """The best of the as-written instruction and the kept first-round proposals on
        the training sample, with its wrong answers."""
        if not self.sample:
            self.out.notes.append("no training cases to score: round 2 was shown no wrong answers")
            return _Basis("as written", self.current, ())
        score, best = await self._score("propose-as-written", None)
        self.out.base_train_score = score
        label, text = "as written", self.current
        for i, p in enumerate(self.out.items):
            if p.dropped is not None:
                continue
            value, result = await self._score(f"propose-r1-{p.number}", p.text)
            self.out.items[i] = replace(p, train_score=value)
            if self._better(value, score):
                score, best, label, text = value, result, f"proposal {p.number}", p.text
        shown = f"{score:.3f}" if score is not None else "no score"
        self.out.notes.append(f"round 2 was shown the wrong answers of the best on {len(self.sample)} training "
                              f"cases: {label} ({self.key} {shown})")
        return _Basis(label, text, self._misses(best))

    async def _score(self, name: str, instruction: str | None) -> "tuple[float | None, VariantResult]":
        recipe = self.start.recipe if instruction is None else replace(self.start.recipe, instruction=instruction)
        variant = replace(self.start, name=name, recipe=recipe, task=replace(self.start.task, part="train"))
        metrics = {self.key: (self.metric, self.args)}
        result = await self.runner.aevaluate_spec(self.scenario, variant, metrics, cases=self.sample)
        self.out.usage = self.out.usage + _result_usage(result)
        found = result.metrics.get(self.key)
        value = None if found is None or math.isnan(found.value) else float(found.value)
        return value, result

    def _better(self, value: float | None, best: float | None) -> bool:
        if value is None:
            return False
        if best is None:
            return True
        return value > best if self._higher_is_better else value < best

    @property
    def _higher_is_better(self) -> bool:
        return bool(self.runner.registry.metrics[self.metric].higher_is_better)

    def _misses(self, result: "VariantResult") -> tuple[tuple[str, str, str], ...]:
        """Up to MAX_FAILURES wrong answers (worst first, then in sample order): scores
        below the best value (1.0; 0.0 for a metric where lower is better)."""
        by_id = {c.id: c for c in self.sample}
        sign = 1.0 if self._higher_is_better else -1.0
        best = 1.0 if sign > 0 else 0.0
        scored = [(c, c.scores[self.key]) for c in result.cases if c.error is None and self.key in c.scores]
        wrong = sorted(((c, s) for c, s in scored if sign * s < sign * best), key=lambda pair: sign * pair[1])
        return tuple(
            (self._input_of(by_id[c.id]) if c.id in by_id else c.input, c.output or "", _expected_text(c.expected))
            for c, _ in wrong[:MAX_FAILURES]
        )

    def _add_notes(self) -> None:
        dropped = [p for p in self.out.items if p.dropped is not None]
        if dropped:
            reasons = "; ".join(f"proposal {p.number}: {p.dropped}" for p in dropped)
            self.out.notes.insert(0, f"{len(dropped)} of {len(self.out.items)} proposals dropped: {reasons}")
        unchecked = len(self.sample) - len(self.checkable)
        if unchecked:
            self.out.notes.append(f"the recipe as written does not make a valid prompt for {unchecked} of the "
                                  f"{len(self.sample)} training cases shown: proposals were checked on the others")
        if len(self.sample) < self.spec.sample:
            self.out.notes.append(f"only {len(self.sample)} training cases for sample={self.spec.sample}")


def _proposer(spec: "ProposeSpec", start: "VariantSpec", where: str) -> "ModelSpec":
    model = spec.proposer or start.model
    if model is None:
        raise LLMOptError(f"{where}: no proposer: the variant has no model; set search.axes.instructions.proposer")
    return model


def _sample(train: Sequence[Case], spec: "ProposeSpec") -> list[Case]:
    """A seeded sample of ``spec.sample`` training cases (in a fixed order of ids)."""
    pool = sorted((c for c in train if c.error is None), key=lambda c: c.id)
    return random.Random(f"llmopt-propose:{spec.seed}").sample(pool, min(max(0, spec.sample), len(pool)))


def _current_instruction(start: "VariantSpec") -> str:
    recipe = start.recipe
    for text in (recipe.instruction, recipe.system):
        if text is not None and text.strip():
            return text.strip()
    return recipe.template.strip()


def _result_usage(result: "VariantResult") -> Usage:
    usage = result.usage
    for extra in (result.judge_usage, result.retrieval_usage):
        if extra is not None:
            usage = usage + extra
    return usage


def _proposer_failed(exc: ProviderError, what: str) -> ProviderError:
    message = str(exc) if what in str(exc) else f"{what}: the proposer failed: {exc}"
    try:
        return type(exc)(message)
    except TypeError:  # an error class with another signature: keep the family
        return ProviderError(message)
