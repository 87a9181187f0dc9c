"""One simulated completion: read prompt in, reply text, tokens and latency out.

Shared by the HTTP handler and by expected metrics, so what the server sends
and what the expectation sums over can never differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from dspex_lab.datasets import Item, find_item
from dspex_lab.sim._draws import Outcome, draw, draw_key
from dspex_lab.sim._reader import Prompt
from dspex_lab.sim._tokens import count_tokens, prompt_tokens, truncate_to_tokens
from dspex_lab.sim._writer import write_reply

__all__ = ["Completion", "complete", "complete_outcome"]


@dataclass(frozen=True, slots=True)
class Completion:
    """One reply before it is serialised: what the server sends and what expected metrics sum."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    code_error: str
    outcome: Outcome


def _finish(prompt: Prompt, text: str, code_error: str, outcome: Outcome,
            latency_ms: float | None = None) -> Completion:
    """Applies ``max_tokens``, counts tokens and computes the latency of a written reply."""
    finish_reason = "stop"
    if prompt.max_tokens is not None:
        text, cut = truncate_to_tokens(text, prompt.max_tokens)
        finish_reason = "length" if cut else "stop"
    n_prompt = prompt_tokens(prompt.contents)
    n_completion = count_tokens(text)
    if latency_ms is None:
        latency_ms = prompt.model.latency_ms(n_prompt, n_completion)
    return Completion(text, finish_reason, n_prompt, n_completion, latency_ms, code_error, outcome)


def complete(prompt: Prompt, seed: int, fixed_latency_ms: float | None = None) -> Completion:
    """The simulated model's answer to ``prompt`` (the same function expected metrics use).

    With ``fixed_latency_ms`` the reply is the minimal well-formed one (typed
    placeholder values, no quality draws) and the latency is that constant.
    """
    if fixed_latency_ms is not None:
        outcome = Outcome("generic")
        reply = write_reply(prompt, None, outcome, "fixed")
        return _finish(prompt, reply.text, "", outcome, fixed_latency_ms)
    item = find_item(prompt.question) if prompt.question else None
    key = draw_key(prompt, item, seed)
    return complete_outcome(prompt, item, draw(prompt, item, key), key)


def complete_outcome(prompt: Prompt, item: Item | None, outcome: Outcome, key: str) -> Completion:
    """The completion for a given outcome (expected metrics walks every outcome this way)."""
    reply = write_reply(prompt, item, outcome, key)
    return _finish(prompt, reply.text, reply.code_error, outcome)
