"""sim-lookup: capital, country-of-capital and continent questions about 60 real countries.

Countries whose capital or continent is disputed or changing (Bolivia, South
Africa, Tanzania, Indonesia, Russia, Turkey, ...) are left out so every
answer is unambiguous; accents are dropped (Bogota, Brasilia) so normalized
matching never depends on Unicode handling. Difficulty (1-3) starts from how
well known the country is: asking for the country of a capital is one harder,
asking for the continent one easier.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

from dspex_lab.datasets._dataset import Record
from dspex_lab.datasets._rng import Rng

__all__ = ["CONTINENTS", "COUNTRIES", "SEED", "Country", "generate"]

SEED = 20_240_918

Country = tuple[str, str, str, int]
"""(country, capital, continent, obscurity 1-3)."""

COUNTRIES: tuple[Country, ...] = (
    ("France", "Paris", "Europe", 1),
    ("Germany", "Berlin", "Europe", 1),
    ("Italy", "Rome", "Europe", 1),
    ("Spain", "Madrid", "Europe", 1),
    ("United Kingdom", "London", "Europe", 1),
    ("Greece", "Athens", "Europe", 1),
    ("Portugal", "Lisbon", "Europe", 2),
    ("Ireland", "Dublin", "Europe", 2),
    ("Netherlands", "Amsterdam", "Europe", 2),
    ("Belgium", "Brussels", "Europe", 2),
    ("Austria", "Vienna", "Europe", 2),
    ("Poland", "Warsaw", "Europe", 2),
    ("Hungary", "Budapest", "Europe", 2),
    ("Sweden", "Stockholm", "Europe", 2),
    ("Norway", "Oslo", "Europe", 2),
    ("Denmark", "Copenhagen", "Europe", 2),
    ("Finland", "Helsinki", "Europe", 2),
    ("Iceland", "Reykjavik", "Europe", 3),
    ("Slovenia", "Ljubljana", "Europe", 3),
    ("Latvia", "Riga", "Europe", 3),
    ("Japan", "Tokyo", "Asia", 1),
    ("China", "Beijing", "Asia", 1),
    ("India", "New Delhi", "Asia", 1),
    ("South Korea", "Seoul", "Asia", 1),
    ("Thailand", "Bangkok", "Asia", 2),
    ("Vietnam", "Hanoi", "Asia", 2),
    ("Philippines", "Manila", "Asia", 2),
    ("Malaysia", "Kuala Lumpur", "Asia", 2),
    ("Pakistan", "Islamabad", "Asia", 2),
    ("Bangladesh", "Dhaka", "Asia", 3),
    ("Nepal", "Kathmandu", "Asia", 2),
    ("Mongolia", "Ulaanbaatar", "Asia", 3),
    ("Iran", "Tehran", "Asia", 2),
    ("Uzbekistan", "Tashkent", "Asia", 3),
    ("Laos", "Vientiane", "Asia", 3),
    ("Egypt", "Cairo", "Africa", 1),
    ("Kenya", "Nairobi", "Africa", 2),
    ("Nigeria", "Abuja", "Africa", 2),
    ("Ethiopia", "Addis Ababa", "Africa", 2),
    ("Ghana", "Accra", "Africa", 2),
    ("Morocco", "Rabat", "Africa", 2),
    ("Senegal", "Dakar", "Africa", 3),
    ("Uganda", "Kampala", "Africa", 3),
    ("Zimbabwe", "Harare", "Africa", 3),
    ("Zambia", "Lusaka", "Africa", 3),
    ("Mali", "Bamako", "Africa", 3),
    ("Canada", "Ottawa", "North America", 1),
    ("Mexico", "Mexico City", "North America", 1),
    ("Cuba", "Havana", "North America", 2),
    ("Jamaica", "Kingston", "North America", 2),
    ("Honduras", "Tegucigalpa", "North America", 3),
    ("Brazil", "Brasilia", "South America", 1),
    ("Argentina", "Buenos Aires", "South America", 1),
    ("Peru", "Lima", "South America", 2),
    ("Chile", "Santiago", "South America", 2),
    ("Colombia", "Bogota", "South America", 2),
    ("Uruguay", "Montevideo", "South America", 3),
    ("Australia", "Canberra", "Oceania", 1),
    ("New Zealand", "Wellington", "Oceania", 2),
    ("Fiji", "Suva", "Oceania", 3),
)

CONTINENTS: tuple[str, ...] = (
    "Africa", "Asia", "Europe", "North America", "Oceania", "South America",
)

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "capital": (
        "What is the capital of {country}?",
        "Which city is the capital of {country}?",
        "Name the capital city of {country}.",
        "What is the name of the capital city of {country}?",
    ),
    "country": (
        "Which country has {capital} as its capital?",
        "{capital} is the capital of which country?",
        "Of which country is {capital} the capital city?",
        "Name the country whose capital is {capital}.",
    ),
    "continent": (
        "On which continent is {country}?",
        "Which continent is {country} located in?",
        "{country} lies on which continent?",
        "Name the continent where {country} is found.",
    ),
}
_DIFFICULTY_SHIFT = {"capital": 0, "country": 1, "continent": -1}
_ANSWER_INDEX = {"capital": 1, "country": 0, "continent": 2}


def _distractors(index: int, kind: str) -> tuple[str, ...]:
    """Three wrong answers of the right kind: neighbours in the table (grouped by continent)."""
    if kind == "continent":
        return tuple(c for c in CONTINENTS if c != COUNTRIES[index][2])[:3]
    column = _ANSWER_INDEX[kind]
    n = len(COUNTRIES)
    return tuple(str(COUNTRIES[(index + step) % n][column]) for step in (1, -1, 2))


def generate(count: int) -> Iterator[Record]:
    """``count`` distinct questions (at most 720), in a seeded shuffled order."""
    candidates: list[Record] = []
    for index, row in enumerate(COUNTRIES):
        country, capital, _continent, obscurity = row
        for kind, templates in _TEMPLATES.items():
            difficulty = min(3, max(1, obscurity + _DIFFICULTY_SHIFT[kind]))
            meta = MappingProxyType({
                "kind": kind, "country": country, "capital": capital,
                "distractors": _distractors(index, kind),
            })
            for template in templates:
                question = template.format(country=country, capital=capital)
                candidates.append((question, row[_ANSWER_INDEX[kind]], difficulty, meta))
    if count > len(candidates):
        raise ValueError(f"sim-lookup has only {len(candidates)} distinct questions")
    Rng(SEED).shuffle(candidates)
    yield from candidates[:count]
