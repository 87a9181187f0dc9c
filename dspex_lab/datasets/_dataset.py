"""The two shapes every built-in dataset shares: :class:`Item` and :class:`Dataset`.

An :class:`Item` is the immutable ground truth the simulator answers from; a
:class:`Dataset` hands users fresh row dicts built from items, so code that
mutates its rows (adding predictions, say) can never corrupt the shared index
the simulator reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dspex_lab.datasets._rng import Rng

__all__ = ["SPLIT_SIZES", "Dataset", "Item", "Record", "Row"]

Row = dict[str, Any]
"""One example as users see it: ``id``, the input fields, the output fields, ``difficulty``."""

Record = tuple[str, Any, int, Mapping[str, Any]]
"""What a generator yields: (question, answer, difficulty, meta), before ids and splits."""

SPLIT_SIZES: Mapping[str, int] = MappingProxyType({"train": 300, "val": 200, "test": 200})
"""Rows per split, identical for every built-in dataset."""


@dataclass(frozen=True, slots=True)
class Item:
    """One ground-truth example, as the simulator sees it.

    ``meta`` carries what a generator knows beyond the answer (the arithmetic
    steps, the country a question is about) so the simulator can write
    plausible reasoning, code and wrong answers.
    """

    dataset: str
    task: str
    split: str
    id: str
    question: str
    answer: Any
    difficulty: int
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Dataset:
    """A named dataset with train/val/test rows and the signature that solves it.

    ``train``, ``val`` and ``test`` are lists of row dicts such as
    ``{"id": "math-val-0017", "question": "...", "answer": 14, "difficulty": 2}``;
    only ``input_fields`` are meant to reach a program, the rest is for scoring
    and analysis. Every :func:`dspex_lab.datasets.load` call returns fresh lists.
    """

    name: str
    train: list[Row]
    val: list[Row]
    test: list[Row]
    signature: str
    input_fields: tuple[str, ...]
    output_fields: tuple[str, ...]
    default_metric: str
    description: str = ""
    _by_question: Mapping[str, Item] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, signature={self.signature!r}, "
                f"metric={self.default_metric!r})")

    def split(self, name: str) -> list[Row]:
        """The rows of ``name`` ("train", "val" or "test")."""
        if name not in SPLIT_SIZES:
            from dspex_lab.errors import ConfigurationError

            raise ConfigurationError(
                f"Unknown split {name!r}; valid splits: {', '.join(SPLIT_SIZES)}."
            )
        rows: list[Row] = getattr(self, name)
        return rows

    def demos(self, k: int, seed: int = 0) -> list[Row]:
        """``k`` distinct train rows reduced to their input and output fields, for few-shot.

        The choice depends only on ``(name, k, seed)``, so a demo set can be
        named by those numbers in configs and reproduced anywhere.
        """
        if k < 0 or k > len(self.train):
            from dspex_lab.errors import ConfigurationError

            raise ConfigurationError(f"demos(k) needs 0 <= k <= {len(self.train)}, got {k}.")
        rng = Rng(_demo_seed(self.name, seed))
        fields = self.input_fields + self.output_fields
        return [{f: row[f] for f in fields} for row in rng.sample(self.train, k)]

    def item_by_question(self, text: str) -> Item | None:
        """The item whose first input field is ``text`` (surrounding whitespace ignored)."""
        return self._by_question.get(text.strip())


def _demo_seed(name: str, seed: int) -> int:
    """Mixes the dataset name into the seed so demos of different datasets are unrelated."""
    digest = hashlib.blake2b(f"{name}\x1f{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
