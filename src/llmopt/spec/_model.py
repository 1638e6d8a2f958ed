"""The validated, frozen form of a spec: what travels past the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import format_location


@dataclass(frozen=True)
class Location:
    """Where something was written: file, 1-based line and column."""

    path: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        return format_location(self.path, self.line, self.col)


@dataclass(frozen=True)
class SplitSpec:
    """A seeded split of a task's cases by id into ``train``, ``dev`` and ``test``
    shares (each 0 to 1, summing to at most 1). With a test share, evaluation uses the
    test part and an optimization search selects on the dev part; a train-only split
    evaluates every case it does not train on."""

    train: float = 0.0
    seed: int = 0
    dev: float = 0.0
    test: float = 0.0

    @property
    def shares(self) -> dict[str, float]:
        return {"train": self.train, "dev": self.dev, "test": self.test}

    @property
    def held_out(self) -> bool:
        """Whether the split has a dev and a test part (what a search needs)."""
        return self.dev > 0 and self.test > 0


@dataclass(frozen=True)
class TaskSpec:
    """The cases to run: a dataset file or inline cases, and how to read them."""

    dataset: Path | None = None
    cases: tuple[Mapping[str, Any], ...] | None = None
    id_field: str | None = None
    expected_field: str | None = None
    input_field: str | None = None
    #: The field holding each case's relevant document ids (for retrieval metrics).
    relevant_field: str | None = None
    sample: int | None = None
    seed: int = 0
    repeat: int = 1
    #: How the scores of a case's ``repeat`` generations make its score:
    #: mean, majority, pass_at_k (the best) or pass_all_k (the worst).
    reduce: str = "mean"
    #: The field grouping cases (cluster-robust standard errors), if any.
    cluster_field: str | None = None
    location: Location | None = None
    #: A dataset of training cases (same formats and field mapping as ``dataset``).
    train: Path | None = None
    #: A seeded split of the cases into training and evaluation (evaluation uses the rest).
    split: SplitSpec | None = None
    #: Dev and test cases from their own files (instead of ``dataset`` with a split).
    dev_dataset: Path | None = None
    test_dataset: Path | None = None
    #: The part of a held-out split this task reads: ``dev`` (the search's candidates)
    #: or ``test``; None reads the evaluation part (test when there is one).
    part: str | None = None

    @property
    def held_out(self) -> bool:
        """Whether the task has separate dev and test cases."""
        return (self.split is not None and self.split.held_out) or (
            self.dev_dataset is not None and self.test_dataset is not None
        )


@dataclass(frozen=True)
class Guardrails:
    """What every rendered prompt of a recipe version must respect."""

    #: Most characters the whole rendered prompt (system, examples, user) may hold.
    max_length: int | None = None
    #: Phrases the rendered prompt must contain (exact text).
    required: tuple[str, ...] = ()
    #: Regular expressions the rendered prompt must not match (case-insensitive).
    forbidden: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.max_length is None and not self.required and not self.forbidden


#: How ``recipe.demos`` picks its training cases.
DEMO_SELECTS = ("random", "bootstrap", "similar")


@dataclass(frozen=True)
class DemosSpec:
    """``recipe.demos``: few-shot demonstrations drawn from the task's training cases.

    ``random`` takes a seeded sample of ``k``; ``bootstrap`` the first ``k`` training
    cases (in a seeded order) that ``teacher`` (default: the variant's own model)
    answers with a ``metric`` score of at least ``min_score``, its answers as the
    demonstrations'; ``similar`` the ``k`` training cases nearest each case's input by
    ``retriever``. They are sent as earlier user/assistant turns, or as the template's
    ``{{ demos }}`` when it uses that variable; ``examples: extend`` keeps the recipe's
    own examples before them, ``replace`` drops them.
    """

    k: int
    select: str = "random"
    seed: int = 0
    teacher: "ModelSpec | None" = None
    metric: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    min_score: float = 1.0
    retriever: str = "tfidf"
    examples: str = "extend"

    def identity(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class RecipeSpec:
    """The prompt: an optional system message and a user template (Jinja2).

    A recipe from the recipes folder (``recipe: {use: name@version}``) is resolved by
    the loader into this same form, with its name, version, field values, few-shot
    examples and guardrails; an inline recipe has no name and no guardrails.
    """

    template: str
    system: str | None = None
    name: str | None = None
    version: int | None = None
    #: The recipe's field values (defaults with the spec's values over them).
    fields: Mapping[str, Any] = field(default_factory=dict)
    #: Few-shot (user, assistant) pairs, rendered before the case.
    examples: tuple[tuple[str, str], ...] = ()
    guardrails: Guardrails = field(default_factory=Guardrails)
    #: Demonstrations drawn from the training cases at run time (None: none).
    demos: DemosSpec | None = None
    #: An instruction that replaces the system message, or fills the template's
    #: ``{{ instruction }}`` when it uses that variable (a search's proposals).
    instruction: str | None = None

    @property
    def ref(self) -> str | None:
        """``name@version`` for a recipe from the recipes folder, else None."""
        return f"{self.name}@{self.version}" if self.name is not None else None

    def identity(self) -> dict[str, Any]:
        """What defines the prompt, for the variant's identity."""
        return {
            "name": self.name,
            "version": self.version,
            "system": self.system,
            "template": self.template,
            "examples": [list(pair) for pair in self.examples],
            "fields": dict(self.fields),
            **({"demos": self.demos.identity()} if self.demos is not None else {}),
            **({"instruction": self.instruction} if self.instruction is not None else {}),
        }


@dataclass(frozen=True)
class RetrievalSpec:
    """The retrieval source whose text reaches the template as ``context``."""

    source: str | None = None
    retriever: str = "tfidf"
    top_k: int = 3
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """Which provider and model answer, with which parameters."""

    provider: str
    id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int | None = None
    base_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: USD per million tokens ({input, output, cached_input}) overriding the price table.
    price: Mapping[str, float] | None = None
    #: Seconds per request and SDK retries, for hosted providers (None: their defaults).
    timeout: float | None = None
    max_retries: int | None = None
    #: ``model.batch``: through the provider's batch API (True), never (False), or as
    #: ``--llmopt-batch`` says (None).
    batch: bool | None = None


@dataclass(frozen=True)
class FineTuneSpec:
    """How a variant's model is (or was) fine-tuned.

    ``hyperparameters`` is an open mapping: each backend checks the keys it reads when
    a job is prepared or submitted. ``training_file`` (absolute) records the JSONL the
    model was trained on, for the leakage check against the evaluation cases.
    """

    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    base: str | None = None
    training_file: Path | None = None
    location: Location | None = None


@dataclass(frozen=True)
class VariantSpec:
    """One variant of a scenario: the top level with its overrides merged in.

    ``model`` is None for a retrieval-only variant (``model: null``): its cases are
    retrieved for but not generated, and only retrieval metrics apply to it.
    """

    name: str
    task: TaskSpec
    recipe: RecipeSpec
    model: ModelSpec | None
    retrieval: RetrievalSpec | None = None
    finetune: FineTuneSpec | None = None
    #: Where the variant is declared (its key under ``variants:``; no line for the
    #: implicit ``default`` variant). Not part of the variant's identity.
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RegressionSpec:
    """``regression:``: the variant against its stored baseline, paired by case id."""

    max_drop: float
    confidence: float | None = None
    strict_identity: bool = False


@dataclass(frozen=True)
class AssertionSpec:
    """One assertion, bound to one variant (an assertion without ``variant`` is
    expanded to one AssertionSpec per variant by the loader)."""

    index: int
    metric: str
    variant: str
    args: Mapping[str, Any] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    vs: str | None = None
    min_delta: float | None = None
    #: With ``vs``: non-inferiority, the variant may be worse by at most this.
    max_drop: float | None = None
    #: The level of the confidence gate (None: the point estimate decides).
    confidence: float | None = None
    regression: RegressionSpec | None = None
    max_error_rate: float = 0.0
    location: Location | None = None
    #: The results name of the metric; the loader sets it to the bare metric name
    #: when every assertion on this metric in the scenario uses the same args.
    key: str | None = None
    #: ``confirmation`` for the search's confirmation of its winner (built from ``search.confirm``).
    role: str | None = None

    @property
    def is_delta(self) -> bool:
        return self.vs is not None

    @property
    def kind(self) -> str:
        """threshold, delta (superiority), non_inferiority or regression."""
        if self.regression is not None:
            return "regression"
        if self.vs is None:
            return "threshold"
        return "non_inferiority" if self.max_drop is not None else "delta"

    @property
    def gate_confidence(self) -> float | None:
        """The confidence the assertion gates at (a regression's own, else its own)."""
        if self.regression is not None and self.regression.confidence is not None:
            return self.regression.confidence
        return self.confidence

    @property
    def metric_key(self) -> str:
        """The name under which this metric's value is stored in results."""
        return self.key or metric_key(self.metric, self.args)


def metric_key(name: str, args: Mapping[str, Any]) -> str:
    """A stable label for a metric and its arguments (``regex(pattern=...)``)."""
    if not args:
        return name
    inner = ",".join(f"{k}={args[k]!r}" for k in sorted(args))
    return f"{name}({inner})"


@dataclass(frozen=True)
class Scenario:
    """A whole spec file after loading and validation."""

    id: str
    path: Path
    description: str = ""
    variants: Mapping[str, VariantSpec] = field(default_factory=dict)
    assertions: tuple[AssertionSpec, ...] = ()
    location: Location | None = None
    #: Multiple-comparison correction over the confident delta assertions ("holm").
    correction: str | None = None
    #: A stored baseline of another identity is an error rather than a warning.
    strict_identity: bool = False
    #: ``search:``, the optimization search over candidates (its winner is variant ``search``).
    search: "SearchSpec | None" = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def metrics_for(self, variant: str) -> dict[str, tuple[str, Mapping[str, Any]]]:
        """Every metric (key -> (name, args)) that some assertion needs on ``variant``."""
        needed: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for a in self.assertions:
            if a.variant == variant or a.vs == variant:
                needed[a.metric_key] = (a.metric, a.args)
        return needed


@dataclass(frozen=True)
class Axis:
    """One searched setting: a spec path (``retrieval.top_k``) and its alternatives.

    The generated axes: ``demos`` (values: ``recipe.demos`` settings, None for none)
    and ``instructions`` (values: 0 for the instruction as written, then proposal
    numbers 1, 2, ..., whose texts the search proposes before its rounds).
    """

    path: str
    values: tuple[Any, ...]
    #: ``path`` (a spec path), ``demos`` or ``instructions``.
    kind: str = "path"

    @property
    def target(self) -> str:
        """The spec path the axis's values are set at."""
        return {"demos": "recipe.demos", "instructions": "recipe.instruction"}.get(self.kind, self.path)


#: What a proposer may be shown: the task, and the current best's wrong answers.
PROPOSE_SOURCES = ("task", "failures")


@dataclass(frozen=True)
class ProposeSpec:
    """``search.axes.instructions``: how many instructions a proposer model writes.

    With ``failures`` among ``sources`` the proposals come in two rounds: the second
    is shown the wrong answers, on ``sample`` training cases, of the best instruction
    so far (as written, or of the first round's) beside their expected answers.
    """

    propose: int
    proposer: "ModelSpec | None" = None
    sources: tuple[str, ...] = ("task",)
    seed: int = 0
    #: Training cases shown to the proposer and, with ``failures``, scored for them.
    sample: int = 8
    location: "Location | None" = None


@dataclass(frozen=True)
class Candidate:
    """One point of a search's space: the level of every axis, the overrides over the
    top level that make it (its ``from`` variant's own, with the axis values merged
    in), and the variant built from them (reading the dev part of the task)."""

    name: str
    levels: Mapping[str, Any]
    overrides: Mapping[str, Any]
    variant: VariantSpec
    #: An earlier candidate that makes exactly the same requests (evaluated once).
    same_as: str | None = None
    #: The proposed instruction this candidate uses (1-based; None: as written).
    proposal: int | None = None


@dataclass(frozen=True)
class ConfirmSpec:
    """The one confirmation of a search's winner on the locked test split."""

    vs: str
    min_delta: float = 0.0
    confidence: float = 0.95
    #: Refuse to confirm on a test split that an earlier, different winner was confirmed on.
    fresh: bool = False
    location: Location | None = None


@dataclass(frozen=True)
class SearchSpec:
    """``search:``: a space of candidates, selected on dev, confirmed once on test."""

    source: str | None
    axes: tuple[Axis, ...]
    metric: str
    args: Mapping[str, Any]
    candidates: tuple[Candidate, ...]
    confirm: ConfirmSpec
    strategy: str = "grid"
    trials: int | None = None
    seed: int = 0
    eta: int = 3
    min_cases: int = 8
    budget_calls: int | None = None
    budget_usd: float | None = None
    #: The number of candidates in the whole space (a random search samples ``trials``).
    size: int = 0
    location: Location | None = None
    #: ``axes.instructions``: the proposals to write before the rounds (None: none).
    proposals: ProposeSpec | None = None

    @property
    def metric_key(self) -> str:
        return metric_key(self.metric, self.args)
