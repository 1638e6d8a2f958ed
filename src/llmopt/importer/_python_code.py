"""The Python files an import writes: adapters to promptfoo's python providers and a
project plugin with the python assertions as metrics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ._asserts import PythonCode

_LOADER = '''
import importlib.util
import inspect
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _function(relative, name):
    path = (HERE / relative).resolve()
    spec = importlib.util.spec_from_file_location(f"_promptfoo_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)
'''

_PROVIDER_HEAD = '''"""Adapters from llmopt's python provider to promptfoo python providers.

Written by `llmopt import promptfoo`: each function calls the provider's
``call_api(prompt, options, context)`` and returns its ``output``.
"""
''' + _LOADER + '''

async def _call(relative, name, prompt, case, params):
    result = _function(relative, name)(prompt, {"config": dict(params)}, {"vars": dict(case)})
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, dict):
        if result.get("error"):
            raise RuntimeError(str(result["error"]))
        result = result.get("output", "")
    return result if isinstance(result, str) else __import__("json").dumps(result)
'''

_CHECKS_HEAD = '''"""promptfoo python assertions as llmopt metrics.

Written by `llmopt import promptfoo`; add this module to ``llmopt_plugins``. Each metric
scores 1.0 when the assertion passes: a bool is the verdict, a number passes above 0
(at least ``threshold`` when one is set), a mapping by its ``pass``/``pass_`` and ``score``.
"""
''' + _LOADER + '''
import llmopt
from llmopt.metric import CaseMetric


def _passed(result, threshold):
    if isinstance(result, dict):
        score = result.get("score")
        passed = bool(result.get("pass_", result.get("pass", True)))
        return passed and (threshold is None or score is None or float(score) >= threshold)
    if isinstance(result, bool):
        return result
    if isinstance(result, (int, float)):
        return result >= threshold if threshold is not None else result > 0
    raise llmopt.MetricError(f"a python assertion returned {result!r}: expected a bool, a number or a mapping")


def _inline(code):
    lines = code.strip("\\n").splitlines()
    if len(lines) == 1:
        return lambda output, context: eval(lines[0], {}, {"output": output, "context": context})
    body = "\\n".join("    " + line for line in lines)
    scope = {}
    exec(f"def _check(output, context):\\n{body}\\n", scope)
    return scope["_check"]


class PythonAssertion(CaseMetric):
    allowed_args = frozenset({"field", "negate", "threshold", "config"})

    def __init__(self, name, load):
        self.name = name
        self.description = f"promptfoo python assertion {name}"
        self._load = load
        self._check = None

    def _absent(self, sample, args):
        return "field" in args and sample.case.fields.get(args["field"]) is None

    def score(self, sample, args):
        if self._absent(sample, args):
            return 1.0
        self._check = self._check or self._load()
        variables = {k: v for k, v in sample.case.fields.items() if not k.startswith(("check_", "_"))}
        context = {"prompt": sample.input, "vars": variables, "test": {"vars": variables},
                   "config": dict(args.get("config") or {})}
        passed = _passed(self._check(sample.output, context), args.get("threshold"))
        return float(passed != bool(args.get("negate", False)))
'''


def provider_module(targets: Sequence[tuple[Path, str]], folder: Path) -> str:
    """The adapter module (written in ``folder``): ``call_1`` ... for each target."""
    out = [_PROVIDER_HEAD]
    for n, (path, function) in enumerate(targets, 1):
        relative = _relative(path, folder)
        out.append(f"\n\nasync def call_{n}(prompt, case, params):\n"
                   f"    return await _call({relative!r}, {function!r}, prompt, case, params)\n")
    return "".join(out)


def checks_module(checks: Sequence[tuple[str, PythonCode]], folder: Path) -> str:
    """The plugin module (written in ``folder``) registering each named python check."""
    out = [_CHECKS_HEAD, "\n\nMETRICS = [\n"]
    for name, code in checks:
        if code.file is not None:
            load = f"lambda: _function({_relative(code.file, folder)!r}, {code.function!r})"
        else:
            load = f"lambda: _inline({code.inline!r})"
        out.append(f"    PythonAssertion({name!r}, {load}),\n")
    out.append("]\n\n\n@llmopt.hookimpl\ndef llmopt_metrics():\n    return METRICS\n")
    return "".join(out)


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
