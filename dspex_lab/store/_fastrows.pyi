"""Types of the compiled converter (``_fastrows.c``; built by ``pip install``)."""

from collections.abc import Callable, Sequence
from typing import Any

SOURCE_SHA: str
K_STR: int
K_JSON: int
K_JSON_SECRET: int
K_JSON_TAGS: int
K_TAG: int
K_INT: int
K_FLOAT: int
K_BOOL: int
K_TS: int

def convert(records: list[Any], spec: Sequence[tuple[str, int, bool, str]],
            key_memo: dict[str, bool], is_secret_key: Callable[[str], bool],
            pause: Callable[[], object] | None = ..., every: int = ...,
            ) -> list[tuple[Any, ...] | None]: ...
def may_hold_secret(data: bytes | bytearray, needles: tuple[bytes, ...]) -> bool: ...
