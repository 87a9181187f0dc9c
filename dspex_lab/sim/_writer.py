"""Writes the simulated model's reply: every requested output field, in the prompt's format.

The content is a pure function of (prompt, item, outcome, key): the answer is
the ground truth when the outcome is correct and one of the item's
distractors otherwise, chain-of-thought reasoning grows with difficulty (that
is what makes ``cot`` cost tokens), program-of-thought code is real Python,
a format error drops the markers/headings/braces the adapter looks for, and
a request for an instruction gets a plausible one (:mod:`dspex_lab.sim._proposals`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from dspex_lab.datasets import Item, load
from dspex_lab.sim._code import RAISES, write_code
from dspex_lab.sim._draws import Outcome, unit
from dspex_lab.sim._proposals import is_proposal_field, write_proposal
from dspex_lab.sim._reader import Field, Prompt

__all__ = ["Reply", "answer_field", "write_reply"]

_DEFAULT_OUTPUTS = (Field("answer"),)
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_FILLER = (
    "I read the question carefully before answering.",
    "I check the details once more to avoid a careless slip.",
    "I compare it with similar cases I know.",
    "I make sure the answer has the form that was asked for.",
)
_MATH_STEP = {
    "+": "Adding {n} gives {a} + {n} = {b}.",
    "-": "Taking away {n} leaves {a} - {n} = {b}.",
    "*": "Multiplying by {n} gives {a} * {n} = {b}.",
    "/": "Keeping one of {n} equal piles leaves {a} / {n} = {b}.",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """The completion text and, for program-of-thought code that raises, the error it raises."""

    text: str
    code_error: str = ""


@cache
def _dataset_output(dataset: str) -> str:
    return load(dataset).output_fields[0]


def answer_field(outputs: tuple[Field, ...], item: Item | None) -> str | None:
    """The output field that carries the answer: the dataset's name for it, else the first
    output that is neither ``reasoning`` nor ``code``."""
    candidates = [f.name for f in outputs if f.name not in ("reasoning", "code")]
    if item is not None and _dataset_output(item.dataset) in candidates:
        return _dataset_output(item.dataset)
    return candidates[0] if candidates else None


def _answer(item: Item | None, outcome: Outcome, key: str) -> Any:
    if item is None:
        return None
    if outcome.kind == "correct":
        return item.answer
    distractors = item.meta["distractors"]
    return distractors[int(unit(key, "wrong") * len(distractors))]


def _generic(field: Field, key: str) -> Any:
    """A plausible value of the field's type for questions the simulator has no truth for."""
    u = unit(key, "generic:" + field.name)
    kind = field.type.replace(" ", "").lower()
    if kind == "int":
        return int(u * 100)
    if kind == "float":
        return round(u * 10, 2)
    if kind == "bool":
        return u < 0.5
    if kind.startswith("list["):
        inner = kind[5:-1]
        if inner in ("int", "float"):
            return [1, 2, 3] if inner == "int" else [0.5, 1.5]
        return ["alpha", "beta"]
    if kind.startswith("literal["):
        options = _QUOTED.findall(field.type)
        if options:
            choice = options[int(u * len(options))]
            return choice[0] or choice[1]
    if kind.startswith("dict["):
        value_type = kind[5:-1].split(",")[-1]
        return {"key": 1} if value_type in ("int", "float") else {"key": "value"}
    return "This is a simulated answer."


def _coerce(value: Any, field: Field) -> Any:
    kind = field.type.replace(" ", "").lower()
    if kind == "str":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if kind == "int" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _apply(value: int, op: str, n: int) -> int:
    if op == "+":
        return value + n
    if op == "-":
        return value - n
    return value * n if op == "*" else value // n


def _fillers(n: int) -> list[str]:
    return list(_FILLER[: max(0, min(n, len(_FILLER)))])


def _reasoning(item: Item | None, outcome: Outcome, value: Any) -> str:
    if item is None:
        return "I read the inputs and worked through them step by step. The result follows."
    meta = item.meta
    if item.task == "math":
        sentences = [f"{meta['name']} starts with {meta['start']} {meta['object']}."]
        current = int(meta["start"])
        steps = meta["steps"]
        for i, (op, n) in enumerate(steps):
            after = _apply(current, op, n)
            if i == len(steps) - 1 and outcome.kind != "correct" and isinstance(value, int):
                after = value  # the slip that leads to the wrong answer
            sentences.append(_MATH_STEP[op].format(n=n, a=current, b=after))
            current = after
        sentences.append(f"So the answer is {value}.")
        return " ".join(sentences)
    if item.task == "lookup":
        kind = meta["kind"]
        if kind == "capital":
            opening = f"The question asks for the capital of {meta['country']}."
            closing = f"The capital of {meta['country']} is {value}."
        elif kind == "country":
            opening = f"The question names the city {meta['capital']}."
            closing = f"{meta['capital']} is the capital of {value}."
        else:
            opening = f"The question asks where {meta['country']} is."
            closing = f"{meta['country']} is in {value}."
        return " ".join([opening, *_fillers(item.difficulty), closing])
    opening = f"The review is about a {meta['product']}."
    return " ".join([opening, *_fillers(item.difficulty), f"Overall the tone is {value}."])


def _render(fmt: str, values: dict[str, Any]) -> str:
    if fmt == "chat":
        blocks = [f"[[ ## {name} ## ]]\n{_text(v)}\n\n" for name, v in values.items()]
        return "".join(blocks) + "[[ ## completed ## ]]"
    if fmt == "json":
        return orjson.dumps(values).decode()
    return "\n\n".join(f"## {name}\n{_text(v)}" for name, v in values.items())


def _broken(fmt: str, values: dict[str, Any], key: str) -> str:
    """A reply that drops what the format's parser looks for (markers, headings, braces)."""
    style = int(unit(key, "broken") * 2)
    if fmt == "json" or style == 0:
        return "\n".join(f"{name}: {_text(v)}" for name, v in values.items())
    return "\n".join(f"**{name}** {_text(v)}" for name, v in values.items())


def write_reply(prompt: Prompt, item: Item | None, outcome: Outcome, key: str) -> Reply:
    """The completion for ``outcome``; see the module docstring for what it contains."""
    value = _answer(item, outcome, key)
    if prompt.format is None:  # not a protocol prompt: answer in plain text
        return Reply(_text(value if value is not None else _generic(_DEFAULT_OUTPUTS[0], key)))
    outputs = prompt.frame.outputs or _DEFAULT_OUTPUTS
    answer_name = answer_field(outputs, item)
    code_error = ""
    values: dict[str, Any] = {}
    for field in outputs:
        if field.name == "reasoning":
            values["reasoning"] = _reasoning(item, outcome, value)
        elif field.name == "code" and prompt.module == "pot":
            how = RAISES[int(unit(key, "raise") * len(RAISES))]
            shown = value if value is not None else _generic(Field("result", "int"), key)
            values["code"], code_error = write_code(item, outcome.kind, shown, prompt.attempt, how)
        elif field.name == answer_name and value is not None:
            values[field.name] = _coerce(value, field)
        elif item is None and is_proposal_field(field.name):
            proposal = write_proposal(field.type, key, prompt.model.tier, prompt.inputs)
            values[field.name] = proposal if proposal is not None else _generic(field, key)
        else:
            values[field.name] = _generic(field, key)
    if outcome.format_error:
        return Reply(_broken(prompt.format, values, key), code_error)
    return Reply(_render(prompt.format, values), code_error)
