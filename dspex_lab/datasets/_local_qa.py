"""local-qa: short factual questions a 135M-parameter model can answer, for the local model.

The simulator's datasets are written for simulated models; a real tiny model
(SmolLM2-135M-Instruct) knows few capitals beyond the most famous and cannot
add. Probed on it by kind (JSON adapter, three demos of the same kind, an
instruction, temperature 0): plurals ~0.9, famous capitals ~0.9, opposites
~0.6, colours of things ~0.4-0.6, the day or month after another ~0.3 (left
out), sums of two small numbers ~0.1 (left out). Zero-shot it scores 0 on
every kind with every adapter: it answers in prose. On this mix, with demos
drawn from the whole training split, three-demo JSON prompts score ~0.35-0.55
and zero-shot ones ~0, so the floor and the ceiling are both real and what a
configuration changes shows up in the score.

Every answer is one word, unambiguous and checked by ``normalized_match``:
opposites with two common answers (short: long or tall) are only asked in the
unambiguous direction (or not at all: light, hard, open, sweet), plurals with
two accepted forms (fish, cactus) are left out, and the capital questions are
worded unlike sim-lookup's so no question is in both datasets. Difficulty: 1
regular plural, famous capital, colour; 2 -es/-ies/-ves plural, opposite; 3
irregular plural.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

from dspex_lab.datasets._dataset import Record
from dspex_lab.datasets._rng import Rng

__all__ = ["KINDS", "SEED", "generate"]

SEED = 20_250_301

_REGULAR = (
    "cat", "dog", "book", "car", "apple", "tree", "house", "bird", "chair", "table", "pen",
    "cup", "hat", "ball", "door", "window", "flower", "shoe", "bag", "girl", "boy", "river",
    "road", "star", "egg", "key", "bed", "lamp", "coat", "ship", "train", "plane", "farm",
    "horse", "cow", "frog", "duck", "king", "queen", "song", "game", "hand", "friend", "toy",
    "boat", "bottle", "desk", "ring", "rock", "clock", "spoon", "cake", "bell", "sock",
    "pencil", "garden", "mountain", "island", "cookie", "dragon", "monkey", "rabbit",
    "tiger", "lion", "shirt", "hill", "lake", "bridge", "candle", "drum", "kite",
    "map", "nest", "pig", "rose", "seed", "sword", "tent", "wall", "whale", "wheel", "boot",
)
_PLURAL_2 = {
    "box": "boxes", "bus": "buses", "dish": "dishes", "watch": "watches", "glass": "glasses",
    "fox": "foxes", "brush": "brushes", "church": "churches", "beach": "beaches",
    "bench": "benches", "dress": "dresses", "lunch": "lunches", "match": "matches",
    "class": "classes", "wish": "wishes", "tomato": "tomatoes", "potato": "potatoes",
    "hero": "heroes", "city": "cities", "baby": "babies", "party": "parties",
    "story": "stories", "lady": "ladies", "family": "families", "country": "countries",
    "puppy": "puppies", "cherry": "cherries", "berry": "berries", "knife": "knives",
    "leaf": "leaves", "wolf": "wolves", "wife": "wives", "life": "lives", "half": "halves",
    "shelf": "shelves", "loaf": "loaves", "thief": "thieves",
}
_PLURAL_3 = {
    "child": "children", "mouse": "mice", "tooth": "teeth", "foot": "feet", "man": "men",
    "woman": "women", "goose": "geese", "person": "people", "ox": "oxen", "sheep": "sheep",
    "deer": "deer", "moose": "moose",
}
_PLURAL_TEMPLATES = (
    "What is the plural of {w}?",
    "What is the plural form of the word '{w}'?",
    "Give the plural of {w}.",
)

# (word, opposite, ask the reverse too): the reverse is asked only when it is unambiguous
_OPPOSITES: tuple[tuple[str, str, bool], ...] = (
    ("hot", "cold", True), ("big", "small", False), ("up", "down", True),
    ("happy", "sad", True), ("fast", "slow", True), ("day", "night", True),
    ("wet", "dry", True),
    ("left", "right", False), ("black", "white", True), ("full", "empty", True),
    ("early", "late", True), ("rich", "poor", True),
    ("long", "short", False), ("win", "lose", True), ("in", "out", True),
    ("yes", "no", True), ("top", "bottom", True), ("push", "pull", True),
    ("high", "low", False), ("near", "far", True), ("loud", "quiet", True),
    ("strong", "weak", True), ("thick", "thin", True), ("clean", "dirty", True),
    ("good", "bad", False), ("first", "last", False), ("true", "false", True),
    ("alive", "dead", True), ("inside", "outside", True), ("buy", "sell", True),
    ("give", "take", False), ("cheap", "expensive", True), ("love", "hate", True),
    ("north", "south", True), ("east", "west", True), ("question", "answer", True),
    ("before", "after", True), ("boy", "girl", True), ("above", "below", True),
    ("always", "never", True), ("asleep", "awake", True), ("come", "go", False),
    ("laugh", "cry", False), ("remember", "forget", True), ("friend", "enemy", True),
    ("war", "peace", True), ("summer", "winter", True), ("sunrise", "sunset", True),
    ("entrance", "exit", True), ("tall", "short", False), ("wide", "narrow", True),
    ("smooth", "rough", True), ("safe", "dangerous", True), ("heavy", "light", False),
    ("floor", "ceiling", True), ("minimum", "maximum", True),
)
_OPPOSITE_TEMPLATES = (
    "What is the opposite of {w}?",
    "Give a word that means the opposite of {w}.",
)

# the capitals the model knows (it misses most others: Ottawa, Canberra, Dublin...)
_CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Germany", "Berlin"), ("Italy", "Rome"),
    ("Spain", "Madrid"), ("England", "London"), ("Russia", "Moscow"), ("China", "Beijing"),
    ("Egypt", "Cairo"), ("Greece", "Athens"), ("Thailand", "Bangkok"),
)
_CAPITAL_TEMPLATES = (  # worded unlike sim-lookup's, so no question is in both datasets
    "What city is the capital of {w}?",
    "Name the capital of {w}.",
    "The capital of {w} is which city?",
    "Tell me the capital of {w}.",
)

_COLOURS = (
    ("the sky on a clear day", "blue"), ("grass", "green"), ("snow", "white"),
    ("a ripe banana", "yellow"), ("coal", "black"), ("a ripe tomato", "red"),
    ("milk", "white"), ("a lemon", "yellow"), ("a ripe strawberry", "red"),
    ("a carrot", "orange"), ("a pumpkin", "orange"), ("chocolate", "brown"),
    ("a crow", "black"), ("a lime", "green"), ("the sea in pictures", "blue"),
    ("a fire truck", "red"), ("a polar bear", "white"), ("a frog", "green"),
    ("a chick", "yellow"), ("the night sky", "black"), ("an elephant", "gray"),
    ("a blueberry", "blue"), ("a cucumber", "green"), ("the inside of a kiwi", "green"),
    ("a school bus in America", "yellow"),
)
_COLOUR_TEMPLATES = ("What color is {w}?", "What is the color of {w}?",
                     "Which color is {w}?")

KINDS = ("plural", "opposite", "capital", "colour")


def _candidates() -> list[Record]:
    out: list[Record] = []

    def add(kind: str, templates: tuple[str, ...], word: str, answer: str,
            difficulty: int) -> None:
        meta = MappingProxyType({"kind": kind, "word": word})
        for template in templates:
            out.append((template.format(w=word), answer, difficulty, meta))

    for word in _REGULAR:
        add("plural", _PLURAL_TEMPLATES, word, word + "s", 1)
    for word, plural in _PLURAL_2.items():
        add("plural", _PLURAL_TEMPLATES, word, plural, 2)
    for word, plural in _PLURAL_3.items():
        add("plural", _PLURAL_TEMPLATES, word, plural, 3)
    for word, opposite, both in _OPPOSITES:
        add("opposite", _OPPOSITE_TEMPLATES, word, opposite, 2)
        if both:
            add("opposite", _OPPOSITE_TEMPLATES, opposite, word, 2)
    for country, capital in _CAPITALS:
        add("capital", _CAPITAL_TEMPLATES, country, capital, 1)
    for thing, colour in _COLOURS:
        add("colour", _COLOUR_TEMPLATES, thing, colour, 1)
    return out


def generate(count: int) -> Iterator[Record]:
    """``count`` distinct questions, in a seeded shuffled order."""
    candidates = _candidates()
    if count > len(candidates):
        raise ValueError(f"local-qa has only {len(candidates)} distinct questions")
    Rng(SEED).shuffle(candidates)
    yield from candidates[:count]
