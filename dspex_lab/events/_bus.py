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
    """A live subscription; ``close()`` stops delivery after the queued events drain."""

    def __init__(self, bus: EventBus, callback: Callable[[Event], object],
                 kinds: frozenset[str] | None, overflow: Overflow, maxsize: int,
                 name: str) -> None:
        self._bus = bus
        self.callback = callback
        self.kinds = kinds
        self.overflow = overflow
        self.name = name
        self.dropped = 0
        self.errors = 0
        self.delivered = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._run, name=f"dspex-events-{name}",
                                        daemon=True)
        self._thread.start()

    def matches(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds or _prefix_match(self.kinds, kind)

    def offer(self, event: Event) -> None:
        if self.overflow == "block":
            self._queue.put(event)
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

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
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            assert isinstance(item, Event)
            try:
                self.callback(item)
                self.delivered += 1
            except Exception as exc:  # a subscriber's bug must not break anything else
                self.errors += 1
                if self.errors == 1:
                    _log.warning("event subscriber %r failed on %s: %r (further failures "
                                 "are counted in .errors)", self.name, item.kind, exc)


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

    def subscribe(self, callback: Callable[[Event], object],
                  kinds: Iterable[str] | str | None = None, *,
                  overflow: Overflow = "drop", maxsize: int = 100_000,
                  name: str | None = None) -> Subscription:
        """Call ``callback(event)`` on a dedicated thread for each matching event.

        ``kinds`` filters by exact kind or ``"prefix.*"``; ``None`` means all.
        """
        if overflow not in ("drop", "block"):
            raise ValueError(f"overflow must be 'drop' or 'block', not {overflow!r}")
        if isinstance(kinds, str):
            kinds = (kinds,)
        sub = Subscription(self, callback, None if kinds is None else frozenset(kinds),
                           overflow, maxsize, name or f"sub{next(self._names)}")
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
