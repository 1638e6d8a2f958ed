"""The recipes folder after loading: recipes, their versions and field definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import Problem
from ..spec._model import DemosSpec, Guardrails, Location, RecipeSpec

#: The field types a recipe may declare, and the Python values each accepts.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false"}
_NO_DEFAULT = object()


def show_value(value: Any) -> str:
    """A value as YAML users write it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


@dataclass(frozen=True)
class FieldSpec:
    """One customizable field of a recipe version."""

    name: str
    type: str
    default: Any = _NO_DEFAULT
    required: bool = False
    allowed: tuple[Any, ...] | None = None
    description: str = ""
    #: A value for ``llmopt recipes lint`` when the field has no default.
    example: Any = _NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def has_example(self) -> bool:
        return self.example is not _NO_DEFAULT

    def type_problem(self, value: Any) -> str | None:
        """Why ``value`` is not of this field's type, or None."""
        accepted = FIELD_TYPES[self.type]
        if isinstance(value, accepted) and (self.type == "boolean" or not isinstance(value, bool)):
            return None
        return f"expects {_TYPE_NAMES[self.type]}, got {show_value(value)}"

    def allowed_problem(self, value: Any) -> str | None:
        """Why ``value`` is not one of the allowed values, or None."""
        if self.allowed is None or value in self.allowed:
            return None
        return f"{show_value(value)} is not allowed (allowed: {', '.join(map(show_value, self.allowed))})"

    def value_problem(self, value: Any) -> str | None:
        return self.type_problem(value) or self.allowed_problem(value)

    def lint_value(self) -> Any:
        """The value lint renders with: the default, the example, the first allowed one."""
        if self.has_default:
            return self.default
        if self.has_example:
            return self.example
        return self.allowed[0] if self.allowed else f"<{self.name}>"

    def describe(self) -> dict[str, Any]:
        """The definition as written, for ``show`` and ``diff``."""
        out: dict[str, Any] = {"type": self.type}
        if self.has_default:
            out["default"] = self.default
        if self.required:
            out["required"] = True
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.description:
            out["description"] = self.description
        if self.has_example:
            out["example"] = self.example
        return out


@dataclass(frozen=True)
class RecipeVersion:
    """One version of a recipe, as written in its file."""

    name: str
    version: int
    template: str
    system: str | None = None
    description: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    guardrails: Guardrails = field(default_factory=Guardrails)
    location: Location | None = None
    #: Demonstrations drawn from the task's training cases at run time (None: none).
    demos: DemosSpec | None = None
    #: Where the version came from (``llmopt search --write`` records its search), as written.
    provenance: Mapping[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_spec(self, values: Mapping[str, Any]) -> RecipeSpec:
        """The frozen recipe a variant carries, with its field values."""
        return RecipeSpec(
            template=self.template,
            system=self.system,
            name=self.name,
            version=self.version,
            fields=dict(values),
            examples=self.examples,
            guardrails=self.guardrails,
            demos=self.demos,
        )

    def default_values(self) -> dict[str, Any]:
        """Every field's default (None for an optional field without one)."""
        return {n: f.default if f.has_default else None for n, f in self.fields.items() if not f.required}


def demos_mapping(demos: DemosSpec) -> dict[str, Any]:
    """``demos`` as a recipe file or a spec writes it: k, select, seed and examples,
    with what bootstrap (teacher, metric, args, min_score) or similar (retriever) reads."""
    out: dict[str, Any] = {"k": demos.k, "select": demos.select, "seed": demos.seed}
    if demos.select == "bootstrap":
        if demos.teacher is not None:
            teacher = demos.teacher
            out["teacher"] = {"provider": teacher.provider, **({"id": teacher.id} if teacher.id is not None else {})}
            out["teacher"].update({k: v for k, v in (("params", dict(teacher.params)), ("base_url", teacher.base_url)) if v})
        out.update({k: v for k, v in (("metric", demos.metric), ("args", dict(demos.args))) if v})
        out["min_score"] = demos.min_score
    if demos.select == "similar":
        out["retriever"] = demos.retriever
    out["examples"] = demos.examples
    return out


@dataclass(frozen=True)
class Recipe:
    """A recipe file: its name, versions, and the problems found in it."""

    name: str
    path: str
    versions: Mapping[int, RecipeVersion] = field(default_factory=dict)
    description: str = ""
    problems: tuple[Problem, ...] = ()

    @property
    def latest(self) -> int | None:
        return max(self.versions) if self.versions else None


@dataclass(frozen=True)
class RecipeBook:
    """Every recipe of the recipes folder, by name.

    ``unreadable`` holds the problems of files whose recipe name could not be read.
    """

    folder: str
    recipes: Mapping[str, Recipe] = field(default_factory=dict)
    unreadable: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return sorted(self.recipes)

    def find(self, name: str) -> Recipe | None:
        return self.recipes.get(name)

    @property
    def problems(self) -> list[Problem]:
        """Every problem of every file, files in name order."""
        found = [p for r in self.recipes.values() for p in r.problems]
        found += [p for problems in self.unreadable.values() for p in problems]
        return sorted(set(found), key=lambda p: (p.path, p.line or 0, p.col or 0, p.message))
