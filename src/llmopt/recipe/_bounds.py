"""Bounds on rendering a template: the size of what it writes, how long it runs, and
the values it may build.

- **Size.** A rendered message is at most :attr:`RenderLimits.max_chars` characters:
  the output is counted as it is produced, and a string or list longer than that
  (``'ab' * 10**9``, a filter's result, a call's result) is refused when it is made.
- **Values.** An integer power or product of more than :data:`MAX_INT_BITS` bits
  (``10**10**9``) is refused before it is computed; ``range`` is bounded by the
  Jinja sandbox (100,000 items).
- **Time.** A render running past :attr:`RenderLimits.max_seconds` is interrupted: a
  watchdog thread raises :class:`RenderTimeout` in the rendering thread, which Python
  delivers between two steps of the template's code, so loops that print nothing stop
  too. Every operation a template can start that does not return to the interpreter
  quickly is bounded above, so a render also stays responsive to Ctrl-C.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.runtime import Context
    from jinja2.sandbox import SandboxedEnvironment

__all__ = [
    "LimitExceeded", "MAX_INT_BITS", "Parts", "RenderLimits", "RenderTimeout", "Watchdog", "bounded_environment",
    "joined", "text_and_names", "within_size",
]

#: The largest integer a power or product may make (about 4,500 digits: Python itself
#: refuses to print an integer of more than 4,300).
MAX_INT_BITS = 15_000


@dataclass(frozen=True)
class RenderLimits:
    """How much one rendered message may be: characters, and seconds of rendering."""

    max_chars: int = 1_000_000
    max_seconds: float = 5.0


class LimitExceeded(Exception):
    """A template went past a bound; the message says which."""


class RenderTimeout(BaseException):
    """Raised inside a render that ran past its time limit (a BaseException, so no
    ``except Exception`` in a template's filters or in Jinja swallows it)."""


def bounded_environment(limits: RenderLimits, **options: Any) -> "SandboxedEnvironment":
    """A Jinja2 sandbox whose values and filter results are bounded by ``limits``."""
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: "Context", operator: str, left: Any, right: Any) -> Any:
            _check_operands(operator, left, right, limits.max_chars)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: "Context", __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: B902, N805
            return _sized(super().call(__context, __obj, *args, **kwargs), limits.max_chars)

    env = BoundedSandbox(**options)
    env.filters = {name: _bounded_filter(f, limits.max_chars) for name, f in env.filters.items()}
    return env


def joined(chunks: Iterable[str], limits: RenderLimits, watchdog: "Watchdog") -> str:
    """The chunks a template's ``generate`` yields, joined, within ``limits``."""
    parts: list[str] = []
    total = 0
    deadline = time.monotonic() + limits.max_seconds
    with watchdog.watching(limits.max_seconds):
        for chunk in chunks:
            total += len(chunk)
            if total > limits.max_chars:
                raise _too_long(limits)
            if time.monotonic() > deadline:
                raise RenderTimeout()
            parts.append(chunk)
    return "".join(parts)


def within_size(text: str, limits: RenderLimits) -> str:
    """``text``, or LimitExceeded when it is longer than ``limits`` allow."""
    if len(text) > limits.max_chars:
        raise _too_long(limits)
    return text


def _too_long(limits: RenderLimits) -> LimitExceeded:
    return LimitExceeded(f"the rendered text is longer than {limits.max_chars:,} characters")


#: A template of text and bare variables, in order: (True, a variable's name) or
#: (False, text).
Parts = tuple[tuple[bool, str], ...]


def text_and_names(tree: "nodes.Template") -> Parts | None:
    """The parts of a template made of text and bare variables only
    (``Question: {{ question }}``), else None. Such a template writes its parts once
    each and calls, loops over and builds nothing: it is the text with each variable's
    ``str`` in its place, which takes the time of copying values already in memory,
    so it needs no watchdog (its size is still bounded). A filter, an attribute, a
    test, a literal or any statement makes it None."""
    from jinja2 import nodes

    parts: list[tuple[bool, str]] = []
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append((False, node.data))
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                parts.append((True, node.name))
            else:
                return None
    return tuple(parts)


def _check_operands(operator: str, left: Any, right: Any, max_chars: int) -> None:
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise LimitExceeded(f"{_shown(left)} ** {_shown(right)} is too large (over {MAX_INT_BITS:,} bits)")
    elif operator == "*" and ints:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise LimitExceeded(f"a product of over {MAX_INT_BITS:,} bits is too large")
    elif operator == "*":
        _check_repeat(left, right, max_chars)


def _check_repeat(left: Any, right: Any, max_chars: int) -> None:
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sequence, (str, list, tuple)) and isinstance(times, int) and times > 0:
        if len(sequence) * times > max_chars:
            raise LimitExceeded(f"a value of {len(sequence):,} x {times:,} items is too large (over {max_chars:,})")


def _sized(value: Any, max_chars: int) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > max_chars:
        raise LimitExceeded(f"a value of {len(value):,} items is too large (over {max_chars:,})")
    return value


def _bounded_filter(f: Callable[..., Any], max_chars: int) -> Callable[..., Any]:
    @functools.wraps(f)  # keeps Jinja's pass_context / pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        return _sized(f(*args, **kwargs), max_chars)

    return bounded


def _shown(n: int) -> str:
    return str(n) if n.bit_length() < 64 else f"an integer of {n.bit_length():,} bits"


class Watchdog:
    """Interrupts renders that run past their deadline (one thread, started on first
    use, shared by every render of one Renderer)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: dict[int, tuple[float, int]] = {}  # token -> (deadline, thread id)
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        #: When the watchdog thread wakes next (None: not until it is told).
        self._wake_at: float | None = None

    @contextmanager
    def watching(self, seconds: float) -> Iterator[None]:
        """Raise RenderTimeout in this thread when the block runs over ``seconds``."""
        token, thread = next(self._tokens), threading.get_ident()
        deadline = time.monotonic() + seconds
        with self._cond:
            self._active[token] = (deadline, thread)
            self._start()
            # Wake the thread only when it would sleep past this deadline: waking it for
            # every render makes the two threads fight over the interpreter lock.
            if self._wake_at is None or deadline < self._wake_at:
                self._wake_at = deadline
                self._cond.notify()
        try:
            yield
        finally:
            self._forget(token, thread)

    def _forget(self, token: int, thread: int) -> None:
        """Stop watching ``token``; a timeout raised for it but not yet delivered is
        dropped (the render ended first)."""
        while True:
            try:
                with self._cond:
                    self._active.pop(token, None)
                    if token in self._fired:
                        self._fired.discard(token)
                        _raise_in(thread, None)
                return
            except RenderTimeout:  # delivered while forgetting: the render is over anyway
                continue

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmopt-render-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, thread) in self._active.items():
                    if deadline <= now and token not in self._fired:
                        self._fired.add(token)
                        _raise_in(thread, RenderTimeout)
                waiting = [d for t, (d, _) in self._active.items() if t not in self._fired]
                self._wake_at = min(waiting) if waiting else None
                self._cond.wait(max(0.001, self._wake_at - now) if self._wake_at is not None else None)


def _raise_in(thread: int, exc: type[BaseException] | None) -> None:
    """Have ``thread`` raise ``exc`` at its next step (None: cancel a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None)
