"""Notebook displays of programs and spaces: what a user sees when a cell ends with one."""

from __future__ import annotations

import dspex_lab as dx


def test_program_html_lists_every_predictor_with_its_settings() -> None:
    class TwoStep(dx.Module):
        def __init__(self) -> None:
            self.draft = dx.ChainOfThought("question -> answer", adapter="json",
                                           temperature=0.2)
            self.check = dx.Predict("question, answer -> verdict: bool",
                                    instructions="Be <strict> & brief")

        async def aforward(self, question: str) -> dx.Prediction:
            draft = await self.draft.acall(question=question)
            return await self.check.acall(question=question, answer=draft.answer)

    html = TwoStep()._repr_html_()
    assert "<b>TwoStep</b>" in html
    assert html.count("<tr>") == 3  # header + two predictors
    assert ">draft<" in html and ">check<" in html and ">json<" in html and ">0.2<" in html
    assert "&lt;strict&gt; &amp; brief" in html  # escaped, never raw markup


def test_space_html_shows_size_variables_constraints_and_when() -> None:
    space = dx.Space([dx.variables.model(["sim/tiny", "sim/large"]),
                      dx.variables.module(["predict", "pot"]),
                      dx.Int("max_code_retries", 0, 3, when="module == 'pot'"),
                      dx.variables.demos((0, 2), pool=[{"question": "q", "answer": "a"}] * 2)],
                     ["model == 'sim/tiny' -> demos >= 1"])
    html = space._repr_html_()
    assert f"size {space.size:,}" in html
    assert html.count("<tr>") == 5
    assert "module == &#x27;pot&#x27;" in html  # the condition, escaped
    assert "&lt;2 demos&gt;" in html  # a pool is summarized, not dumped
    assert "demos &gt;= 1" in html
