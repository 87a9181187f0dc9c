"""The in-process event bus every part of dspex_lab reports to.

Subscribe with ``dspex_lab.events.subscribe(callback, kinds=["lm.*"])`` (one
event per call), or with ``batched=True`` for a list of events per call.
Kinds emitted today: ``lm.started``, ``lm.completed``, ``lm.failed`` (one per
attempt; the record says whether it will be retried), ``program.started``,
``program.completed``, ``program.failed``. Records are the dataclasses in
``dspex_lab.lm`` (:class:`~dspex_lab.lm.LMCallRecord`) and
``dspex_lab.programs`` (:class:`~dspex_lab.programs.ProgramCallRecord`).
"""

from __future__ import annotations

from dspex_lab.events._bus import Event, EventBus, Subscription
from dspex_lab.events._trace import Meter, Span, child_span, current_span, new_id, span_scope

__all__ = [
    "BUS",
    "Event",
    "EventBus",
    "Meter",
    "Span",
    "Subscription",
    "child_span",
    "current_span",
    "emit",
    "flush",
    "new_id",
    "span_scope",
    "subscribe",
]

BUS = EventBus()
"""The process-wide bus."""

subscribe = BUS.subscribe
emit = BUS.emit
flush = BUS.flush

