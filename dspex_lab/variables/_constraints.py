"""Constraint expressions: a small hand-written tokenizer, parser and evaluator (never ``eval``).

Grammar (lowest precedence first; ``->`` is right-associative)::

    expr       := or_expr [ "->" expr ]
    or_expr    := and_expr { "or" and_expr }
    and_expr   := not_expr { "and" not_expr }
    not_expr   := "not" not_expr | comparison
    comparison := operand { compare_op operand }         # chains like 0 < x <= 1
    compare_op := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in"
    operand    := name | literal | list | "(" expr ")"
    list       := "[" [ literal { "," literal } [","] ] "]"
    literal    := string | number | "-" number | true | false | null
    name       := identifier { "." identifier | "[" digits "]" }

Strings take single or double quotes with ``\\`` escapes; ``True``/``False``/
``None`` are accepted for ``true``/``false``/``null``. The right side of
``in`` must be a list. An expression is true or false for an *environment*
(variable name -> value); a name without a value (an inactive conditional
variable) is ``null``. ``==`` never equates a boolean with a number; ``<``,
``<=``, ``>``, ``>=`` hold only between two numbers or two strings (anything
else is false). A bare operand is tested for truth (``null``, ``false``,
``0`` and ``""`` are false).

Every syntax error is a :class:`ConstraintError` carrying the 0-based
``column`` of the offending token and a caret message.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from dspex_lab.errors import ConfigurationError

__all__ = ["Compare", "Constraint", "ConstraintError", "ListLit", "Literal", "Name", "Node"]

_Env = Mapping[str, Any]
_Fn = Callable[[_Env], Any]


class ConstraintError(ConfigurationError):
    """A constraint expression does not parse; ``column`` is 0-based."""

    kind = "constraint"

    def __init__(self, message: str, text: str, column: int) -> None:
        self.reason = message
        self.text = text
        self.column = column
        shown = text.replace("\n", " ").replace("\t", " ")
        super().__init__(f"Invalid constraint: {message} at column {column}\n  {shown}\n"
                         f"  {' ' * column}^")


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "name", "string", "number", "op", "kw", "end"
    text: str
    pos: int
    value: Any = None


_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "True", "False", "None"}
_TWO = ("->", "==", "!=", "<=", ">=")
_ONE = "<>()[],"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_HINTS = {"&&": "use 'and'", "||": "use 'or'", "=>": "use '->' for implication",
          "=": "use '==' to compare", "!": "use 'not'", "&": "use 'and'", "|": "use 'or'"}


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c.isalpha() or c == "_":
            i = _read_name(text, i, toks)
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            i = _read_number(text, i, toks)
        elif c in "'\"":
            i = _read_string(text, i, toks)
        elif text.startswith(_TWO, i):
            toks.append(_Tok("op", text[i:i + 2], i))
            i += 2
        elif text.startswith(("&&", "||", "=>"), i):
            raise ConstraintError(f"unexpected {text[i:i + 2]!r}; {_HINTS[text[i:i + 2]]}",
                                  text, i)
        elif c in _ONE or c == "-":
            toks.append(_Tok("op", c, i))
            i += 1
        else:
            hint = _HINTS.get(c)
            raise ConstraintError(f"unexpected character {c!r}" + (f"; {hint}" if hint else ""),
                                  text, i)
    toks.append(_Tok("end", "", n))
    return toks


def _read_name(text: str, start: int, toks: list[_Tok]) -> int:
    i, n = start, len(text)
    while i < n and (text[i].isalnum() or text[i] == "_"):
        i += 1
    word = text[start:i]
    if word in _KEYWORDS:
        toks.append(_Tok("kw", word, start))
        return i
    while i < n:
        if text[i] == "." and i + 1 < n and (text[i + 1].isalpha() or text[i + 1] == "_"):
            i += 2
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
        elif text[i] == "[" and i + 1 < n and text[i + 1].isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            if j < n and text[j] == "]":
                i = j + 1
            else:
                break
        else:
            break
    toks.append(_Tok("name", text[start:i], start))
    return i


def _read_number(text: str, start: int, toks: list[_Tok]) -> int:
    i, n = start, len(text)
    while i < n and (text[i].isalnum() or text[i] in "._" or (
            text[i] in "+-" and text[i - 1] in "eE" and not text[start:i].startswith("0x"))):
        i += 1
    raw = text[start:i]
    try:
        value: Any = int(raw.replace("_", "")) if raw.replace("_", "").isdigit() \
            else float(raw.replace("_", ""))
    except ValueError:
        raise ConstraintError(f"malformed number {raw!r}", text, start) from None
    toks.append(_Tok("number", raw, start, value))
    return i


def _read_string(text: str, start: int, toks: list[_Tok]) -> int:
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            toks.append(_Tok("string", text[start:i + 1], start, "".join(chars)))
            return i + 1
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            chars.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        chars.append(c)
        i += 1
    raise ConstraintError("unterminated string", text, start)


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Literal, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or" | "->"
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    first: Node
    rest: tuple[tuple[str, Node, int], ...]  # (operator, operand, operator position)
    pos: int


Node = Name | Literal | ListLit | Not | BoolOp | Compare

_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_LITERAL_KW = {"true": True, "True": True, "false": False, "False": False, "null": None,
               "None": None}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        raise ConstraintError(message, self.text, self.tok.pos if pos is None else pos)

    def at(self, kind: str, text: str) -> bool:
        return self.tok.kind == kind and self.tok.text == text

    def parse(self) -> Node:
        if self.tok.kind == "end":
            self.fail("empty expression; write a condition such as module != \"pot\"")
        node = self.expr()
        if self.tok.kind != "end":
            self.fail(f"unexpected {self._describe(self.tok)}; expected 'and', 'or', '->' "
                      f"or the end")
        return node

    def expr(self) -> Node:
        left = self.or_expr()
        if self.at("op", "->"):
            pos = self.next().pos
            return BoolOp("->", left, self.expr(), pos)
        return left

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at("kw", "or"):
            pos = self.next().pos
            node = BoolOp("or", node, self.and_expr(), pos)
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.at("kw", "and"):
            pos = self.next().pos
            node = BoolOp("and", node, self.not_expr(), pos)
        return node

    def not_expr(self) -> Node:
        if self.at("kw", "not"):
            pos = self.next().pos
            return Not(self.not_expr(), pos)
        return self.comparison()

    def comparison(self) -> Node:
        first = self.operand()
        rest: list[tuple[str, Node, int]] = []
        while True:
            tok = self.tok
            if tok.kind == "op" and tok.text in _COMPARE:
                self.next()
                rest.append((tok.text, self.operand(), tok.pos))
            elif tok.kind == "kw" and tok.text == "in":
                self.next()
                rest.append(("in", self.list_operand(), tok.pos))
            elif tok.kind == "kw" and tok.text == "not" and self.toks[self.i + 1].text == "in":
                self.next()
                self.next()
                rest.append(("not in", self.list_operand(), tok.pos))
            else:
                break
        return Compare(first, tuple(rest), first.pos) if rest else first

    def list_operand(self) -> Node:
        if not self.at("op", "["):
            self.fail(f"expected a list such as [\"a\", \"b\"] after 'in', found "
                      f"{self._describe(self.tok)}")
        return self.operand()

    def operand(self) -> Node:
        tok = self.tok
        if tok.kind == "name":
            self.next()
            return Name(tok.text, tok.pos)
        if tok.kind in ("string", "number"):
            self.next()
            return Literal(tok.value, tok.pos)
        if tok.kind == "kw" and tok.text in _LITERAL_KW:
            self.next()
            return Literal(_LITERAL_KW[tok.text], tok.pos)
        if tok.kind == "op" and tok.text == "-":
            self.next()
            if self.tok.kind != "number":
                self.fail("expected a number after '-'")
            return Literal(-self.next().value, tok.pos)
        if tok.kind == "op" and tok.text == "(":
            self.next()
            node = self.expr()
            if not self.at("op", ")"):
                self.fail(f"expected ')' to close the '(' at column {tok.pos}, found "
                          f"{self._describe(self.tok)}")
            self.next()
            return node
        if tok.kind == "op" and tok.text == "[":
            return self.list_literal()
        self.fail(f"expected a variable name, a value or '(', found {self._describe(tok)}")

    def list_literal(self) -> ListLit:
        start = self.next().pos
        items: list[Literal] = []
        while not self.at("op", "]"):
            item = self.operand()
            if not isinstance(item, Literal):
                self.fail("a list holds values (strings, numbers, true, false, null), not "
                          "names or expressions", item.pos)
            items.append(item)
            if self.at("op", ","):
                self.next()
            elif not self.at("op", "]"):
                self.fail(f"expected ',' or ']' in the list, found {self._describe(self.tok)}")
        self.next()
        return ListLit(tuple(items), start)

    @staticmethod
    def _describe(tok: _Tok) -> str:
        if tok.kind == "end":
            return "the end of the expression"
        return repr(tok.text)


# --------------------------------------------------------------------------- evaluation


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic user values
        return False


def _order(op: str, a: Any, b: Any) -> bool:
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _eq(a, b)
    if op == "!=":
        return not _eq(a, b)
    if op == "in":
        return isinstance(b, list | tuple) and any(_eq(a, x) for x in b)
    if op == "not in":
        return not (isinstance(b, list | tuple) and any(_eq(a, x) for x in b))
    return _order(op, a, b)


def _compile(node: Node) -> _Fn:
    """A closure computing ``node``'s value from an environment."""
    if isinstance(node, Name):
        name = node.name
        return lambda env: env.get(name)
    if isinstance(node, Literal):
        value = node.value
        return lambda env: value
    if isinstance(node, ListLit):
        values = [item.value for item in node.items]
        return lambda env: values
    if isinstance(node, Not):
        inner = _compile(node.operand)
        return lambda env: not inner(env)
    if isinstance(node, BoolOp):
        left, right = _compile(node.left), _compile(node.right)
        if node.op == "and":
            return lambda env: bool(left(env)) and bool(right(env))
        if node.op == "or":
            return lambda env: bool(left(env)) or bool(right(env))
        return lambda env: (not left(env)) or bool(right(env))
    fast = _fast_compare(node)
    if fast is not None:
        return fast
    first = _compile(node.first)
    rest = [(op, _compile(operand)) for op, operand, _ in node.rest]
    if len(rest) == 1:
        op, second = rest[0]
        return lambda env: _compare(op, first(env), second(env))

    def chain(env: _Env) -> bool:
        a = first(env)
        for op, fn in rest:
            b = fn(env)
            if not _compare(op, a, b):
                return False
            a = b
        return True

    return chain


def _fast_compare(node: Compare) -> _Fn | None:
    """Specialised closures for the common ``name op literal`` shapes (same semantics as
    :func:`_compare`, without its dispatch): text equality, membership in a list of texts,
    and ordering against a number."""
    if len(node.rest) != 1 or not isinstance(node.first, Name):
        return None
    op, right, _ = node.rest[0]
    name = node.first.name
    if isinstance(right, Literal) and isinstance(right.value, str):
        text = right.value
        if op == "==":
            return lambda env: isinstance(a := env.get(name), str) and a == text
        if op == "!=":
            return lambda env: not (isinstance(a := env.get(name), str) and a == text)
    if isinstance(right, ListLit) and right.items and all(
            isinstance(i.value, str) for i in right.items) and op in ("in", "not in"):
        texts = frozenset(i.value for i in right.items)
        if op == "in":
            return lambda env: isinstance(a := env.get(name), str) and a in texts
        return lambda env: not (isinstance(a := env.get(name), str) and a in texts)
    if isinstance(right, Literal) and _is_num(right.value) and op in _ORDER:
        bound, compare = right.value, _ORDER[op]

        def order(env: _Env) -> bool:
            a = env.get(name)
            return isinstance(a, int | float) and not isinstance(a, bool) and compare(a, bound)

        return order
    return None


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Not):
        yield from _walk(node.operand)
    elif isinstance(node, BoolOp):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, Compare):
        yield from _walk(node.first)
        for _, operand, _ in node.rest:
            yield from _walk(operand)


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[Node, _Fn, frozenset[str]]:
    """Tree, compiled closure and names of an expression (parsed once per text)."""
    tree = _Parser(text).parse()
    return tree, _compile(tree), frozenset(n.name for n in _walk(tree) if isinstance(n, Name))


@functools.lru_cache(maxsize=16384)
def _breakpoints(text: str, name: str) -> tuple[float, ...] | None:
    found = Constraint(text)._compute_breakpoints(name)
    return None if found is None else tuple(found)


@functools.lru_cache(maxsize=4096)
def _name_nodes(text: str) -> tuple[Name, ...]:
    return tuple(n for n in _walk(Constraint(text).tree) if isinstance(n, Name))


@functools.lru_cache(maxsize=4096)
def _comparisons(text: str) -> tuple[tuple[Name, str, Literal], ...]:
    return tuple(Constraint(text)._compute_comparisons())


@functools.lru_cache(maxsize=16384)
def _literals_for(text: str, name: str) -> tuple[Any, ...]:
    return tuple(lit.value for n, _, lit in Constraint(text).comparisons() if n.name == name)


class Constraint:
    """A parsed constraint expression; raises :class:`ConstraintError` if it does not parse.

    ``evaluate(env)`` says whether an environment satisfies it (``fn(env)`` is the
    compiled predicate itself, truthy or falsy); ``names`` are the names it reads. Two
    constraints are equal when their texts are.
    """

    __slots__ = ("fn", "names", "text", "tree")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ConfigurationError(f"a constraint is text, not {type(text).__name__}")
        self.text = text
        self.tree, self.fn, self.names = _parsed(text)

    def evaluate(self, env: _Env) -> bool:
        """True when ``env`` (name -> value; absent names are null) satisfies the constraint."""
        return bool(self.fn(env))

    __call__ = evaluate

    def name_nodes(self) -> list[Name]:
        """Every name in the expression with its 0-based position."""
        return list(_name_nodes(self.text))

    def comparisons(self) -> list[tuple[Name, str, Literal]]:
        """``(name, operator, literal)`` for every comparison of a name with literal values
        (one triple per literal of a list), for checking values against domains."""
        return list(_comparisons(self.text))

    def _compute_comparisons(self) -> Iterator[tuple[Name, str, Literal]]:
        for node in _walk(self.tree):
            if not isinstance(node, Compare):
                continue
            left = node.first
            for op, right, _ in node.rest:
                for name, lit in ((left, right), (right, left)):
                    if not isinstance(name, Name):
                        continue
                    if isinstance(lit, Literal):
                        yield name, op, lit
                    elif isinstance(lit, ListLit):
                        for item in lit.items:
                            yield name, op, item
                left = right


    def breakpoints(self, name: str) -> list[float] | None:
        """The numbers ``name`` is compared with when it is only ever compared with literal
        values (0 included, for truth tests), else None: within the intervals these cut,
        the expression cannot tell two values of ``name`` apart."""
        found = _breakpoints(self.text, name)
        return None if found is None else list(found)

    def literals_for(self, name: str) -> list[Any]:
        """The literal values ``name`` is compared with (probe points for numeric search)."""
        return list(_literals_for(self.text, name))

    def _compute_breakpoints(self, name: str) -> list[float] | None:
        points: list[float] = [0.0]
        for node in _walk(self.tree):
            if not isinstance(node, Compare):
                continue
            operands = [node.first, *(operand for _, operand, _ in node.rest)]
            for i, operand in enumerate(operands):
                if not (isinstance(operand, Name) and operand.name == name):
                    continue
                for j in (i - 1, i + 1):
                    if not 0 <= j < len(operands):
                        continue
                    other = operands[j]
                    if isinstance(other, Literal):
                        items: tuple[Literal, ...] = (other,)
                    elif isinstance(other, ListLit):
                        items = other.items
                    else:
                        return None
                    points += [float(lit.value) for lit in items if _is_num(lit.value)]
        return sorted(set(points))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Constraint) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Constraint({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[type[Constraint], tuple[str]]:
        return (Constraint, (self.text,))
