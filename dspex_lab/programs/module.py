"""``dx.Module``: the base of every program, from one predictor to a user pipeline.

A user program is a plain Python class: subclass :class:`Module`, create
predictors in ``__init__``, call them in ``forward`` (sync) or ``aforward``
(async). Every predictor reachable from the program's attributes is
addressable by its attribute path (``"gen"``, ``"steps[1]"``, ``"sub.judge"``)
so the variables and optimizer layers can configure each one; configuration
never mutates a program, it returns a configured copy.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dspex_lab import _hooks, events
from dspex_lab.errors import ConfigurationError
from dspex_lab.events._trace import Meter, child_span, span_scope
from dspex_lab.lm import run_sync
from dspex_lab.programs.prediction import Prediction
from dspex_lab.programs.records import ProgramCallRecord

if TYPE_CHECKING:
    from dspex_lab.programs.predictors import Predictor

__all__ = ["Module"]

_bus = events.BUS
_executor: ThreadPoolExecutor | None = None


def _thread_pool() -> ThreadPoolExecutor:
    """Threads for user programs whose ``forward`` is synchronous."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="dspex-forward")
    return _executor


class Module:
    """Base class of programs. Subclasses define ``forward`` or ``aforward``."""

    # -- structure ---------------------------------------------------------------
    def named_modules(self) -> dict[str, Predictor]:
        """Every predictor inside this program, by attribute path."""
        return dict(_walk(self, ""))

    def input_names(self) -> list[str]:
        """The input fields a call needs (the parameters of ``forward``/``aforward``)."""
        fn = self._entry_point()
        params = inspect.signature(fn).parameters.values()
        return [p.name for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.default is p.empty and p.name not in self._injected_names()]

    def _injected_names(self) -> frozenset[str]:
        return frozenset()

    def config(self) -> dict[str, dict[str, Any]]:
        """The current configuration of each predictor, by path (JSON-friendly)."""
        return {path: dict(m.own_config()) for path, m in self.named_modules().items()}

    def with_config(self, config: Mapping[str, Any]) -> Module:
        """A configured copy. Keys apply to every predictor, or target one:
        ``{"adapter": "json"}``, ``{"gen.temperature": 0.2}``, ``{"gen": {"module": "cot"}}``.
        """
        from dspex_lab.programs.config import split_config

        modules = self.named_modules()
        shared, targeted = split_config(config, list(modules))
        clone = copy.deepcopy(self)
        for path, leaf in modules.items():
            changes = {**shared, **targeted.get(path, {})}
            if changes:
                _set_path(clone, path, leaf.with_config(changes))
        return clone

    # -- calling -------------------------------------------------------------------
    def __call__(self, **inputs: Any) -> Prediction:
        """Run the program synchronously (works in scripts and inside Jupyter)."""
        return run_sync(self.acall(**inputs))

    async def acall(self, **inputs: Any) -> Prediction:
        """Run the program on the background loop; reports ``program.*`` events."""
        if _hooks.pending:  # e.g. open the default store before deciding what to report
            _hooks.run_first_call_hooks()
        meter = Meter()
        span, parent_id = child_span(meter=meter)
        record: ProgramCallRecord | None = None
        if _bus.wants("program.started") or _bus.wants("program.completed") \
                or _bus.wants("program.failed"):
            record = ProgramCallRecord(span.span_id, span.trace_id, parent_id,
                                       self._display_name(), self._kind(), dict(inputs),
                                       self._record_config(), time.time(), tags=dict(span.tags))
            _bus.emit("program.started", record)
        with span_scope(span):
            try:
                fields = await self._run(inputs)
            except BaseException as exc:
                if record is not None:
                    _finish(record, meter)
                    record.error_kind = getattr(exc, "kind", type(exc).__name__)
                    record.error_message = str(exc)
                    record.raw_text = getattr(exc, "raw", None)
                    _bus.emit("program.failed", record)
                raise
        cost = meter.cost if meter.cost_known else None
        if record is not None:
            _finish(record, meter)
            record.outputs = fields
            _bus.emit("program.completed", record)
        return Prediction(fields, cost=cost, latency_s=meter.latency_s,
                          lm_calls=meter.calls, call_id=span.span_id,
                          uncached_cost=meter.uncached_cost if meter.cost_known else None,
                          uncached_latency_s=meter.uncached_latency_s)

    async def _run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        aforward = getattr(self, "aforward", None)
        if aforward is not None:
            result = await aforward(**inputs)
        else:
            forward = getattr(self, "forward", None)
            if forward is None:
                raise ConfigurationError(
                    f"{type(self).__name__} defines neither forward() nor aforward(); "
                    f"a program must define one of them.")
            ctx = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                _thread_pool(), functools.partial(ctx.run, forward, **inputs))
        return _as_fields(result, type(self).__name__)

    # -- naming ---------------------------------------------------------------------
    def _entry_point(self) -> Any:
        entry = getattr(self, "aforward", None) or getattr(self, "forward", None)
        if entry is None:
            raise ConfigurationError(f"{type(self).__name__} defines neither forward() nor "
                                     f"aforward(); a program must define one of them.")
        return entry

    def _display_name(self) -> str:
        return type(self).__name__

    def _kind(self) -> str:
        return "program"

    def _record_config(self) -> dict[str, Any]:
        return {path: m.own_config() for path, m in self.named_modules().items()}

    def __repr__(self) -> str:
        inner = ", ".join(f"{path}={m!r}" for path, m in self.named_modules().items())
        return f"{type(self).__name__}({inner})"

    def _repr_html_(self) -> str:
        """A notebook table: one row per predictor with its signature and settings."""
        import html

        rows = []
        for path, m in self.named_modules().items():
            cfg = m.own_config()
            instructions = str(cfg.get("instructions") or "")
            cells = [path, str(cfg.get("module") or ""), str(m.signature),
                     str(cfg.get("model") or "(default)"), str(cfg.get("adapter") or "chat"),
                     "" if cfg.get("temperature") is None else str(cfg["temperature"]),
                     str(len(cfg.get("demos") or [])),
                     instructions[:60] + ("..." if len(instructions) > 60 else "")]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("module", "kind", "signature", "model",
                                                  "adapter", "temperature", "demos",
                                                  "instructions"))
        return (f"<div><b>{html.escape(type(self).__name__)}</b><table><tr>{head}</tr>"
                + "".join(rows) + "</table></div>")


def _finish(record: ProgramCallRecord, meter: Meter) -> None:
    record.ended_at = time.time()
    record.cost = meter.cost if meter.cost_known else None
    record.latency_s = meter.latency_s
    record.lm_calls = meter.calls


def _as_fields(result: Any, where: str) -> dict[str, Any]:
    if isinstance(result, Prediction):
        return result.to_dict()
    if isinstance(result, Mapping):
        return dict(result)
    raise ConfigurationError(
        f"{where}.forward returned {type(result).__name__}; return a Prediction "
        f"(what a module call returns) or a dict of output fields.")


def _walk(obj: Any, prefix: str) -> Iterator[tuple[str, Predictor]]:
    from dspex_lab.programs.predictors import Predictor

    if isinstance(obj, Predictor):
        yield (prefix or obj.kind), obj
        return
    for name, value in vars(obj).items():
        if name.startswith("_"):
            continue
        path = f"{prefix}.{name}" if prefix else name
        yield from _walk_value(value, path, Predictor)


def _walk_value(value: Any, path: str, predictor_cls: type) -> Iterator[tuple[str, Predictor]]:
    if isinstance(value, predictor_cls):
        yield path, value  # type: ignore[misc]
    elif isinstance(value, Module):
        yield from _walk(value, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk_value(item, f"{path}[{i}]", predictor_cls)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_value(item, f"{path}[{key!r}]", predictor_cls)


def _set_path(root: Module, path: str, new: Any) -> None:
    """Replace the object at an attribute path produced by :func:`_walk`."""
    from dspex_lab.programs.predictors import Predictor

    if isinstance(root, Predictor):
        raise AssertionError("a predictor is configured directly, not by path")
    parts = _split_path(path)
    target: Any = root
    for part in parts[:-1]:
        target = getattr(target, part) if isinstance(target, Module) else target[part]
    last = parts[-1]
    if isinstance(target, Module):
        setattr(target, str(last), new)
    elif isinstance(target, list | dict):
        target[last] = new
    else:
        raise ConfigurationError(f"cannot replace the module at {path!r} (inside a tuple?); "
                                 f"use a list for groups of modules.")


def _split_path(path: str) -> list[Any]:
    import ast
    import re

    parts: list[Any] = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]+)\]", path):
        parts.append(name if name else ast.literal_eval(index))
    return parts
