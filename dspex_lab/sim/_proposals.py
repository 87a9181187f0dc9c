"""Replies to instruction-proposal requests: plausible instructions built from keyword phrases.

Why the simulator needs this: instruction tuning asks a model to *write*
instructions, which the simulator then *scores* through
:data:`~dspex_lab.sim._quality.INSTRUCTION_KEYWORDS`. A generic placeholder
("This is a simulated answer.") would make every candidate equivalent and the
tuning untestable. So a request whose output field is named ``instruction``,
``instructions`` or ``proposed_instruction`` (and whose question is no
dataset item) is answered with one sentence assembled from clauses, most of
which carry a helpful keyword ("step by step", "carefully", "only the
number", "one word", "exact", ...), some neutral, and, with a probability
that falls with the model tier, one carrying the harmful "guess".

Everything is drawn from the request's draw key plus a digest of all its
inputs (the draw key only holds the first input, and proposal requests differ
in their later ones: the tip, the sampled examples), so identical requests get
identical proposals and caching and ``expected_metrics`` stay consistent. A
clause whose trigger words appear in an input named ``tip`` is put first:
the simulated proposer follows the direction it was given.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from dspex_lab.sim._draws import unit

__all__ = ["HARMFUL", "HARM_PROBABILITY", "HELPFUL", "NEUTRAL", "OPENERS", "PROPOSAL_FIELDS",
           "is_proposal_field", "write_proposal"]

PROPOSAL_FIELDS: frozenset[str] = frozenset({"instruction", "instructions",
                                             "proposed_instruction"})

OPENERS: tuple[str, ...] = (
    "Solve the task:", "Read the inputs, then", "For every input,", "Your job:",
    "To answer well,", "Before replying,",
)

# (clause, words in a tip that make the proposer lead with it)
HELPFUL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("think step by step", ("step by step",)),
    ("work carefully", ("careful",)),
    ("double-check the result before replying", ("double-check", "mistake")),
    ("give the exact answer", ("exact", "format")),
    ("answer in one word", ("one word", "concise")),
    ("reply with only the number", ("format", "concise")),
    ("answer as an expert would", ("expert", "persona")),
)
NEUTRAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("keep the reply short", ("concise", "simple")),
    ("read the question closely", ("describe",)),
    ("state the answer plainly", ("simple", "direct")),
    ("use only the information given", ("describe",)),
)
HARMFUL: tuple[str, ...] = ("make a quick guess when unsure", "guess rather than work it out")

HARM_PROBABILITY: tuple[float, float, float, float] = (0.3, 0.2, 0.1, 0.05)
"""Chance that a proposal by (tiny, small, medium, large) carries a harmful clause."""


def is_proposal_field(name: str) -> bool:
    """Whether an output field asks for an instruction (see the module docstring)."""
    return name in PROPOSAL_FIELDS


def _proposal_key(key: str, inputs: dict[str, Any]) -> str:
    digest = hashlib.blake2b(orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS,
                                          default=str), digest_size=8).hexdigest()
    return f"{key}\x1e{digest}"


def _sentence(key: str, tier: int, tip: str) -> str:
    opener = OPENERS[int(unit(key, "p:opener") * len(OPENERS))]
    n_clauses = 2 + int(unit(key, "p:count") * 2)  # 2 or 3
    pool = [*HELPFUL, *NEUTRAL]
    led = [text for text, triggers in pool if any(t in tip for t in triggers)]
    lead = [led[int(unit(key, "p:lead") * len(led))]] if led else []
    rest = sorted((text for text, _ in pool if text not in lead),
                  key=lambda text: unit(key, "p:" + text))
    clauses = (lead + rest)[:n_clauses]
    if unit(key, "p:harm") < HARM_PROBABILITY[tier]:
        clauses[-1] = HARMFUL[int(unit(key, "p:harmful") * len(HARMFUL))]
    body = ", ".join(clauses[:-1]) + " and " + clauses[-1]
    return f"{opener} {body}."


def write_proposal(field_type: str, key: str, tier: int, inputs: dict[str, Any]) -> Any:
    """The proposal for one output field: a sentence for ``str``, a few for ``list[str]``;
    ``None`` for other types (the caller writes its usual placeholder)."""
    kind = field_type.replace(" ", "").lower()
    sub = _proposal_key(key, inputs)
    tip = str(inputs.get("tip", "")).lower()
    if kind == "str":
        return _sentence(sub, tier, tip)
    if kind == "list[str]":
        return [_sentence(f"{sub}\x1e{i}", tier, tip) for i in range(3)]
    return None
