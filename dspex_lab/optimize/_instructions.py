"""Instruction candidates proposed by an LM, for the optimizer to choose among.

Why an LM writes them: the words of the task line measurably change what a
model does, but nobody can enumerate good wordings by hand for every task. A
model shown the signature, a few examples and a *tip* (a direction such as
"be concise" or "think step by step") writes one candidate per call; varying
the tip and the examples from call to call is what makes the candidates
differ, rather than resampling one prompt. The optimizer then evaluates the
candidates like any other categorical variable, so a bad proposal costs one
evaluation and is never kept.

The signature's current instructions are always candidate 0: tuning must be
able to conclude that the original wording was best.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from dspex_lab.errors import ConfigurationError, DspexError
from dspex_lab.events._trace import Meter, child_span, span_scope
from dspex_lab.lm import LM, run_sync
from dspex_lab.programs.predictors import Predict
from dspex_lab.programs.signature import Signature
from dspex_lab.settings import default_lm, lm_for

__all__ = ["PROPOSAL_SIGNATURE", "TIPS", "Proposals", "apropose_instructions",
           "propose_instructions"]

TIPS: tuple[str, ...] = (
    "Be concise: one short imperative sentence.",
    "Ask the model to think step by step before it answers.",
    "Focus on the exact format of the answer field.",
    "Give the model a persona: an expert in this task.",
    "Warn about the most likely mistake on these examples.",
    "Ask the model to work carefully and double-check the result.",
    "Keep it simple and direct; no explanations in the answer.",
    "Describe the task in your own words, then say what a good answer looks like.",
)
"""Directions given to the proposer, one per call (rotated by the seed)."""

PROPOSAL_SIGNATURE = Signature(
    "task: str, fields: str, examples: str, current_instruction: str, tip: str "
    "-> instruction: str",
    instructions=("You write the instruction for a language-model step. Read the task, its "
                  "fields and the examples, follow the tip, and reply with one improved "
                  "instruction of at most three sentences."),
    descriptions={
        "task": "what the step is for, in the words of its current instructions",
        "fields": "the step's input and output fields with their types",
        "examples": "a few solved examples of the step",
        "current_instruction": "the instruction used today",
        "tip": "the direction this proposal should take",
        "instruction": "the proposed instruction (plain text, no quotes)",
    })
"""The proposer's own signature (public so tests and the simulator docs can name it)."""

MAX_CHARS = 600
"""Longer replies are not instructions but essays; they are skipped as ``too_long``."""

N_EXAMPLES = 3


class Proposals(list[str]):
    """Instruction candidates (candidate 0 is the current one) plus bookkeeping.

    A plain list of strings to every caller, with ``failures`` (skipped
    replies by kind: ``"empty"``, ``"too_long"``, ``"duplicate"``,
    ``"parse_error"``, LM error kinds), ``calls`` and ``cost`` (dollars,
    ``None`` when a price is unknown; ``uncached_cost`` prices cache hits at
    their original cost).
    """

    def __init__(self, items: Sequence[str], *, failures: Mapping[str, int], calls: int,
                 cost: float | None, uncached_cost: float | None) -> None:
        super().__init__(items)
        self.failures = dict(failures)
        self.calls = calls
        self.cost = cost
        self.uncached_cost = uncached_cost


def _normalize(text: str) -> str:
    """The dedup key: case, whitespace and a trailing period do not make a new idea."""
    return " ".join(text.lower().split()).rstrip(".!").strip()


def _clean(text: Any) -> str:
    value = str(text).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        value = value[1:-1].strip()
    return value


def _resolve_lm(lm: LM | str | None) -> LM:
    if isinstance(lm, LM):
        return lm
    if isinstance(lm, str):
        return lm_for(lm)
    if lm is None:
        default = default_lm()
        if default is None:
            raise ConfigurationError(
                "No LM to propose instructions with. Pass lm='provider/name' or a dx.LM, "
                "or call dx.configure(lm=dx.LM(...)).")
        return default
    raise ConfigurationError(f"lm must be a dx.LM, a model name or None, not "
                             f"{type(lm).__name__}.")


def _fields_text(sig: Signature) -> str:
    ins = ", ".join(f"`{f.name}` ({f.type_str})" for f in sig.input_fields.values())
    outs = ", ".join(f"`{f.name}` ({f.type_str})" for f in sig.output_fields.values())
    return f"inputs: {ins}; outputs: {outs}"


def _examples_text(sig: Signature, examples: Sequence[Mapping[str, Any]],
                   rng: random.Random) -> str:
    """Up to :data:`N_EXAMPLES` examples, sampled per call, as ``name: value`` lines."""
    if not examples:
        return "(no examples)"
    chosen = rng.sample(list(examples), min(N_EXAMPLES, len(examples)))
    names = [*sig.input_fields, *sig.output_fields]
    blocks = []
    for number, example in enumerate(chosen, start=1):
        lines = [f"{name}: {example[name]}" for name in names if name in example]
        blocks.append(f"Example {number}\n" + "\n".join(lines))
    return "\n\n".join(blocks)


async def apropose_instructions(signature: str | Signature | type[Signature],
                                examples: Sequence[Mapping[str, Any]] = (), *,
                                lm: LM | str | None = None, n: int = 5, seed: int = 0,
                                temperature: float = 0.7, current_instructions: str | None = None,
                                tags: Mapping[str, str] | None = None) -> Proposals:
    """Ask ``lm`` for ``n`` instruction candidates for ``signature``.

    Each call gets its own tip (from :data:`TIPS`, rotated by ``seed``) and its
    own sample of ``examples`` (rows or demo dicts; only the signature's
    fields are shown), at ``temperature``. Replies are cleaned, deduplicated
    (case and whitespace ignored) and skipped when empty, longer than
    :data:`MAX_CHARS` or unparseable; when skips leave fewer than ``n``,
    up to ``n`` more calls are made with fresh tips and examples, so a
    stubborn proposer costs at most ``2n`` calls. Returns at most ``n + 1``
    strings: ``current_instructions`` (default: the signature's) first, then
    the proposals in call order. Deterministic for a seed when the LM is
    (identical requests, or the simulator).

    Calls carry ``tags`` so the store links them to the optimization run.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ConfigurationError(f"n must be an integer >= 0, not {n!r}.")
    sig = Signature.coerce(signature)
    base = _clean(current_instructions) if current_instructions else sig.instructions
    model = _resolve_lm(lm)
    proposer = Predict(PROPOSAL_SIGNATURE, lm=model, temperature=temperature)
    rows = list(examples)
    tip_offset = random.Random(seed).randrange(len(TIPS))
    shared = {"task": sig.instructions, "fields": _fields_text(sig), "current_instruction": base}

    out = [base]
    seen = {_normalize(base)}
    failures: dict[str, int] = {}
    meter = Meter()
    span, _ = child_span(tuple(sorted((tags or {}).items())), meter=meter)

    def skip(kind: str) -> None:
        failures[kind] = failures.get(kind, 0) + 1

    async def ask(call: int) -> str | None:
        rng = random.Random(f"{seed}:{call}")
        inputs = {**shared, "examples": _examples_text(sig, rows, rng),
                  "tip": TIPS[(tip_offset + call) % len(TIPS)]}
        try:
            pred = await proposer.acall(**inputs)
        except DspexError as exc:
            skip(exc.kind)
            return None
        return _clean(pred.get("instruction", ""))

    async def batch(first: int, count: int) -> None:
        with span_scope(span):
            replies = await asyncio.gather(*(ask(first + i) for i in range(count)))
        for reply in replies:
            if reply is None:
                continue
            if not reply:
                skip("empty")
            elif len(reply) > MAX_CHARS:
                skip("too_long")
            elif _normalize(reply) in seen:
                skip("duplicate")
            elif len(out) <= n:
                seen.add(_normalize(reply))
                out.append(reply)

    await batch(0, n)
    missing = n + 1 - len(out)
    if missing > 0:  # top up once, never more than n extra calls in total
        await batch(n, min(n, 2 * missing))
    known = meter.cost_known
    return Proposals(out, failures=failures, calls=meter.calls,
                     cost=meter.cost if known else None,
                     uncached_cost=meter.uncached_cost if known else None)


def propose_instructions(signature: str | Signature | type[Signature],
                         examples: Sequence[Mapping[str, Any]] = (), *,
                         lm: LM | str | None = None, n: int = 5, seed: int = 0,
                         temperature: float = 0.7, current_instructions: str | None = None,
                         tags: Mapping[str, str] | None = None) -> Proposals:
    """The synchronous form of :func:`apropose_instructions` (runs on the background loop)."""
    return run_sync(apropose_instructions(
        signature, examples, lm=lm, n=n, seed=seed, temperature=temperature,
        current_instructions=current_instructions, tags=tags))
