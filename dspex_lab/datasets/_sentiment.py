"""sim-sentiment: short product reviews labelled positive, negative or neutral.

Difficulty 1 is a plainly worded review, 2 mixes in a minor opposite remark,
3 relies on negation or a let-down ("I wanted to like it, but ..."). Labels
are balanced. Reviews are built from templates so every label is defensible.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

from dspex_lab.datasets._dataset import Record
from dspex_lab.datasets._rng import Rng

__all__ = ["LABELS", "SEED", "generate"]

SEED = 20_240_919

LABELS: tuple[str, ...] = ("positive", "negative", "neutral")

_PRODUCTS: tuple[str, ...] = (
    "blender", "pair of headphones", "backpack", "coffee maker", "phone case", "desk lamp",
    "pair of running shoes", "water bottle", "keyboard", "toaster", "umbrella", "office chair",
    "electric kettle", "yoga mat", "wireless mouse", "rice cooker", "winter jacket",
    "bluetooth speaker", "frying pan", "travel mug", "hair dryer", "board game", "tent",
    "vacuum cleaner", "smartwatch", "notebook", "bike helmet", "suitcase",
)

_TEMPLATES: dict[tuple[str, int], tuple[str, ...]] = {
    ("positive", 1): (
        "I love this {p}. It works perfectly.",
        "Fantastic {p}, exactly what I needed.",
        "This {p} is excellent and well made. Highly recommend.",
        "Great {p}! I use it every day and it never lets me down.",
    ),
    ("negative", 1): (
        "This {p} is terrible. It stopped working after a week.",
        "Awful {p}, a complete waste of money.",
        "I hate this {p}. Cheap materials and poor design.",
        "Worst {p} I have ever bought. Returning it.",
    ),
    ("neutral", 1): (
        "The {p} arrived on Tuesday. It is blue.",
        "This is a {p}. It does what the description says.",
        "I bought this {p} last month. No strong feelings either way.",
        "The {p} is an ordinary {p}, nothing more and nothing less.",
    ),
    ("positive", 2): (
        "The {p} is excellent, even if shipping was a bit slow.",
        "Packaging was dented, but the {p} itself is great and works well.",
        "A little pricey, yet this {p} is worth every penny.",
        "The manual is confusing, but once set up the {p} is a joy to use.",
    ),
    ("negative", 2): (
        "The {p} looks nice, but it broke after two days.",
        "Fast delivery, but the {p} is flimsy and disappointing.",
        "The color of the {p} is pretty; sadly it does not work as advertised.",
        "Good price, but this {p} is noisy and fell apart quickly.",
    ),
    ("neutral", 2): (
        "The {p} has some good points and some bad ones; it is fine overall.",
        "This {p} is okay. Not great, not terrible.",
        "Average {p}. It works, but nothing about it stands out.",
        "The {p} does the job. Some things could be better, some are good.",
    ),
    ("positive", 3): (
        "Not a bad {p} at all; I would happily buy it again.",
        "I was skeptical about this {p}, but it has not disappointed me once.",
        "I can't find anything wrong with this {p}.",
        "Never thought a {p} could make me this happy.",
    ),
    ("negative", 3): (
        "I wanted to like this {p}, but it never worked properly.",
        "I can't say this {p} was worth the money.",
        "Not once has this {p} done what it promised.",
        "I expected a lot from this {p}; it did not deliver.",
    ),
    ("neutral", 3): (
        "Not sure what to think of this {p} yet; I have only used it twice.",
        "The {p} is neither better nor worse than my old one.",
        "I can't say I love this {p}, and I can't say I dislike it.",
        "Hard to judge this {p}; it is exactly as average as I expected.",
    ),
}


def generate(count: int) -> Iterator[Record]:
    """``count`` distinct reviews; label cycles through positive/negative/neutral."""
    rng = Rng(SEED)
    seen: set[str] = set()
    produced = 0
    while produced < count:
        label = LABELS[produced % 3]
        difficulty = 1 + (produced // 3) % 3
        template = rng.choice(_TEMPLATES[label, difficulty])
        product = rng.choice(_PRODUCTS)
        review = template.format(p=product)
        review = review[0].upper() + review[1:]
        if review in seen:
            continue
        seen.add(review)
        produced += 1
        distractors = tuple(other for other in LABELS if other != label)
        yield review, label, difficulty, MappingProxyType(
            {"product": product, "distractors": distractors}
        )
