"""Widgets across Panel versions: Panel 1.9 renamed a widget's ``name`` to ``label``
and ``button_type`` to ``color`` (the old names warn), while the oldest Panel we
support (1.5) knows only the old ones."""

from __future__ import annotations

from typing import Any

__all__ = ["button", "html", "labelled", "markdown", "vega"]


def labelled(cls: Any, label: str, **kwargs: Any) -> Any:
    """``cls(label=label, ...)`` where Panel knows ``label``, else ``cls(name=label, ...)``."""
    key = "label" if "label" in cls.param else "name"
    return cls(**{key: label}, **kwargs)


def button(label: str, kind: str = "primary", **kwargs: Any) -> Any:
    """A button of ``kind`` (primary, default, ...) under either Panel naming."""
    import panel as pn

    cls = pn.widgets.Button
    key = "color" if "color" in cls.param else "button_type"
    return labelled(cls, label, **{key: kind}, **kwargs)


def html(text: str = "", **kwargs: Any) -> Any:
    """An HTML pane (``text`` must already be escaped: see :mod:`dspex_lab.app._html`)."""
    import panel as pn

    return pn.pane.HTML(text, **kwargs)  # type: ignore[no-untyped-call]


def markdown(text: str, **kwargs: Any) -> Any:
    import panel as pn

    return pn.pane.Markdown(text, **kwargs)  # type: ignore[no-untyped-call]


def vega(spec: dict[str, Any], **kwargs: Any) -> Any:
    import panel as pn

    return pn.pane.Vega(spec, **kwargs)  # type: ignore[no-untyped-call]
