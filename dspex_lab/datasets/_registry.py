"""Builds the built-in datasets once, and indexes every question for the simulator.

Generation is pure and deterministic, so it is cached per process; users get
fresh row dicts on every :func:`load` while the simulator reads the shared,
immutable :class:`Item` index through :func:`find_item`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from dspex_lab.datasets import _local_qa, _lookup, _math, _sentiment
from dspex_lab.datasets._dataset import SPLIT_SIZES, Dataset, Item, Record, Row
from dspex_lab.errors import ConfigurationError

__all__ = ["find_item", "items", "load", "names"]


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    task: str
    id_prefix: str
    signature: str
    input_field: str
    output_field: str
    default_metric: str
    description: str
    generate: Callable[[int], Iterator[Record]]
    simulated: bool = True  # the simulator knows its answers (else: for real models only)


_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in (
        _Spec(
            "sim-math", "math", "math", "question -> answer: int", "question", "answer",
            "exact_match", "Arithmetic word problems with 1-4 operations; integer answers.",
            _math.generate,
        ),
        _Spec(
            "sim-lookup", "lookup", "lookup", "question -> answer", "question", "answer",
            "normalized_match", "Capitals, countries and continents of 60 real countries.",
            _lookup.generate,
        ),
        _Spec(
            "sim-sentiment", "sentiment", "sentiment", "review -> sentiment", "review",
            "sentiment", "normalized_match",
            "Short product reviews labelled positive, negative or neutral.",
            _sentiment.generate,
        ),
        _Spec(
            "local-qa", "qa", "qa", "question -> answer", "question", "answer",
            "normalized_match",
            "Plurals, opposites, famous capitals, colours, days and months: one-word answers "
            "a 135M local model can give (for local/smollm2).",
            _local_qa.generate, simulated=False,
        ),
    )
}


def names() -> list[str]:
    """The names :func:`load` accepts."""
    return list(_SPECS)


def _spec(name: str) -> _Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown dataset {name!r}; valid names: {', '.join(_SPECS)}."
        ) from None


@cache
def _items(name: str) -> Mapping[str, tuple[Item, ...]]:
    """Items of every split, generated once: the first 300 records are train, then val, test."""
    spec = _spec(name)
    records = spec.generate(sum(SPLIT_SIZES.values()))
    by_split: dict[str, tuple[Item, ...]] = {}
    for split, size in SPLIT_SIZES.items():
        by_split[split] = tuple(
            Item(spec.name, spec.task, split, f"{spec.id_prefix}-{split}-{i:04d}",
                 question, answer, difficulty, meta)
            for i, (question, answer, difficulty, meta) in zip(range(size), records, strict=False)
        )
    return MappingProxyType(by_split)


def items(name: str, split: str) -> tuple[Item, ...]:
    """The immutable items of one split (what the simulator and expected metrics read)."""
    by_split = _items(name)
    if split not in by_split:
        raise ConfigurationError(
            f"Unknown split {split!r}; valid splits: {', '.join(SPLIT_SIZES)}."
        )
    return by_split[split]


def _row(spec: _Spec, item: Item) -> Row:
    return {
        "id": item.id,
        spec.input_field: item.question,
        spec.output_field: item.answer,
        "difficulty": item.difficulty,
    }


@cache
def _question_index(name: str) -> Mapping[str, Item]:
    return MappingProxyType(
        {item.question: item for split in _items(name).values() for item in split}
    )


def load(name: str) -> Dataset:
    """The dataset ``name`` with fresh row lists (see :func:`names`)."""
    spec = _spec(name)
    by_split = _items(name)
    return Dataset(
        name=spec.name,
        train=[_row(spec, it) for it in by_split["train"]],
        val=[_row(spec, it) for it in by_split["val"]],
        test=[_row(spec, it) for it in by_split["test"]],
        signature=spec.signature,
        input_fields=(spec.input_field,),
        output_fields=(spec.output_field,),
        default_metric=spec.default_metric,
        description=spec.description,
        _by_question=_question_index(name),
    )


@cache
def _global_index() -> Mapping[str, Item]:
    merged: dict[str, Item] = {}
    for name, spec in _SPECS.items():
        if spec.simulated:  # the simulator has no quality model for the others
            merged.update(_question_index(name))
    return MappingProxyType(merged)


def find_item(question: str) -> Item | None:
    """The item of any built-in dataset whose question is ``question`` (whitespace-stripped).

    This is the index the simulator uses to recognise a question it has the
    ground truth for (datasets made for real models only, such as local-qa, are
    not in it); it tries the exact text first so the hot path does no copying.
    """
    index = _global_index()
    found = index.get(question)
    if found is None:
        found = index.get(question.strip())
    return found
