"""What a program call returns: output fields plus what producing them cost."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Prediction"]


class Prediction(Mapping[str, Any]):
    """Output fields by name (``pred.answer`` or ``pred["answer"]``) and call facts.

    ``cost`` is dollars (None if a model's price is unknown), ``latency_s`` the
    summed LM latency, ``lm_calls`` how many LM calls it took (retries of
    failed attempts are not counted; parse fallbacks and code retries are).
    Cache hits cost 0 and take no time; ``uncached_cost`` and
    ``uncached_latency_s`` say what the calls cost when they were first made.
    """

    __slots__ = ("_fields", "call_id", "cost", "latency_s", "lm_calls", "uncached_cost",
                 "uncached_latency_s")

    def __init__(self, fields: dict[str, Any], *, cost: float | None = None,
                 latency_s: float = 0.0, lm_calls: int = 0, call_id: str = "",
                 uncached_cost: float | None = None,
                 uncached_latency_s: float | None = None) -> None:
        self._fields = fields
        self.cost = cost
        self.latency_s = latency_s
        self.lm_calls = lm_calls
        self.call_id = call_id
        # what the calls cost without the cache: optimizers use these, never cost/latency
        self.uncached_cost = cost if uncached_cost is None else uncached_cost
        self.uncached_latency_s = latency_s if uncached_latency_s is None else uncached_latency_s

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(
                f"Prediction has no field {name!r}; fields: {list(self._fields)}") from None

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._fields)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"Prediction({fields})"
