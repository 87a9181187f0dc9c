"""Injected failures: which request gets a 429, a 500, a hang or a truncated body.

Rates are fractions of requests. The choice is a stable hash of (server seed,
request counter), so a run with the same seed and the same request order
faults the same requests; the ``X-Sim-Fault`` request header forces one kind
for a single request, which is what deterministic tests use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dspex_lab.sim._draws import unit

__all__ = ["FAULT_HEADER", "FAULT_KINDS", "Faults", "pick_fault"]

FAULT_HEADER = "X-Sim-Fault"
FAULT_KINDS: tuple[str, ...] = ("429", "500", "hang", "truncated")
_HEADER_ALIASES = {"429": "429", "500": "500", "hang": "hang", "truncate": "truncated",
                   "truncated": "truncated"}


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault rates (each in [0, 1], summing to at most 1) and their timing parameters.

    ``retry_after_s`` is sent in the 429's ``Retry-After`` header; a hang
    sleeps ``hang_s`` (unscaled by speed) before answering normally, long
    after any sensible client timeout.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_truncated: float = 0.0
    retry_after_s: float = 0.05
    hang_s: float = 30.0

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.rate_500, self.rate_hang, self.rate_truncated)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be in [0, 1] and sum to at most 1, got {rates}")
        if self.retry_after_s < 0 or self.hang_s < 0:
            raise ValueError("retry_after_s and hang_s must be >= 0")

    @property
    def any(self) -> bool:
        return self.rate_429 + self.rate_500 + self.rate_hang + self.rate_truncated > 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Build from JSON (unknown keys are an error, so typos do not silently do nothing)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in data.items()})


def pick_fault(faults: Faults, header: str | None, seed: int, counter: int) -> str | None:
    """The fault for request number ``counter``: the header's, else a seeded draw, else None.

    Raises ValueError for an unknown header value.
    """
    if header is not None:
        kind = _HEADER_ALIASES.get(header.strip().lower())
        if kind is None:
            raise ValueError(f"{FAULT_HEADER} must be one of 429, 500, hang, truncate")
        return kind
    if not faults.any:
        return None
    u = unit(str(seed), f"fault:{counter}")
    for kind, rate in zip(
        FAULT_KINDS, (faults.rate_429, faults.rate_500, faults.rate_hang, faults.rate_truncated),
        strict=True,
    ):
        if u < rate:
            return kind
        u -= rate
    return None
