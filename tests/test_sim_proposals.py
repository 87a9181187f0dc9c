"""The simulator's answers to instruction-proposal requests."""

from __future__ import annotations

from typing import Any

import dspex_lab as dx
from dspex_lab.sim._proposals import HARMFUL, HELPFUL, NEUTRAL, OPENERS, write_proposal
from dspex_lab.sim._quality import INSTRUCTION_KEYWORDS, instruction_bonus

KEYWORDS = [kw for kw, _ in INSTRUCTION_KEYWORDS]
CLAUSES = [text for text, _ in (*HELPFUL, *NEUTRAL)] + list(HARMFUL)


def test_every_helpful_clause_carries_a_keyword_and_neutral_ones_none() -> None:
    for text, _ in HELPFUL:
        assert instruction_bonus("math", text) > 0 or instruction_bonus("lookup", text) > 0
    for text, _ in NEUTRAL:
        assert not any(kw in text for kw in KEYWORDS), text
    for text in HARMFUL:
        assert instruction_bonus("math", text) < 0


def test_a_proposal_is_a_sentence_of_known_clauses_fixed_by_key_and_inputs() -> None:
    inputs = {"task": "Answer the question.", "tip": "Be creative."}
    first = write_proposal("str", "key-1", 1, inputs)
    assert isinstance(first, str) and first.endswith(".")
    assert sum(clause in first for clause in CLAUSES) in (2, 3)
    assert write_proposal("str", "key-1", 1, dict(inputs)) == first
    others = {write_proposal("str", "key-1", 1, {**inputs, "tip": f"tip {i}"}) for i in range(8)}
    assert len(others) >= 6  # later inputs matter, not only the draw key
    many = write_proposal("list[str]", "key-1", 1, inputs)
    assert isinstance(many, list) and len(many) == 3 and all(isinstance(s, str) for s in many)
    assert write_proposal("int", "key-1", 1, inputs) is None


def test_the_tip_leads_and_weak_proposers_suggest_guessing_more() -> None:
    for i in range(20):
        text = write_proposal("str", f"k{i}", 2, {"tip": "Think step by step."})
        opener = next(o for o in OPENERS if text.startswith(o))
        assert text[len(opener):].startswith(" think step by step"), text

    def guesses(tier: int) -> int:
        return sum("guess" in write_proposal("str", f"k{i}", tier, {"tip": ""})
                   for i in range(400))

    tiny, large = guesses(0), guesses(3)
    assert 80 <= tiny <= 160 and 5 <= large <= 40 and tiny > large


def test_served_over_http_for_instruction_fields_only(sim_url: str) -> None:
    proposer = dx.Predict("task, tip -> instruction", model="sim/small", temperature=0.7)
    a = proposer(task="Answer math word problems.", tip="Focus on the format.").instruction
    b = proposer(task="Answer math word problems.", tip="Use a persona.").instruction
    again = proposer(task="Answer math word problems.", tip="Focus on the format.").instruction
    assert a == again and a != b
    assert any(kw in a.lower() or kw in b.lower() for kw in KEYWORDS)
    for name in ("instructions", "proposed_instruction"):
        reply: Any = dx.Predict(f"task -> {name}", model="sim/medium")(task="Summarise.")
        assert any(clause in reply[name] for clause in CLAUSES)
    plain = dx.Predict("task -> summary", model="sim/small")(task="Summarise.")
    assert plain.summary == "This is a simulated answer."
