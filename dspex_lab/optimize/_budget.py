"""Running accounting of a run's dollars, so a dollar budget is never exceeded.

Before a batch of examples starts, the trial *reserves* what that batch may
cost (a conservative per-example estimate times the batch size); the batch
starts only if the reservation fits in what is left after everything already
spent and reserved. When the batch ends the reservation is replaced by what
was really paid. As long as no single example costs more than its
reservation, the total paid can never pass the budget, however many trials
run at once.

The per-example estimate is the larger of the pre-flight estimate (times
:data:`SAFETY`) and the dearest example seen so far for the same model; with
neither, one example is run alone as a probe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["SAFETY", "Ledger", "Reservation"]

SAFETY = 2.0
"""How much dearer than its estimate an example may turn out without breaking the budget."""


@dataclass
class Reservation:
    """Dollars set aside for ``examples`` examples of one trial (see :meth:`Ledger.settle`)."""

    dollars: float
    examples: int


@dataclass
class Ledger:
    """Dollars spent and reserved against an optional limit (thread-safe)."""

    limit: float | None
    spent: float = 0.0
    reserved: float = 0.0
    dearest_example: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def remaining(self) -> float | None:
        """What may still be reserved (None: no limit)."""
        if self.limit is None:
            return None
        return max(0.0, self.limit - self.spent - self.reserved)

    def per_example(self, key: str, estimate: float | None) -> float | None:
        """A safe per-example reservation for a configuration (``key``: its model), or
        None when nothing is known yet (then probe with one example)."""
        seen = self.dearest_example.get(key)
        candidates = [v for v in (None if estimate is None else estimate * SAFETY,
                                  None if seen is None else seen * SAFETY) if v is not None]
        return max(candidates) if candidates else None

    def reserve(self, wanted: int, per_example: float | None) -> Reservation | None:
        """Reserve up to ``wanted`` examples; None when not even one fits.

        Unknown cost (``per_example`` None) reserves a single example with all that is
        left, so a probe can never overspend either."""
        with self._lock:
            if self.limit is None:
                return Reservation(0.0, wanted)
            left = self.limit - self.spent - self.reserved
            if per_example is None:
                if left <= 0:
                    return None
                self.reserved += left
                return Reservation(left, 1)
            if per_example <= 0:
                return Reservation(0.0, wanted)
            n = min(wanted, int(left // per_example))
            if n < 1:
                return None
            self.reserved += n * per_example
            return Reservation(n * per_example, n)

    def settle(self, reservation: Reservation | None, paid: float) -> None:
        """Replace a reservation by what was really paid."""
        with self._lock:
            if reservation is not None:
                self.reserved = max(0.0, self.reserved - reservation.dollars)
            self.spent += paid

    def observe(self, key: str, dearest: float) -> None:
        """Remember the dearest single example seen for ``key``."""
        with self._lock:
            if dearest > self.dearest_example.get(key, 0.0):
                self.dearest_example[key] = dearest
