"""What a run does before its first trial: give demos variables a pool, and propose
instructions, so both are tuned jointly with everything else.

- A demos variable without a pool draws from the trainset's labelled rows;
  with ``bootstrap=True`` from *bootstrapped* demos instead: a teacher
  configuration runs on the trainset and the traces that pass the metric
  (reasoning included) become the pool (padded with labelled rows if too few
  pass).
- ``propose_instructions=n`` asks an LM for ``n`` instruction candidates from
  the signature and a few examples; they become (or extend) an
  ``instructions`` variable.

Everything spent here is paid from the run's dollar budget and recorded under
the run's id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dspex_lab.errors import ConfigurationError
from dspex_lab.events import Meter, child_span, span_scope
from dspex_lab.optimize._budget import Ledger
from dspex_lab.variables import Categorical, Demos, Space, Variable

if TYPE_CHECKING:
    from dspex_lab.optimize._setup import RunSetup

__all__ = ["prepare_space"]

INSTRUCTIONS = "instructions"


def _needs_pool(space: Space) -> list[Demos]:
    return [v for v in space.variables.values() if isinstance(v, Demos) and v.pool is None]


def _bind(space: Space, pool: Sequence[Mapping[str, Any]], *, force: bool) -> Space:
    """Demos variables draw from ``pool`` (only those without a pool unless ``force``)."""
    rows = list(pool)
    out: list[Variable] = []
    for var in space.variables.values():
        if isinstance(var, Demos) and (force or var.pool is None):
            if len(rows) < var.k_high:
                raise ConfigurationError(
                    f"variable {var.name!r} uses up to {var.k_high} demos but only "
                    f"{len(rows)} are available: give a larger trainset or lower k")
            out.append(var.with_pool(rows[: max(var.n_pool, var.k_high)]))
        else:
            out.append(var)
    return space.with_variables(out)


async def prepare_space(setup: RunSetup, ledger: Ledger, tags: Mapping[str, str]
                        ) -> tuple[Space, list[str], float, int]:
    """The run's space after preparation, notes for the user, dollars paid, LM calls."""
    space, notes = setup.space, []
    meter = Meter()
    span, _ = child_span(tuple(sorted(tags.items())), meter=meter)
    with span_scope(span):
        if setup.bootstrap and any(isinstance(v, Demos) for v in space.variables.values()):
            space, note = await _bootstrap(setup, space, tags)
            notes.append(note)
        elif _needs_pool(space):
            if not setup.trainset:
                raise ConfigurationError(
                    "the space has a demos variable without a pool and there is no trainset "
                    "to draw demos from: pass trainset=... or give the variable a pool")
            space = _bind(space, setup.trainset, force=False)
        if setup.propose_instructions:
            space, note = await _instructions(setup, space, tags)
            notes.append(note)
    paid = meter.cost if meter.cost_known else 0.0
    ledger.settle(None, paid)
    return space, notes, paid, meter.calls


async def _bootstrap(setup: RunSetup, space: Space, tags: Mapping[str, str]
                     ) -> tuple[Space, str]:
    from dspex_lab.optimize._bootstrap import abootstrap_demos

    if not setup.trainset:
        raise ConfigurationError("bootstrap=True needs a trainset to run the teacher on")
    wanted = max(v.n_pool for v in space.variables.values() if isinstance(v, Demos))
    result = await abootstrap_demos(setup.program, setup.trainset, setup.metric,
                                    teacher_config=setup.teacher, max_demos=wanted,
                                    concurrency=setup.example_concurrency, seed=setup.seed,
                                    tags=dict(tags))
    demos = list(result.demos)
    labelled = [r for r in setup.trainset if r not in demos]
    pool = demos + labelled[: max(0, wanted - len(demos))]
    note = (f"bootstrapped {len(demos)} demos (of {wanted} wanted) from the trainset"
            + ("" if len(demos) >= wanted else "; padded with labelled rows"))
    return _bind(space, pool, force=True), note


async def _instructions(setup: RunSetup, space: Space, tags: Mapping[str, str]
                        ) -> tuple[Space, str]:
    from dspex_lab.optimize._instructions import apropose_instructions

    modules = setup.program.named_modules()
    if len(modules) != 1:
        raise ConfigurationError("propose_instructions works for programs with one predictor; "
                                 "give multi-module programs instruction candidates with "
                                 "dx.variables.instructions([...], name='<module>.instructions')")
    predictor = next(iter(modules.values()))
    examples = list(setup.trainset[:8]) or list(setup.valset[:3])
    proposals = await apropose_instructions(predictor.signature, examples,
                                            lm=setup.teacher.get("model") if setup.teacher
                                            else None, n=setup.propose_instructions,
                                            seed=setup.seed, tags=dict(tags))
    existing = space.variables.get(INSTRUCTIONS)
    choices: list[Any] = list(existing.choices) if isinstance(existing, Categorical) else []
    for text in proposals:
        if text not in choices:
            choices.append(text)
    variable = Categorical(INSTRUCTIONS, choices,
                           default=existing.default if existing is not None else choices[0])
    others = [v for v in space.variables.values() if v.name != INSTRUCTIONS]
    prepared = Space([*others, variable], space.constraints, constants=space.constants)
    return prepared, f"{len(proposals)} instruction candidates proposed"
