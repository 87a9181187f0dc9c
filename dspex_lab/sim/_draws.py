"""Turns a read prompt into an outcome: one stable-hash draw per decision.

A draw is ``blake2b(key + stream) / 2**64``, where the key holds everything
the protocol says matters (server seed, model, item, adapter, module, number
of demos, instructions, temperature, attempt, request seed). Identical
requests therefore get identical replies, and each decision (format broken?
answer correct? which wrong answer?) has its own independent stream.
:func:`distribution` lists the same outcomes with their probabilities, which
is what makes :mod:`dspex_lab.sim._expected` exact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dspex_lab.datasets import Item
from dspex_lab.sim._quality import p_code_raises, p_correct, p_format_error
from dspex_lab.sim._reader import Prompt

__all__ = ["Outcome", "distribution", "draw", "draw_key", "unit"]

_SCALE = float(1 << 64)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the reply will say: ``kind`` is correct, wrong, raise (pot code fails) or generic."""

    kind: str
    format_error: bool = False


def unit(key: str, stream: str) -> float:
    """A uniform number in [0, 1) fixed by ``key`` and ``stream``."""
    digest = hashlib.blake2b(f"{key}\x1f{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def draw_key(prompt: Prompt, item: Item | None, server_seed: int) -> str:
    """The string every draw of this request is derived from."""
    subject = item.id if item is not None else "q:" + prompt.question
    return "\x1e".join((
        str(server_seed), prompt.model.name, subject, prompt.format or "plain", prompt.module,
        str(prompt.n_demos), prompt.frame.instructions, f"{prompt.temperature:.3f}",
        str(prompt.attempt), "" if prompt.seed is None else str(prompt.seed),
    ))


def _probabilities(prompt: Prompt, item: Item | None) -> tuple[float, float, float]:
    """(format error, correct, raise) probabilities; correct/raise are given no format error."""
    adapter = prompt.format
    p_fmt = 0.0 if adapter is None else p_format_error(prompt.model.name, adapter, prompt.json_mode)
    if item is None:
        return p_fmt, 0.0, 0.0
    p_ok = p_correct(
        prompt.model.name, item.task, item.difficulty, prompt.module, adapter or "chat",
        prompt.n_demos, prompt.frame.instructions, prompt.temperature, prompt.attempt > 1,
    )
    p_raise = (1.0 - p_ok) * p_code_raises(prompt.model.name) if prompt.module == "pot" else 0.0
    return p_fmt, p_ok, p_raise


def draw(prompt: Prompt, item: Item | None, key: str) -> Outcome:
    """The outcome of this request (deterministic in ``key``)."""
    p_fmt, p_ok, p_raise = _probabilities(prompt, item)
    broken = unit(key, "format") < p_fmt
    if item is None:
        return Outcome("generic", broken)
    u = unit(key, "answer")
    kind = "correct" if u < p_ok else "raise" if u < p_ok + p_raise else "wrong"
    return Outcome(kind, broken)


def distribution(prompt: Prompt, item: Item | None) -> list[tuple[Outcome, float]]:
    """Every outcome :func:`draw` can return for this prompt, with its probability."""
    p_fmt, p_ok, p_raise = _probabilities(prompt, item)
    kinds = (
        [("generic", 1.0)] if item is None
        else [("correct", p_ok), ("raise", p_raise), ("wrong", 1.0 - p_ok - p_raise)]
    )
    out: list[tuple[Outcome, float]] = []
    for kind, p in kinds:
        for broken, q in ((False, 1.0 - p_fmt), (True, p_fmt)):
            if p > 0.0 and q > 0.0:
                out.append((Outcome(kind, broken), p * q))
    return out
