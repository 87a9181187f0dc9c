"""The answer-quality function: every constant that decides how good a reply is.

``p_correct`` is a logistic model: a logit is built by adding one documented
term per prompt feature, then squashed and clipped to ``[P_MIN, P_MAX]``.
Working on the logit scale gives diminishing returns for free: a bonus moves a
40% configuration much more than a 95% one. ``docs/simulator.md`` explains
every table below; change them here and only here.
"""

from __future__ import annotations

import math
from types import MappingProxyType

from dspex_lab.sim._models import TIERS

__all__ = [
    "ADAPTER_PENALTY",
    "BASE_LOGIT",
    "CODE_RAISE_SHARE",
    "DEMO_MAX_BONUS",
    "DEMO_SCALE",
    "DIFFICULTY_SLOPE",
    "FORMAT_ERROR",
    "INSTRUCTION_CAP",
    "INSTRUCTION_KEYWORDS",
    "JSON_MODE_FORMAT_ERROR",
    "MODULE_BONUS",
    "P_MAX",
    "P_MIN",
    "RETRY_BONUS",
    "TASKS",
    "TEMPERATURE_PENALTY",
    "instruction_bonus",
    "logit_correct",
    "p_code_raises",
    "p_correct",
    "p_format_error",
]

TASKS: tuple[str, ...] = ("math", "lookup", "sentiment")

P_MIN, P_MAX = 0.02, 0.98
"""No configuration is hopeless or perfect."""

BASE_LOGIT: dict[str, tuple[float, float, float, float]] = {
    #              tiny  small  medium  large   (difficulty 1, predict, chat, T=0, no demos)
    "math": (-0.6, 0.2, 1.1, 1.9),
    "lookup": (-0.2, 0.7, 1.7, 2.6),
    "sentiment": (0.3, 1.0, 1.8, 2.4),
}

DIFFICULTY_SLOPE: dict[str, float] = {"math": 0.55, "lookup": 0.6, "sentiment": 0.7}
"""Logit lost per difficulty level above 1 (math 1-4 operations, the others 1-3)."""

MODULE_BONUS: dict[str, dict[str, float]] = {
    "predict": {"math": 0.0, "lookup": 0.0, "sentiment": 0.0},
    "cot": {"math": 1.2, "lookup": 0.15, "sentiment": 0.35},
    # pot: the chance that the code prints the right answer; it may also raise
    # (see CODE_RAISE_SHARE). Computing a capital or a sentiment in code helps nobody.
    "pot": {"math": 1.5, "lookup": -0.9, "sentiment": -0.9},
}

DEMO_MAX_BONUS: dict[str, float] = {"math": 0.5, "lookup": 0.3, "sentiment": 0.7}
DEMO_SCALE = 3.0
"""k demos add ``DEMO_MAX_BONUS[task] * (1 - exp(-k / DEMO_SCALE))``: saturating in k."""

ADAPTER_PENALTY: dict[str, tuple[float, float, float, float]] = {
    #                   tiny   small  medium  large
    "chat": (0.0, 0.0, 0.0, 0.0),
    "markdown": (-0.15, -0.1, -0.05, 0.0),
    # Forcing weak models to answer inside JSON costs them reasoning quality.
    "json": (-0.6, -0.35, -0.1, 0.0),
}

INSTRUCTION_KEYWORDS: tuple[tuple[str, dict[str, float]], ...] = (
    # (lower-case substring, logit bonus per task); absent task = 0
    ("step by step", {"math": 0.3, "lookup": 0.05, "sentiment": 0.1}),
    ("carefully", {"math": 0.1, "lookup": 0.1, "sentiment": 0.1}),
    ("double-check", {"math": 0.1, "lookup": 0.05}),
    ("exact", {"math": 0.05, "lookup": 0.15}),
    ("one word", {"lookup": 0.1, "sentiment": 0.15}),
    ("only the number", {"math": 0.15}),
    ("expert", {"math": 0.05, "lookup": 0.05, "sentiment": 0.05}),
    ("guess", {"math": -0.3, "lookup": -0.3, "sentiment": -0.3}),
)
INSTRUCTION_CAP = 0.5
"""The keyword bonuses are summed, then clipped to ``[-INSTRUCTION_CAP, INSTRUCTION_CAP]``."""

TEMPERATURE_PENALTY: tuple[float, float, float, float] = (0.7, 0.55, 0.45, 0.35)
"""Logit lost is ``TEMPERATURE_PENALTY[tier] * temperature**2``: weak models wander more."""

RETRY_BONUS = 0.5
"""A program-of-thought retry that sees its previous code and the error does better."""

FORMAT_ERROR: dict[str, tuple[float, float, float, float]] = {
    #                   tiny   small  medium  large    (probability the reply breaks the format)
    "chat": (0.08, 0.04, 0.015, 0.005),
    "markdown": (0.12, 0.06, 0.025, 0.01),
    "json": (0.30, 0.15, 0.05, 0.02),  # JSON asked for in the prompt only
}
JSON_MODE_FORMAT_ERROR = 0.002
"""With ``response_format: json_object`` the provider enforces JSON: nearly never broken."""

CODE_RAISE_SHARE: tuple[float, float, float, float] = (0.6, 0.5, 0.45, 0.4)
"""Of the program-of-thought replies that are not correct, the share whose code raises."""

_TIER = MappingProxyType({name: i for i, name in enumerate(TIERS)})


def instruction_bonus(task: str, instructions: str) -> float:
    """Sum of the :data:`INSTRUCTION_KEYWORDS` bonuses found in ``instructions``, clipped."""
    text = instructions.lower()
    total = sum(bonus.get(task, 0.0) for keyword, bonus in INSTRUCTION_KEYWORDS if keyword in text)
    return max(-INSTRUCTION_CAP, min(INSTRUCTION_CAP, total))


def logit_correct(
    model: str, task: str, difficulty: int, module: str, adapter: str, n_demos: int,
    instructions: str, temperature: float, is_retry: bool,
) -> float:
    """The unclipped logit behind :func:`p_correct` (exposed for the docs and tests)."""
    tier = _TIER[model]
    return (
        BASE_LOGIT[task][tier]
        - DIFFICULTY_SLOPE[task] * max(0, difficulty - 1)
        + MODULE_BONUS[module][task]
        + DEMO_MAX_BONUS[task] * (1.0 - math.exp(-max(0, n_demos) / DEMO_SCALE))
        + ADAPTER_PENALTY[adapter][tier]
        + instruction_bonus(task, instructions)
        - TEMPERATURE_PENALTY[tier] * temperature * temperature
        + (RETRY_BONUS if is_retry else 0.0)
    )


def p_correct(
    model: str, task: str, difficulty: int, module: str, adapter: str, n_demos: int,
    instructions: str, temperature: float, is_retry: bool,
) -> float:
    """Probability that a well-formed reply carries the right answer (pot: code prints it)."""
    z = logit_correct(model, task, difficulty, module, adapter, n_demos, instructions,
                      temperature, is_retry)
    return min(P_MAX, max(P_MIN, 1.0 / (1.0 + math.exp(-z))))


def p_format_error(model: str, adapter: str, json_mode_used: bool) -> float:
    """Probability that the reply breaks the adapter's format (drawn independently)."""
    if adapter == "json" and json_mode_used:
        return JSON_MODE_FORMAT_ERROR
    return FORMAT_ERROR[adapter][_TIER[model]]


def p_code_raises(model: str) -> float:
    """Share of incorrect program-of-thought replies whose code raises instead of printing."""
    return CODE_RAISE_SHARE[_TIER[model]]
