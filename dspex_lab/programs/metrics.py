"""Metrics: ``metric(example, prediction) -> float`` in [0, 1].

Each built-in compares one output field (``field=``) or, by default, every
field the example and the prediction both have (all must score 1 for exact
kinds; the mean for graded ones). Any callable with the same shape works
as a metric; a bool result counts as 0 or 1.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ExactMatch", "Metric", "NormalizedMatch", "NumericTolerance", "TokenF1",
           "exact_match", "normalize_text", "normalized_match", "numeric_tolerance", "token_f1"]

Metric = Callable[[Mapping[str, Any], Mapping[str, Any]], float | bool]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(text: Any) -> str:
    """Lowercase, strip accents, punctuation, articles and extra spaces."""
    value = unicodedata.normalize("NFKD", str(text))
    value = "".join(ch for ch in value if not unicodedata.combining(ch)).lower()
    value = _ARTICLES.sub(" ", value.translate(_PUNCT))
    return " ".join(value.split())


class _FieldMetric:
    """Shared field selection: one named field, or every shared field."""

    name = "metric"

    def __init__(self, field: str | None = None) -> None:
        self.field = field

    def _pairs(self, example: Mapping[str, Any], pred: Mapping[str, Any]
               ) -> list[tuple[Any, Any]]:
        if self.field is not None:
            return [(example.get(self.field), pred.get(self.field))]
        shared = [k for k in example if k in pred and k not in ("id", "reasoning", "code")]
        return [(example[k], pred[k]) for k in shared]

    def score(self, expected: Any, got: Any) -> float:
        raise NotImplementedError

    def __call__(self, example: Mapping[str, Any], pred: Mapping[str, Any]) -> float:
        pairs = self._pairs(example, pred)
        if not pairs:
            return 0.0
        scores = [0.0 if got is None else self.score(expected, got) for expected, got in pairs]
        return sum(scores) / len(scores)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(field={self.field!r})"


class ExactMatch(_FieldMetric):
    """1 if equal as values (``"42" == 42`` counts: both are compared as text)."""

    name = "exact_match"

    def score(self, expected: Any, got: Any) -> float:
        return float(expected == got or str(expected).strip() == str(got).strip())


class NormalizedMatch(_FieldMetric):
    """1 if equal after :func:`normalize_text` (case, punctuation, articles)."""

    name = "normalized_match"

    def score(self, expected: Any, got: Any) -> float:
        return float(normalize_text(expected) == normalize_text(got))


class TokenF1(_FieldMetric):
    """Harmonic mean of token precision and recall after normalization."""

    name = "token_f1"

    def score(self, expected: Any, got: Any) -> float:
        want, have = normalize_text(expected).split(), normalize_text(got).split()
        if not want or not have:
            return float(want == have)
        common = sum((Counter(want) & Counter(have)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(have), common / len(want)
        return 2 * precision * recall / (precision + recall)


class NumericTolerance(_FieldMetric):
    """1 if both parse as numbers within ``abs_tol`` or ``rel_tol``."""

    name = "numeric_tolerance"

    def __init__(self, field: str | None = None, *, abs_tol: float = 1e-6,
                 rel_tol: float = 0.0) -> None:
        super().__init__(field)
        self.abs_tol = abs_tol
        self.rel_tol = rel_tol

    def score(self, expected: Any, got: Any) -> float:
        try:
            a = float(str(expected).replace(",", "").strip())
            b = float(str(got).replace(",", "").strip())
        except ValueError:
            return 0.0
        return float(math.isclose(a, b, abs_tol=self.abs_tol, rel_tol=self.rel_tol))


exact_match = ExactMatch()
normalized_match = NormalizedMatch()
token_f1 = TokenF1()


def numeric_tolerance(abs_tol: float = 1e-6, rel_tol: float = 0.0,
                      field: str | None = None) -> NumericTolerance:
    return NumericTolerance(field, abs_tol=abs_tol, rel_tol=rel_tol)


BY_NAME: dict[str, Metric] = {"exact_match": exact_match, "normalized_match": normalized_match,
                              "token_f1": token_f1, "numeric_tolerance": NumericTolerance()}
