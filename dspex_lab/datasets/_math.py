"""sim-math: arithmetic word problems with one to four operations.

Difficulty is the number of operations. Every intermediate value is a
non-negative integer (divisions are exact), so the answer is an ``int`` and a
program can be scored with exact match. ``meta`` keeps the subject, the object
and the steps so the simulator can write step-by-step reasoning and code.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

from dspex_lab.datasets._dataset import Record
from dspex_lab.datasets._rng import Rng

__all__ = ["SEED", "generate"]

SEED = 20_240_917

_PEOPLE: tuple[tuple[str, str], ...] = (
    ("Ana", "she"), ("Ben", "he"), ("Chloe", "she"), ("Diego", "he"), ("Emma", "she"),
    ("Farid", "he"), ("Grace", "she"), ("Hiro", "he"), ("Ines", "she"), ("Jonas", "he"),
    ("Kira", "she"), ("Liam", "he"), ("Maya", "she"), ("Nikolai", "he"), ("Olga", "she"),
    ("Pedro", "he"), ("Quinn", "she"), ("Ravi", "he"), ("Sofia", "she"), ("Tomas", "he"),
    ("Uma", "she"), ("Victor", "he"), ("Wen", "she"), ("Yusuf", "he"),
)
_OBJECTS: tuple[str, ...] = (
    "apples", "marbles", "stickers", "pencils", "coins", "books", "stamps", "cookies",
    "shells", "cards", "balloons", "oranges", "buttons", "beads", "toy cars", "tickets",
)
_ADD = ("buys {n} more", "finds {n} more", "receives {n} more from a friend", "wins {n} more")
_SUB = ("gives away {n}", "sells {n}", "loses {n}", "donates {n}")
_MUL = {2: "doubles them", 3: "triples them"}
_DIV = "splits them into {n} equal piles and keeps one pile"


def _steps(rng: Rng, n_ops: int) -> tuple[int, list[tuple[str, int]]] | None:
    """A start value and ``n_ops`` (op, operand) steps, or None if they went out of range."""
    value = rng.randint(3, 40)
    start = value
    steps: list[tuple[str, int]] = []
    for _ in range(n_ops):
        op = rng.choice("+-*/" if value <= 60 else "+-/")
        if op == "+":
            n = rng.randint(2, 30)
            value += n
        elif op == "-":
            if value < 3:
                return None
            n = rng.randint(1, value - 1)
            value -= n
        elif op == "*":
            n = rng.choice((2, 3))
            value *= n
        else:
            divisors = [d for d in (2, 3, 4, 5) if value % d == 0 and value // d >= 1]
            if not divisors:
                return None
            n = rng.choice(divisors)
            value //= n
        steps.append((op, n))
    return start, steps


def _phrase(rng: Rng, op: str, n: int) -> str:
    if op == "+":
        return rng.choice(_ADD).format(n=n)
    if op == "-":
        return rng.choice(_SUB).format(n=n)
    if op == "*":
        return _MUL[n]
    return _DIV.format(n=n)


def _apply(value: int, op: str, n: int) -> int:
    if op == "+":
        return value + n
    if op == "-":
        return value - n
    if op == "*":
        return value * n
    return value // n


def _distractors(start: int, steps: list[tuple[str, int]], answer: int) -> tuple[int, ...]:
    """Plausible wrong answers: the last step forgotten, off by one, a step misapplied."""
    before_last = start
    for op, n in steps[:-1]:
        before_last = _apply(before_last, op, n)
    op, n = steps[-1]
    misapplied = before_last - n if op == "+" else before_last + n
    found: list[int] = []
    for candidate in (before_last, answer + 1, misapplied, answer - 1, answer + 10, answer + 2):
        if candidate != answer and candidate >= 0 and candidate not in found:
            found.append(candidate)
    return tuple(found[:4])


def generate(count: int) -> Iterator[Record]:
    """``count`` distinct problems; difficulty (1-4 operations) cycles evenly."""
    rng = Rng(SEED)
    seen: set[str] = set()
    produced = 0
    while produced < count:
        n_ops = 1 + produced % 4
        drawn = _steps(rng, n_ops)
        if drawn is None:
            continue
        start, steps = drawn
        name, pronoun = rng.choice(_PEOPLE)
        obj = rng.choice(_OBJECTS)
        actions = ", then ".join(_phrase(rng, op, n) for op, n in steps)
        question = (
            f"{name} has {start} {obj}. {pronoun.capitalize()} {actions}. "
            f"How many {obj} does {pronoun} have now?"
        )
        if question in seen:
            continue
        seen.add(question)
        answer = start
        for op, n in steps:
            answer = _apply(answer, op, n)
        meta = MappingProxyType({
            "name": name, "object": obj, "start": start, "steps": tuple(steps),
            "distractors": _distractors(start, steps, answer),
        })
        produced += 1
        yield question, answer, n_ops, meta
