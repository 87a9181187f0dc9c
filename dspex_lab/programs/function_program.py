"""Programs written as plain functions: ``@dx.program(gen=dx.Predict(...))``.

The modules a function uses are passed in as keyword arguments rather than
read from globals, so that a configured copy can hand the function its own
configured modules without touching anyone else's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from dspex_lab.errors import ConfigurationError
from dspex_lab.programs.module import Module

__all__ = ["FunctionProgram", "program"]


class FunctionProgram(Module):
    """A function plus the modules it receives as keyword arguments."""

    def __init__(self, fn: Callable[..., Any], modules: dict[str, Module]) -> None:
        params = inspect.signature(fn).parameters
        missing = [name for name in modules if name not in params]
        if missing:
            raise ConfigurationError(
                f"{fn.__name__}() has no parameter named {missing[0]!r} for that module; "
                f"add it as a keyword-only parameter: def {fn.__name__}(..., *, "
                f"{missing[0]}): ...")
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn)
        for name, module in modules.items():
            if not isinstance(module, Module):
                raise ConfigurationError(f"{name}= must be a dx module, not "
                                         f"{type(module).__name__}.")
            setattr(self, name, module)
        self._module_names = tuple(modules)
        functools.update_wrapper(self, fn)

    def _modules(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._module_names}

    def _injected_names(self) -> frozenset[str]:
        return frozenset(self._module_names)

    def _entry_point(self) -> Any:
        return self._fn

    def _display_name(self) -> str:
        return self._fn.__name__

    async def _run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if self._is_async:
            from dspex_lab.programs.module import _as_fields

            return _as_fields(await self._fn(**inputs, **self._modules()), self._fn.__name__)
        return await super()._run(inputs)

    def forward(self, **inputs: Any) -> Any:
        return self._fn(**inputs, **self._modules())


def program(**modules: Module) -> Callable[[Callable[..., Any]], FunctionProgram]:
    """Turn a function into a program whose modules are configurable by name.

    ::

        @dx.program(gen=dx.ChainOfThought("question -> answer"))
        def qa(question, *, gen):
            return gen(question=question)
    """

    def wrap(fn: Callable[..., Any]) -> FunctionProgram:
        return FunctionProgram(fn, modules)

    return wrap
