"""The built-in datasets: stable, well-formed, correct, and free of upward imports."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys
from collections import Counter

import orjson
import pytest

from dspex_lab import datasets
from dspex_lab.datasets import SPLIT_SIZES, Dataset, find_item, load, names
from dspex_lab.datasets._lookup import CONTINENTS, COUNTRIES
from dspex_lab.datasets._sentiment import LABELS
from dspex_lab.errors import ConfigurationError

# Digest of every row of every split. A change here changes item ids or answers that
# saved configs, cached LM calls and the store refer to: change it only on purpose.
GOLDEN = {
    "sim-math": "2b7bdc215262406c",
    "sim-lookup": "f2515a8cad3dea15",
    "sim-sentiment": "cf8c772dcdef4847",
}


def _digest(ds: Dataset) -> str:
    return hashlib.sha256(orjson.dumps([ds.train, ds.val, ds.test])).hexdigest()[:16]


def test_names_and_public_api() -> None:
    assert names() == ["sim-math", "sim-lookup", "sim-sentiment", "local-qa"]
    assert set(datasets.__all__) == {n for n in dir(datasets) if not n.startswith("_")} - {
        "annotations"}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_generation_is_stable_across_runs_and_versions(name: str) -> None:
    assert _digest(load(name)) == GOLDEN[name]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_splits_ids_and_fields(name: str) -> None:
    ds = load(name)
    prefix = name.removeprefix("sim-")
    assert ds.signature.startswith(ds.input_fields[0])
    questions: set[str] = set()
    for split, size in SPLIT_SIZES.items():
        rows = ds.split(split)
        assert len(rows) == size
        for i, row in enumerate(rows):
            assert row["id"] == f"{prefix}-{split}-{i:04d}"
            assert set(row) == {"id", "difficulty", *ds.input_fields, *ds.output_fields}
            questions.add(row[ds.input_fields[0]])
    assert len(questions) == sum(SPLIT_SIZES.values())  # no question repeats, even across splits
    assert ds.default_metric in ("exact_match", "normalized_match")


def test_math_answers_follow_their_steps() -> None:
    ds = load("sim-math")
    assert ds.signature == "question -> answer: int" and ds.default_metric == "exact_match"
    for split in SPLIT_SIZES:
        for item in datasets.items("sim-math", split):
            value = item.meta["start"]
            for op, n in item.meta["steps"]:
                assert op != "/" or value % n == 0  # divisions are exact
                value = {"+": value + n, "-": value - n, "*": value * n, "/": value // n}[op]
                assert value >= 0
            assert value == item.answer and isinstance(item.answer, int)
            assert item.difficulty == len(item.meta["steps"])
            assert str(item.meta["start"]) in item.question
            assert item.answer not in item.meta["distractors"]
    assert Counter(r["difficulty"] for r in ds.val) == {1: 50, 2: 50, 3: 50, 4: 50}
    example = ds.val[17]["question"]
    assert re.fullmatch(r"[A-Z]\w+ has \d+ [\w ]+\. .+\. How many [\w ]+ does (he|she) have now\?",
                        example)


def test_lookup_answers_match_the_table() -> None:
    assert len(COUNTRIES) == 60
    assert len({c[0] for c in COUNTRIES}) == len({c[1] for c in COUNTRIES}) == 60
    by_country = {c[0]: c for c in COUNTRIES}
    ds = load("sim-lookup")
    assert ds.default_metric == "normalized_match"
    for row in ds.train + ds.val + ds.test:
        item = find_item(row["question"])
        assert item is not None
        country = by_country[item.meta["country"]]
        kind = item.meta["kind"]
        expected = {"capital": country[1], "country": country[0], "continent": country[2]}[kind]
        assert row["answer"] == expected
        assert row["answer"] not in item.meta["distractors"]
        assert 1 <= row["difficulty"] <= 3
    assert {c[2] for c in COUNTRIES} == set(CONTINENTS)


def test_sentiment_labels_are_balanced() -> None:
    ds = load("sim-sentiment")
    assert (ds.input_fields, ds.output_fields) == (("review",), ("sentiment",))
    counts = Counter(r["sentiment"] for r in ds.val)
    assert set(counts) == set(LABELS) and max(counts.values()) - min(counts.values()) <= 1
    assert set(Counter(r["difficulty"] for r in ds.train)) == {1, 2, 3}


def test_demos_are_deterministic_train_rows_without_ids() -> None:
    ds = load("sim-math")
    demos = ds.demos(4)
    assert demos == load("sim-math").demos(4)
    assert demos != ds.demos(4, seed=1)
    assert len({d["question"] for d in demos}) == 4
    train = {r["question"]: r["answer"] for r in ds.train}
    for demo in demos:
        assert set(demo) == {"question", "answer"}
        assert train[demo["question"]] == demo["answer"]
    assert ds.demos(0) == []
    with pytest.raises(ConfigurationError):
        ds.demos(301)


def test_unknown_names_and_splits_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="sim-math, sim-lookup, sim-sentiment"):
        load("gsm8k")
    with pytest.raises(ConfigurationError, match="train, val, test"):
        load("sim-math").split("dev")


def test_rows_are_fresh_per_load_and_the_index_is_shared() -> None:
    first = load("sim-lookup")
    first.val[0]["answer"] = "changed"
    first.val.clear()
    second = load("sim-lookup")
    assert len(second.val) == 200 and second.val[0]["answer"] != "changed"
    item = second.item_by_question(second.val[0]["question"] + " ")
    assert item is not None and item.id == "lookup-val-0000"
    assert second.item_by_question("What is the capital of Atlantis?") is None
    assert load("sim-math").item_by_question(second.val[0]["question"]) is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.name = "other"  # type: ignore[misc]


def test_datasets_import_nothing_above_them() -> None:
    code = ("import sys, dspex_lab.datasets as d; d.load('sim-math'); d.find_item('x'); "
            "bad = [m for m in sys.modules if m.startswith(('dspex_lab.programs', "
            "'dspex_lab.sim', 'dspex_lab.lm', 'aiohttp'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
