"""The event bus's batched delivery (``subscribe(..., batched=True)``), on a private bus."""

from __future__ import annotations

import threading
import time

from dspex_lab.events import Event, EventBus


def test_batched_subscriber_gets_every_event_once_in_order_in_lists() -> None:
    bus = EventBus()
    calls: list[list[Event]] = []
    sub = bus.subscribe(calls.append, ["x.*"], batched=True, overflow="block", maxsize=50,
                        name="batched")
    try:
        for i in range(2000):
            bus.emit("x.tick", i)
            bus.emit("y.other", i)  # not subscribed
        assert sub.flush(10)
        seen = [e.record for batch in calls for e in batch]
        assert seen == list(range(2000))
        assert all(isinstance(batch, list) and batch for batch in calls)
        assert len(calls) < 2000  # several events per call
        assert sub.delivered == 2000 and sub.pending == 0 and sub.errors == 0
    finally:
        sub.close()


def test_flush_returns_only_after_what_came_before_was_delivered() -> None:
    bus = EventBus()
    delivered: list[int] = []
    gate = threading.Event()

    def slow(events: list[Event]) -> None:
        gate.wait(5)
        delivered.extend(e.record for e in events)

    sub = bus.subscribe(slow, batched=True, name="slow")
    try:
        for i in range(10):
            bus.emit("x.tick", i)
        assert not sub.flush(0.2)  # the subscriber is still held up
        gate.set()
        assert sub.flush(5)
        assert delivered == list(range(10))
    finally:
        sub.close()


def test_a_failing_batched_subscriber_is_counted_and_goes_on() -> None:
    bus = EventBus()
    kept: list[int] = []

    def flaky(events: list[Event]) -> None:
        if any(e.record == 3 for e in events):
            raise RuntimeError("boom")
        kept.extend(e.record for e in events)

    sub = bus.subscribe(flaky, batched=True, name="flaky", batch_ms=0)
    try:
        for i in range(3):
            bus.emit("x.tick", i)
        assert sub.flush(5)
        bus.emit("x.tick", 3)
        assert sub.flush(5)
        time.sleep(0.01)
        bus.emit("x.tick", 4)
        assert sub.flush(5)
        assert sub.errors == 1
        assert kept == [0, 1, 2, 4]
    finally:
        sub.close()
