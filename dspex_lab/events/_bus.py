"""An in-process publish/subscribe bus (the plan's signal bus).

Why it looks like this: the LM hot path emits several events per call, so
``emit`` must cost about a microsecond and must never wait for a subscriber.
Each subscriber gets its own queue and its own daemon thread; a subscriber
that is slow only delays itself, and one that raises is counted and reported
once, never propagated into the call that emitted the event.

Overflow policy per subscriber: ``"drop"`` (default; widgets and loggers that
can lose an update) discards the newest event and counts it in ``dropped``;
``"block"`` (the store writer, which must lose nothing) makes ``emit`` wait
for room, i.e. backpressure instead of unbounded memory.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from dspex_lab.errors import DspexWarning

__all__ = ["Event", "EventBus", "Subscription"]

_log = logging.getLogger("dspex_lab.events")

Overflow = Literal["drop", "block"]
_STOP = object()


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: ``kind`` such as ``"lm.completed"`` and its record."""

    kind: str
    record: Any
    time: float = field(default_factory=time.time)


class Subscription:
    """A live subscription; ``close()`` stops delivery after the queued events drain.

    Delivery is batched: the subscriber thread wakes, drains everything queued,
    delivers it in order, then pauses ``batch_ms`` before looking again. Under
    load that is a few wake-ups per second instead of one per event, which is
    what keeps a busy subscriber from competing with the LM loop for the GIL.
    """

    def __init__(self, bus: EventBus, callback: Callable[[Any], object],
                 kinds: frozenset[str] | None, overflow: Overflow, maxsize: int,
                 name: str, batch_ms: float = 5.0, batched: bool = False) -> None:
        self._bus = bus
        self.callback = callback
        self.batched = batched
        self.kinds = kinds
        self.overflow = overflow
        self.name = name
        self.maxsize = maxsize
        self.dropped = 0
        self.errors = 0
        self.delivered = 0
        self._batch_s = batch_ms / 1000.0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._offered = itertools.count(1)
        self._last_offered = 0   # approximate under races; only bounds the queue
        self._taken = 0          # written by the subscriber thread only
        self._thread = threading.Thread(target=self._run, name=f"dspex-events-{name}",
                                        daemon=True)
        self._thread.start()

    def matches(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds or _prefix_match(self.kinds, kind)

    @property
    def pending(self) -> int:
        return max(0, self._last_offered - self._taken)

    def offer(self, event: Event) -> None:
        if self._last_offered - self._taken >= self.maxsize:
            if self.overflow == "drop":
                self.dropped += 1
                return
            while self._last_offered - self._taken >= self.maxsize and self._thread.is_alive():
                time.sleep(0.001)  # backpressure: wait for the subscriber to catch up
        self._last_offered = next(self._offered)
        self._queue.put(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event queued so far has been handled; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._bus._remove(self)
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            batch = [get()]
            while True:
                try:
                    batch.append(get_nowait())
                except queue.Empty:
                    break
            if self._deliver_batch(batch):
                return
            if self._batch_s:
                time.sleep(self._batch_s)

    def _deliver_batch(self, items: list[object]) -> bool:
        """Deliver the events of one drained batch in order (one callback per event, or
        one per run of events between markers when ``batched``); a flush marker is set
        only after everything queued before it was delivered. True on stop."""
        events: list[Event] = []
        for item in items:
            if item is _STOP or isinstance(item, threading.Event):
                self._deliver(events)
                events = []
                if item is _STOP:
                    return True
                item.set()  # type: ignore[attr-defined]
                continue
            events.append(item)  # type: ignore[arg-type]
        self._deliver(events)
        return False

    def _deliver(self, events: list[Event]) -> None:
        if not events:
            return
        if self.batched:
            self._call(events, len(events), events[0].kind)
        else:
            for event in events:
                self._call(event, 1, event.kind)

    def _call(self, arg: object, n: int, kind: str) -> None:
        """``callback(arg)`` for ``n`` events (the first of kind ``kind``)."""
        self._taken += n
        try:
            self.callback(arg)
            self.delivered += n
        except Exception as exc:  # a subscriber's bug must not break anything else
            self.errors += 1
            if self.errors == 1:
                _log.warning("event subscriber %r failed on %s: %r (further failures "
                             "are counted in .errors)", self.name, kind, exc)


def _prefix_match(kinds: frozenset[str], kind: str) -> bool:
    # "lm.*" subscribes to every "lm." event.
    head = kind.split(".", 1)[0]
    return f"{head}.*" in kinds


class EventBus:
    """Fan-out of events to subscribers, each on its own thread and queue."""

    _names = itertools.count(1)

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self._kind_cache: dict[str, tuple[Subscription, ...]] = {}

    def subscribe(self, callback: Callable[[Any], object],
                  kinds: Iterable[str] | str | None = None, *,
                  overflow: Overflow = "drop", maxsize: int = 100_000,
                  name: str | None = None, batch_ms: float = 5.0,
                  batched: bool = False) -> Subscription:
        """Call ``callback(event)`` on a dedicated thread for each matching event.

        ``kinds`` filters by exact kind or ``"prefix.*"``; ``None`` means all.
        Events arrive in order, in batches at most ``batch_ms`` apart.
        ``batched=True`` calls ``callback(events)`` once per batch with the list of
        events instead: one call (and, for a subscriber that locks, one lock) per
        batch rather than per event, which is what a subscriber that keeps
        everything (the store) wants under load.
        """
        if overflow not in ("drop", "block"):
            raise ValueError(f"overflow must be 'drop' or 'block', not {overflow!r}")
        if isinstance(kinds, str):
            kinds = (kinds,)
        sub = Subscription(self, callback, None if kinds is None else frozenset(kinds),
                           overflow, maxsize, name or f"sub{next(self._names)}", batch_ms,
                           batched)
        with self._lock:
            self._subs = (*self._subs, sub)
            self._kind_cache = {}
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            self._kind_cache = {}

    def wants(self, kind: str) -> bool:
        """Cheap check so emitters can skip building a record nobody reads."""
        return bool(self._targets(kind))

    def _targets(self, kind: str) -> tuple[Subscription, ...]:
        targets = self._kind_cache.get(kind)
        if targets is None:
            targets = tuple(s for s in self._subs if s.matches(kind))
            self._kind_cache[kind] = targets
        return targets

    def emit(self, kind: str, record: Any) -> None:
        targets = self._targets(kind)
        if not targets:
            return
        event = Event(kind, record)
        for sub in targets:
            sub.offer(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until all subscribers handled everything emitted before this call."""
        ok = True
        for sub in self._subs:
            ok = sub.flush(timeout) and ok
        if not ok:
            warnings.warn("event subscribers did not drain in time", DspexWarning,
                          stacklevel=2)
        return ok

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subs
