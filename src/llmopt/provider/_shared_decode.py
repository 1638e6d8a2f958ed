"""Greedy answers of one local model decoded side by side, each bit for bit what it is alone.

Decoding one token costs a 135M model on a 2-core CPU about as much for four answers in
one llama.cpp batch as for one, so answers that are asked for at the same time are
decoded together. An answer must stay a function of its own request, never of what it
was batched with, so the decoder keeps to the batch shapes under which llama.cpp's CPU
kernels give every row exactly the values it gets alone (measured and held by a test on
the real model):

* every answer has its own KV stream (``kv_unified`` off), so its attention sees its own
  cells in their own order, as in a context of its own;
* a prompt is evaluated in the same ``n_batch`` chunks as :meth:`llama_cpp.Llama.eval`
  does, and never beside another prompt (two prompts in one call get other values:
  measured); its last chunk may carry one token of other answers, unless it started
  from kept cells;
* a decode call that carries several answers carries one token of each, and only of
  answers shorter than :data:`SHARED_CELLS`; a longer one is decoded alone;
* a slot keeps the cells of the last prompt it evaluated, and a new prompt starts from
  the cells it shares with one of them when that gives every row the values it gets
  evaluated whole (:func:`reusable`): llama.cpp's CPU flash attention takes a tiled path
  for a stream with at least :data:`TILED_ROWS` rows in a call, which gives a row the
  same values whatever the call's size, so only such cells and calls are reused (measured);
* the next token is the first maximum of the logits, which is what llama.cpp's greedy
  sampler picks when no penalty is set.

Only such requests take this path (:func:`shared_ok`); the rest run one at a time on
the model's own context. :class:`SharedDecoder` stands in for ``Llama.generate`` through
a thread-local route, so llama-cpp-python's own chat formatting, stop strings, UTF-8
handling and usage counts are the ones every answer goes through.
"""

from __future__ import annotations

import contextlib
import ctypes
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

__all__ = ["SHARED_CELLS", "SLOTS", "TILED_ROWS", "SharedDecoder", "reusable", "shared_llama_class", "shared_ok"]

#: How many answers are decoded together at most (each keeps a context of ``n_ctx``).
SLOTS = 8
#: At most this many KV cells in all (8 answers of 2,048 tokens, about 360 MB).
_MAX_CELLS = 16384
#: Answers are decoded together only while their next token's position is below this:
#: past it, llama.cpp's CPU flash attention splits a lone query's cells among threads,
#: which sums them in another order than when several queries share a call (measured).
SHARED_CELLS = 256
#: A prompt's rows take llama.cpp's tiled attention when a call carries this many of them.
TILED_ROWS = 64
#: A decoder thread with nothing to do for this long ends (the next request starts one).
_LINGER_S = 2.0
_END = object()

_route = threading.local()


#: The sampling settings under which llama.cpp's greedy sampler picks the plain argmax.
_NEUTRAL = {"temperature": 0.0, "repeat_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}


def shared_ok(options: Mapping[str, Any]) -> bool:
    """Whether a request's options leave the next token the plain argmax (greedy, and
    every penalty neutral), which is what the shared decoder computes."""
    return all(options.get(k) is None or float(options[k]) == neutral for k, neutral in _NEUTRAL.items())


def _neutral(kw: Mapping[str, Any]) -> bool:
    """The same for the keywords llama-cpp-python passes ``Llama.generate``."""
    return (
        shared_ok({**kw, "temperature": kw.get("temp")})
        and kw.get("grammar") is None
        and kw.get("logits_processor") is None
        and not kw.get("mirostat_mode")
    )


def reusable(kept: Sequence[int], prompt: Sequence[int], n_batch: int) -> int:
    """How many leading cells of a stream holding the prompt ``kept`` (evaluated in
    ``n_batch`` chunks) may stand for ``prompt``'s, so that evaluating the rest gives
    every row the values it gets when ``prompt`` is evaluated whole.

    Whole ``n_batch`` chunks are always the same. Within a chunk, the cells kept must
    come from the same attention path as ``prompt``'s own chunk there (at least
    :data:`TILED_ROWS` rows, or fewer), and the rows left to evaluate must take that
    tiled path too (below it, a LoRA model's answers were seen to change). At least one
    row is always left to evaluate.
    """
    n, limit, shared = len(prompt), min(len(kept), len(prompt) - 1), 0
    while shared < limit and kept[shared] == prompt[shared]:
        shared += 1
    start = shared // n_batch * n_batch
    end, kept_end = min(start + n_batch, n), min(start + n_batch, len(kept))
    if shared == start or min(end, kept_end) - start < TILED_ROWS:  # not both tiled
        return start
    return max(start, min(shared, end - TILED_ROWS))


_classes: dict[Any, type] = {}


def shared_llama_class(base: Any) -> type:
    """``base`` (``llama_cpp.Llama``) whose ``generate`` takes the shared decoder when the
    calling thread is routed to one, and is ``base.generate`` otherwise.

    Routed, the tokens it has evaluated (``_input_ids``, which the chat formatter's
    stopping criteria read) are the answer's own: its prompt and every token read before
    the last, as ``base.generate`` keeps them.
    """
    if base not in _classes:
        import numpy as np

        def generate(self: Any, tokens: Sequence[int], *args: Any, **kw: Any) -> Iterator[int]:
            decoder: SharedDecoder | None = getattr(_route, "decoder", None)
            if decoder is None:
                yield from base.generate(self, tokens, *args, **kw)
                return
            if args or not _neutral(kw):
                raise RuntimeError("the shared decoder only decodes greedily without penalties")
            stopping = kw.get("stopping_criteria")
            evaluated = _route.evaluated = list(tokens)
            for token in decoder.tokens(list(tokens), _route.max_tokens):
                if stopping is not None and stopping(np.array(evaluated, dtype=np.intc), decoder.no_scores[-1, :]):
                    return
                yield token
                evaluated.append(token)

        def input_ids(self: Any) -> Any:
            if getattr(_route, "decoder", None) is None:
                return base._input_ids.fget(self)
            return np.array(_route.evaluated, dtype=np.intc)

        def scores(self: Any) -> Any:
            decoder: SharedDecoder | None = getattr(_route, "decoder", None)
            return base._scores.fget(self) if decoder is None else decoder.no_scores

        members = {
            "generate": generate, "_input_ids": property(input_ids), "_scores": property(scores), "SHARES_DECODING": True,
        }
        _classes[base] = type("SharedLlama", (base,), {**members, "__module__": __name__})
    return _classes[base]


@dataclass(eq=False)
class _Answer:
    """One answer being decoded: its prompt, where it is, and where its tokens go."""

    prompt: list[int]
    budget: int  # tokens it may produce before its reader asks for more
    out: "queue.SimpleQueue[Any]" = field(default_factory=queue.SimpleQueue)
    slot: int = -1
    start: int = 0  # the prompt's first position to evaluate (before it, its slot's kept cells)
    produced: int = 0
    last: int = -1
    done: bool = False  # ended (end of generation, failure or reader gone)


class SharedDecoder:
    """One llama.cpp context with a KV stream per slot over a loaded model's weights,
    fed by a thread that decodes every admitted answer one token per step."""

    def __init__(self, llama: Any, lock: threading.Lock) -> None:
        import llama_cpp

        self._c = llama_cpp
        self._lock = lock  # the model's: serial calls and decode steps never overlap
        self._n_ctx = int(llama.n_ctx())
        self._n_batch = int(llama.n_batch)
        self.slots = max(1, min(SLOTS, _MAX_CELLS // self._n_ctx))
        params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx = self._n_ctx * self.slots
        params.n_seq_max = self.slots
        params.kv_unified = False
        params.n_batch = params.n_ubatch = self._n_batch
        self._cond = threading.Condition()
        self._waiting: deque[_Answer] = deque()
        self._active: dict[int, _Answer] = {}
        self._free = list(range(self.slots))
        #: The prompt whose cells each slot holds, from where its own reading began.
        self._kept: list[list[int]] = [[] for _ in range(self.slots)]
        self._thread: threading.Thread | None = None
        #: Decode calls made and the most answers one of them carried (for tests, benches).
        self.steps = 0
        self.widest = 0
        #: Prompt tokens not evaluated because their slot held their cells already.
        self.reused = 0
        self._ctx = llama_cpp.llama_init_from_model(llama._model.model, params)
        if not self._ctx:
            raise RuntimeError("llama.cpp could not create a context for shared decoding")
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._closed = False
        adapter = getattr(llama, "_lora_adapter", None)
        if adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(float(llama.lora_scale))
            if llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales):
                self.close()
                raise RuntimeError("llama.cpp could not apply the LoRA adapter to the shared context")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama._model.vocab
        self._n_vocab = int(llama.n_vocab())
        import numpy as np

        #: What ``Llama._scores`` reads as while routed: no logits are kept without
        #: ``logits_all``, on either path (one row, made once).
        self.no_scores = np.zeros((1, self._n_vocab), dtype=np.single)
        # Freed when the Llama closes, before its weights (its exit stack runs last in, first out).
        llama._stack.callback(self.close)

    def close(self) -> None:
        """Free the context (once); answers still waiting get an error."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for answer in [*self._waiting, *self._active.values()]:
                answer.out.put(RuntimeError("the model was closed"))
                self._end(answer)
        with self._lock:
            self._c.llama_batch_free(self._batch)
            self._c.llama_free(self._ctx)

    @contextlib.contextmanager
    def route(self, max_tokens: int | None) -> Iterator[None]:
        """Within the block, ``Llama.generate`` on this thread takes this decoder."""
        _route.decoder, _route.max_tokens, _route.evaluated = self, max_tokens, []
        try:
            yield
        finally:
            _route.decoder = _route.max_tokens = _route.evaluated = None

    def tokens(self, prompt: list[int], max_tokens: int | None) -> Iterator[int]:
        """The greedy continuation of ``prompt``, token by token, for as long as it is read."""
        room = self._n_ctx - len(prompt)
        wanted = room if max_tokens is None or max_tokens <= 0 else min(max_tokens, room)
        answer = _Answer(prompt, max(1, wanted))
        with self._cond:
            if self._closed:
                raise RuntimeError("the model was closed")
            self._waiting.append(answer)
            self._wake()
        taken = 0
        try:
            while True:
                if taken >= answer.budget:  # llama-cpp-python reads past max_tokens to end a UTF-8 character
                    with self._cond:
                        answer.budget += 1
                        self._wake()
                item = answer.out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                taken += 1
                yield item
        finally:
            with self._cond:
                self._end(answer)

    def _wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmopt-shared-decode", daemon=True)
            self._thread.start()
        self._cond.notify()

    def _end(self, answer: _Answer) -> None:
        """Take ``answer`` out if it is still in; call with the condition held. Its slot
        is free at once; its cells are cleared by the decoding thread when it is next
        given out, so nothing touches the context while a step runs."""
        if answer in self._waiting:
            self._waiting.remove(answer)
        if not answer.done:
            answer.done = True
            if self._active.get(answer.slot) is answer:
                del self._active[answer.slot]
                self._free.append(answer.slot)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._work():
                    if not self._cond.wait(_LINGER_S) and not self._work():
                        self._thread = None
                        return
                admitted = None
                if self._waiting and self._free:
                    admitted = self._waiting.popleft()
                    # The free slot whose kept cells save the most (the first of equals).
                    keep, admitted.slot = max(
                        ((reusable(self._kept[s], admitted.prompt, self._n_batch), s) for s in self._free),
                        key=lambda pair: pair[0],
                    )
                    self._free.remove(admitted.slot)
                    self._kept[admitted.slot] = []  # until its prompt is in
                    if not keep or not self._c.llama_memory_seq_rm(self._memory, admitted.slot, keep, -1):
                        keep = 0
                        self._c.llama_memory_seq_rm(self._memory, admitted.slot, -1, -1)
                    admitted.start = keep
                    self._active[admitted.slot] = admitted
                stepping = [a for a in self._active.values() if a is not admitted and a.produced < a.budget]
            try:
                self._step(admitted, stepping)
            except Exception as exc:  # a failed decode fails the answers in it, not the thread
                with self._cond:
                    for answer in ([admitted] if admitted else []) + stepping:
                        answer.out.put(exc)
                        self._end(answer)

    def _work(self) -> bool:
        if self._closed:
            return False
        return bool(self._waiting and self._free) or any(a.produced < a.budget for a in self._active.values())

    def _step(self, admitted: _Answer | None, stepping: list[_Answer]) -> None:
        """Decode calls for one step: an admitted prompt in ``n_batch`` chunks, its last
        chunk with one token of every answer still short of :data:`SHARED_CELLS` if they
        fit beside it; one token of each longer answer alone."""
        rows = [(a, len(a.prompt) + a.produced - 1, [a.last]) for a in stepping]
        short = [row for row in rows if row[1] < SHARED_CELLS]
        if admitted is not None:
            prompt, size = admitted.prompt, self._n_batch
            starts = [admitted.start, *range((admitted.start // size + 1) * size, len(prompt), size)]
            for start, end in zip(starts, starts[1:], strict=False):
                self._decode([(admitted, start, prompt[start:end])])
            last = (admitted, starts[-1], prompt[starts[-1] :])
            if not admitted.start and len(last[2]) + len(short) <= size:
                short = [last, *short]
            else:
                self._decode([last])
        if short:
            self._decode(short)
        if admitted is not None:  # its cells are all in
            self._kept[admitted.slot] = admitted.prompt
            self.reused += admitted.start
        for row in rows:
            if row[1] >= SHARED_CELLS:
                self._decode([row])

    def _decode(self, rows: list[tuple[_Answer, int, list[int]]]) -> None:
        c, batch = self._c, self._batch
        outputs: list[tuple[_Answer, int]] = []
        n = 0
        for answer, pos, tokens in rows:
            for j, token in enumerate(tokens):
                batch.token[n], batch.pos[n] = token, pos + j
                batch.n_seq_id[n], batch.seq_id[n][0] = 1, answer.slot
                batch.logits[n] = j == len(tokens) - 1  # as Llama.eval asks, chunk by chunk
                n += 1
            if pos + len(tokens) == len(answer.prompt) + answer.produced:  # its next token is due
                outputs.append((answer, n - 1))
        batch.n_tokens = n
        with self._lock:
            if self._closed:
                raise RuntimeError("the model was closed")
            code = c.llama_decode(self._ctx, batch)
            if code != 0:
                raise RuntimeError(f"llama_decode returned {code}")
            picks = [(answer, self._argmax(c.llama_get_logits_ith(self._ctx, i))) for answer, i in outputs]
        self.steps += 1
        self.widest = max(self.widest, len(rows))
        with self._cond:
            for answer, token in picks:
                if answer.done:
                    continue
                answer.produced += 1
                answer.last = token
                answer.out.put(token)
                if c.llama_vocab_is_eog(self._vocab, token):
                    answer.out.put(_END)
                    self._end(answer)

    def _argmax(self, logits: Any) -> int:
        import numpy as np

        return int(np.argmax(np.ctypeslib.as_array(logits, shape=(self._n_vocab,))))

