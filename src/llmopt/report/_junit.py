"""JUnit: the numbers of an assertion as properties, and a JUnit XML report of a run.

:func:`junit_properties` is the one writer of llmopt's properties: the pytest plugin
adds them to each assertion item (``--junitxml`` carries them) and the ``junit``
report format writes the same ones from a results document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..spec import AssertionSpec

#: Fields of an outcome in the results JSON written first, when present.
OUTCOME = ("metric", "observed", "expected", "delta")
#: Statistics of an outcome (``Verdict.stats_json``) written after the interval.
STATS = ("kind", "confidence", "test", "p_value", "p_adjusted", "mde", "margin", "underpowered", "needed_n")
#: What pytest's JUnit XML calls each outcome (passed has no element).
_ELEMENTS = {"failed": "failure", "error": "error", "skipped": "skipped"}


def asked_limits(a: "AssertionSpec") -> dict[str, float | None]:
    """The threshold or delta an assertion asks for (not in the outcome's fields)."""
    return {"min": a.min, "max": a.max, "min_delta": a.min_delta, "max_drop": a.max_drop}


def junit_properties(outcome: Mapping[str, Any], asked: Mapping[str, Any] | None = None) -> list[tuple[str, object]]:
    """Each property of an assertion outcome (results JSON form) once: what was
    measured and expected, the limits ``asked``, n, interval, p-value and power."""
    pairs: list[tuple[str, Any]] = [(key, outcome.get(key)) for key in OUTCOME]
    pairs += list((asked or {}).items()) + [("vs", outcome.get("vs")), ("n", outcome.get("n"))]
    ci = outcome.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        pairs += [("ci_low", ci[0]), ("ci_high", ci[1])]
    pairs += [(key, outcome.get(key)) for key in STATS]
    pairs.append(("baseline", (outcome.get("baseline") or {}).get("path")))
    return [(f"llmopt_{key}", _round(value)) for key, value in pairs if value is not None]


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _names(node_id: str) -> tuple[str, str]:
    """(classname, name) of a pytest node id, as pytest's own JUnit XML writes them."""
    parts = node_id.split("::")
    return ".".join([parts[0].replace("/", ".")] + parts[1:-1]), parts[-1]


def _testcase(suite: ET.Element, outcome: Mapping[str, Any]) -> None:
    classname, name = _names(str(outcome.get("id", "")))
    case = ET.SubElement(suite, "testcase", classname=classname, name=name)
    properties = ET.SubElement(case, "properties")
    for key, value in junit_properties(outcome):
        ET.SubElement(properties, "property", name=key, value=str(value))
    element = _ELEMENTS.get(str(outcome.get("outcome")))
    if element is not None:
        message = str(outcome.get("message") or "")
        ET.SubElement(case, element, message=message.splitlines()[0] if message else "").text = message


def junit_xml(results: Mapping[str, Any]) -> str:
    """A JUnit XML document with one test case per assertion of a results document."""
    outcomes = [a for entry in results.get("scenarios", []) for a in entry.get("assertions", [])]
    counts = {key: sum(1 for a in outcomes if a.get("outcome") == key) for key in _ELEMENTS}
    suite = ET.Element(
        "testsuite", name="llmopt", tests=str(len(outcomes)),
        failures=str(counts["failed"]), errors=str(counts["error"]), skipped=str(counts["skipped"]),
    )
    for outcome in outcomes:
        _testcase(suite, outcome)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


class JUnitFormat:
    """The ``junit`` report format: ``--llmopt-report junit.xml``."""

    name = "junit"
    suffixes = (".xml",)

    def write(self, results: Mapping[str, Any], path: Path) -> None:
        path.write_text(junit_xml(results), encoding="utf-8")
