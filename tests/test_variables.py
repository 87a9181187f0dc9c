"""Variables and spaces: domains, LM kinds, conditions, constraints, sizes, grids, configs."""

from __future__ import annotations

import itertools
import math
import pickle
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dspex_lab as dx
from dspex_lab.errors import ConfigurationError
from dspex_lab.variables import (
    Categorical,
    ConstraintError,
    Demos,
    Float,
    Int,
    InvalidConfigError,
    Space,
    adapter,
    demos,
    instructions,
    max_tokens,
    model,
    module,
    temperature,
)

POOL = [{"question": f"q{i}", "answer": str(i)} for i in range(6)]


# --------------------------------------------------------------------------- variables


def test_categorical_domain() -> None:
    v = Categorical("color", ["red", "green", 3, None, True])
    assert v.kind == "categorical" and v.key is None and v.discrete
    assert v.cardinality == 5 and list(v.values()) == ["red", "green", 3, None, True]
    assert v.problem("green") is None and v.problem(None) is None
    assert v.problem(1) is not None  # True is a choice, 1 is not
    assert v.default_value() == "red"
    rng = random.Random(0)
    assert {v.sample(rng) for _ in range(200)} == {"red", "green", 3, None, True}
    assert v.to_spec() == {"choices": ["red", "green", 3, None, True]}


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: Categorical("x", []), "empty"),
    (lambda: Categorical("x", ["a", "a"]), "twice"),
    (lambda: Categorical("x", "ab"), "list of values"),
    (lambda: Categorical("x", ["a"], default="b"), "default"),
    (lambda: Float("x", 1.0, 0.0), "low"),
    (lambda: Float("x", 0.0, 1.0, log=True), "log range"),
    (lambda: Float("x", 0.0, float("inf")), "finite"),
    (lambda: Float("x", 0.0, 1.0, step=-1), "step"),
    (lambda: Int("x", 0, 5, step=0), "step"),
    (lambda: Int("x", 0.5, 5), "integer"),  # type: ignore[arg-type]
    (lambda: Int("x", 1, 5, default=7), "default"),
    (lambda: adapter(["chat", "xml"]), "not an adapter"),
    (lambda: module(["predict", "react"]), "not a module kind"),
    (lambda: model(["gpt-4o"]), "model name"),
    (lambda: temperature(0.0, 3.0), "temperature"),
    (lambda: max_tokens(0, 10), "positive integer"),
    (lambda: Float("max_tokens", 1.0, 5.0), "integer"),
    (lambda: Float("adapter", 0.0, 1.0), "choices, not a range"),
    (lambda: instructions(["ok", 3]), "not text"),
    (lambda: demos((3, 1)), "low <= high"),
    (lambda: demos((0, 4), pool=POOL[:2]), "pool"),
    (lambda: demos((0, 2), select="all"), "select"),
    (lambda: Demos(2, name="shots"), "named 'demos'"),
    (lambda: temperature(name="temp"), "named 'temperature'"),
    (lambda: Categorical("", ["a"]), "name"),
])
def test_bad_definitions_raise(make: Any, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        make()


def test_ranges() -> None:
    f = Float("x", 0.0, 1.0)
    assert not f.discrete and f.cardinality is None
    assert f.problem(0.5) is None and f.problem(1.5) is not None and f.problem("a") is not None
    assert list(f.values(3)) == [0.0, 0.5, 1.0]
    with pytest.raises(ConfigurationError, match="continuous"):
        list(f.values())
    stepped = Float("x", 0.0, 1.0, step=0.25)
    assert stepped.discrete and stepped.cardinality == 5
    assert list(stepped.values()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert stepped.problem(0.3) is not None and stepped.problem(0.75) is None
    lg = Float("lr", 1e-4, 1e-1, log=True)
    assert [round(x, 6) for x in lg.values(4)] == [0.0001, 0.001, 0.01, 0.1]
    rng = random.Random(1)
    samples = [lg.sample(rng) for _ in range(2000)]
    assert all(1e-4 <= s <= 1e-1 for s in samples)
    below = sum(s < 1e-2 for s in samples) / len(samples)
    assert 0.6 < below < 0.73  # log-uniform: two decades of three
    i = Int("k", 2, 10, step=4)
    assert list(i.values()) == [2, 6, 10] and i.cardinality == 3
    assert i.problem(6) is None and i.problem(4) is not None and i.problem(6.0) is not None
    ilog = Int("n", 1, 1000, log=True)
    assert all(1 <= ilog.sample(rng) <= 1000 for _ in range(500))


def test_lm_kinds() -> None:
    assert adapter().choices == ("chat", "json", "markdown") and adapter().kind == "adapter"
    assert module().choices == ("predict", "cot", "pot")
    assert model(["sim/small", "sim/large"]).kind == "model"
    t = temperature(0.0, 1.5)
    assert isinstance(t, Float) and t.kind == "temperature"
    assert isinstance(temperature(choices=[0.0, 0.7]), Categorical)
    mt = max_tokens(64, 1024, log=True)
    assert isinstance(mt, Int) and mt.kind == "max_tokens" and mt.log
    ins = instructions(["Be brief.", "Think step by step."])
    assert ins.kind == "instructions" and ins.cardinality == 2
    targeted = temperature(0.0, 1.0, name="gen.temperature")
    assert targeted.key == "temperature" and targeted.target == "gen"
    free = Categorical("pot_timeout", [1, 5])
    assert free.key is None and free.target is None


def test_demos() -> None:
    d = demos((0, 3), pool=POOL)
    assert d.kind == "demos" and d.cardinality == 4
    assert list(d.values()) == [(), (0,), (0, 1), (0, 1, 2)]
    assert d.config_value((0, 1)) == POOL[:2]
    assert d.constraint_value((0, 1)) == 2
    assert d.problem((1, 2)) is not None  # select first: only prefixes
    sub = demos((1, 2), pool=POOL, select="subset")
    assert sub.cardinality == math.comb(6, 1) + math.comb(6, 2)
    assert len(list(sub.values())) == sub.cardinality
    assert sub.problem((5, 2)) is None and sub.problem((1, 1)) is not None
    assert sub.problem((0, 9)) is not None
    rng = random.Random(0)
    value = sub.sample(rng)
    assert isinstance(value, tuple) and sub.problem(value) is None
    assert pickle.loads(pickle.dumps(value)) == value  # plain data
    unbound = demos((0, 2))
    with pytest.raises(ConfigurationError, match="no demo pool"):
        unbound.config_value((0,))
    assert unbound.with_pool(POOL).config_value((0, 1)) == POOL[:2]
    assert demos((0, 2), default=1).default == (0,)


# --------------------------------------------------------------------------- spaces


def _space() -> Space:
    return Space(
        [model(["sim/small", "sim/large", "groq/llama-3.1-8b-instant"]), module(), adapter(),
         Categorical("pot_timeout", [1, 5], when='module == "pot"'),
         demos((0, 2), pool=POOL)],
        ['provider == "groq" -> module in ["predict", "cot"]',
         'model == "sim/small" -> adapter != "json"'])


def _brute_force(space: Space) -> list[dict[str, Any]]:
    """Every valid assignment, by checking the whole product (the slow, obvious way)."""
    names = list(space.variables)
    domains = []
    for name in names:
        domains.append([*space.variables[name].values(), "<inactive>"])
    out = []
    seen = set()
    for combo in itertools.product(*domains):
        a = {n: v for n, v in zip(names, combo, strict=True) if v != "<inactive>"}
        if not space.validate(a):
            key = repr(sorted(a.items(), key=lambda kv: kv[0]))
            if key not in seen:
                seen.add(key)
                out.append(a)
    return out


def test_space_size_grid_and_validation_agree_with_brute_force() -> None:
    space = _space()
    valid = _brute_force(space)
    grid = list(space.grid())
    assert space.size == len(valid) == len(grid)
    assert space.size_exact
    assert {repr(sorted(a.items())) for a in grid} == {repr(sorted(a.items())) for a in valid}
    assert all("pot_timeout" in a for a in grid if a["module"] == "pot")
    assert all("pot_timeout" not in a for a in grid if a["module"] != "pot")
    assert space.raw_size == 3 * 3 * 3 * 2 * 3


def test_sample_respects_constraints_and_conditions() -> None:
    space = _space()
    rng = random.Random(0)
    for _ in range(300):
        a = space.sample(rng)
        assert space.validate(a) == []
    assert space.sample(7) == space.sample(7)  # an int seeds


def test_validate_explains() -> None:
    space = _space()
    good = {"model": "sim/large", "module": "pot", "adapter": "json", "pot_timeout": 5,
            "demos": (0,)}
    assert space.validate(good) == [] and space.is_valid(good)
    bad = {**good, "model": "groq/llama-3.1-8b-instant"}
    reasons = space.validate(bad)
    assert len(reasons) == 1 and 'provider == "groq"' in reasons[0]
    assert "provider='groq'" in reasons[0]
    assert [c.text for c in space.rejecting(bad)] == [
        'provider == "groq" -> module in ["predict", "cot"]']
    assert not space.evaluate(bad)
    with pytest.raises(InvalidConfigError) as info:
        space.check(bad)
    assert info.value.reasons == reasons
    other = space.validate({"model": "sim/large", "module": "predict", "adapter": "xml",
                            "pot_timeout": 1, "demos": (0,), "colour": 1})
    assert any("unknown variable 'colour'" in r for r in other)
    assert any("adapter" in r and "'xml'" in r for r in other)
    assert any("pot_timeout" in r and "only used when" in r for r in other)
    assert any("no value for 'demos'" in r
               for r in space.validate({"model": "sim/large", "module": "cot",
                                        "adapter": "chat"}))
    assert space.validate([1, 2]) != []  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError):
        space.validate(bad, raise_=True)


def test_to_config_default_and_complete() -> None:
    space = _space()
    a = {"model": "sim/large", "module": "pot", "adapter": "json", "pot_timeout": 5,
         "demos": (0, 1)}
    config = space.to_config(a)
    assert config == {"model": "sim/large", "module": "pot", "adapter": "json",
                      "demos": POOL[:2]}  # the free variable stays in the assignment
    assert space.free_values(a) == {"pot_timeout": 5}
    assert space.default() == {"model": "sim/small", "module": "predict", "adapter": "chat",
                               "demos": ()}
    assert space.complete({"module": "pot"})["pot_timeout"] == 1
    assert space.is_active("pot_timeout", {"module": "pot"})
    assert not space.is_active("pot_timeout", {"module": "cot"})
    with pytest.raises(ConfigurationError, match="unknown variable"):
        space.to_config({"nope": 1})


def test_config_applies_to_programs() -> None:
    space = Space([module(), adapter(), temperature(0.0, 1.0, name="draft.temperature"),
                   demos((0, 2), pool=POOL, name="draft.demos")])

    class TwoStep(dx.Module):
        def __init__(self) -> None:
            self.draft = dx.ChainOfThought("question -> answer")
            self.check = dx.Predict("question, answer -> verdict: bool")

        def forward(self, question: str) -> Any:
            return self.draft(question=question)

    program = TwoStep()
    space.check_program(program)
    a = {"module": "predict", "adapter": "json", "draft.temperature": 0.3,
         "draft.demos": (0, 1)}
    tuned = program.with_config(space.to_config(a))
    cfg = tuned.config()
    assert cfg["draft"]["module"] == "predict" and cfg["check"]["module"] == "predict"
    assert cfg["draft"]["temperature"] == 0.3 and cfg["check"]["temperature"] is None
    assert cfg["draft"]["demos"] == POOL[:2] and cfg["check"]["demos"] == []
    assert cfg["check"]["adapter"] == "json"
    bad = Space([temperature(0.0, 1.0, name="drat.temperature")])
    with pytest.raises(ConfigurationError, match="Did you mean 'draft'"):
        bad.check_program(program)


def test_continuous_spaces() -> None:
    space = Space([temperature(0.0, 1.0), module(["predict", "cot"])],
                  ['module == "cot" -> temperature <= 0.5'])
    assert space.size is None and not space.is_discrete
    with pytest.raises(ConfigurationError, match="continuous"):
        list(space.grid())
    grid = list(space.grid(points=3))
    assert {(a["module"], a["temperature"]) for a in grid} == {
        ("predict", 0.0), ("predict", 0.5), ("predict", 1.0), ("cot", 0.0), ("cot", 0.5)}
    rng = random.Random(0)
    for _ in range(200):
        a = space.sample(rng)
        assert a["module"] == "predict" or a["temperature"] <= 0.5
    assert space.satisfiable()
    tight = Space([temperature(0.0, 1.0)], ["temperature > 0.7", "temperature < 0.7"])
    assert not tight.satisfiable()
    edge = Space([temperature(0.0, 1.0)], ["temperature > 0.7", "temperature < 0.70001"])
    assert edge.satisfiable()  # probe points either side of each compared number


def test_unsatisfiable_space_cannot_sample() -> None:
    space = Space([module(["predict", "cot"])], ['module == "pot"'])
    assert space.size == 0 and not space.satisfiable()
    with pytest.raises(InvalidConfigError):
        space.sample(0)


def test_constants_and_derived_names() -> None:
    space = Space([module()], ['provider == "groq" -> module != "pot"'],
                  constants={"model": "groq/llama-3.1-8b-instant"})
    assert space.size == 2
    assert space.env({"module": "cot"})["provider"] == "groq"
    assert space.known_names() == ["module", "model", "provider"]
    assert space.rejects_nothing(space.constraints[0]) is False
    always = Space([module()], ['module in ["predict", "cot", "pot"]'])
    assert always.rejects_nothing(always.constraints[0])


def test_construction_errors() -> None:
    with pytest.raises(ConfigurationError, match="declared twice"):
        Space([module(), module()])
    with pytest.raises(ConfigurationError, match="Did you mean 'module'"):
        Space([module()], ['modul == "cot"'])
    with pytest.raises(ConstraintError):
        Space([module()], ["module = 'cot'"])
    with pytest.raises(ConfigurationError, match="cycle"):
        Space([Categorical("a", [1, 2], when="b == 1"), Categorical("b", [1, 2], when="a == 1")])
    with pytest.raises(ConfigurationError, match="variables"):
        Space(["module"])  # type: ignore[list-item]


def test_space_pickles_and_compares() -> None:
    space = _space()
    copy = pickle.loads(pickle.dumps(space))
    assert copy == space and copy.size == space.size
    assert "variables" in repr(space)


def test_dependencies_and_components() -> None:
    space = _space()
    assert space.dependencies == {"pot_timeout": ["module"]}
    assert space.couplings[0][1] == ["model", "module"]
    groups = [sorted(c.names) for c in space.components()]
    assert sorted(groups) == [["adapter", "model", "module", "pot_timeout"], ["demos"]]


def test_with_demo_pool() -> None:
    space = Space([demos((0, 2))])
    bound = space.with_demo_pool(POOL)
    assert bound.to_config({"demos": (0, 1)}) == {"demos": POOL[:2]}


def test_large_components_are_sampled_not_enumerated() -> None:
    space = Space([Int(f"x{i}", 0, 99) for i in range(3)] + [Int("huge", 0, 10**12)],
                  ["x0 < 50 -> x1 < 50", "x1 < x2", "huge > 5"])
    assert not space.size_exact
    size = space.size
    exact = sum(1 for a, b, c in itertools.product(range(100), repeat=3)
                if (a >= 50 or b < 50) and b < c) * (10**12 - 5)
    assert size is not None and abs(size / exact - 1) < 0.1
    assert space.validate(space.sample(0)) == []


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_size_matches_brute_force_on_random_spaces(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 4))
    names = [f"v{i}" for i in range(n)]
    domains = {name: data.draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1,
                                        max_size=3, unique=True)) for name in names}
    variables = []
    for i, name in enumerate(names):
        when = None
        if i and data.draw(st.booleans()):
            other = names[data.draw(st.integers(0, i - 1))]
            when = f'{other} == "{domains[other][0]}"'
        variables.append(Categorical(name, domains[name], when=when))
    atoms = st.builds(lambda a, v, op: f'{a} {op} "{v}"', st.sampled_from(names),
                      st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["==", "!="]))
    exprs = st.one_of(atoms, st.builds(lambda x, y, op: f"{x} {op} {y}", atoms, atoms,
                                       st.sampled_from(["and", "or", "->"])))
    constraints = data.draw(st.lists(exprs, max_size=3))
    space = Space(variables, constraints)
    valid = _brute_force(space)
    assert space.size == len(valid)
    assert len(list(space.grid())) == len(valid)
    assert space.satisfiable() == bool(valid)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_compressed_domains_count_exactly(data: st.DataObject) -> None:
    """Wide integer ranges, stepped floats and demo subsets are analysed by intervals and
    counts; the result must equal the brute-force count over every value."""
    low = data.draw(st.integers(-5, 5))
    wide = Int("n", low, low + data.draw(st.integers(17, 30)))
    stepped = Float("f", 0.0, 2.0, step=0.1)
    shots = demos((0, 2), pool=POOL[:5], select="subset")
    mode = Categorical("mode", ["a", "b"])
    numbers = st.one_of(st.integers(-8, 50), st.sampled_from([0.5, 1.05, 1.1, 2.0]))
    atoms = st.one_of(
        st.builds(lambda op, x: f"n {op} {x}",
                  st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers),
        st.builds(lambda op, x: f"f {op} {x}", st.sampled_from(["<", ">=", "=="]), numbers),
        st.builds(lambda op, k: f"demos {op} {k}", st.sampled_from(["<=", "==", ">"]),
                  st.integers(0, 2)),
        st.builds(lambda xs: f"n in {xs}", st.lists(st.integers(-3, 30), max_size=3)),
        st.just('mode == "a"'), st.just("n"))
    exprs = st.one_of(atoms, st.builds(lambda x, y, op: f"{x} {op} {y}", atoms, atoms,
                                       st.sampled_from(["and", "or", "->"])))
    constraints = data.draw(st.lists(exprs, min_size=1, max_size=3))
    space = Space([wide, stepped, shots, mode], constraints)
    count = 0
    for n, f, d, m in itertools.product(wide.values(), stepped.values(), shots.values(),
                                        mode.values()):
        env = space.env({"n": n, "f": f, "demos": d, "mode": m})
        count += all(c.evaluate(env) for c in space.constraints)
    assert space.size == count
    assert space.satisfiable() == bool(count)


def test_public_surface() -> None:
    import dspex_lab.variables as variables

    public = {name for name in vars(variables) if not name.startswith("_")} - {"annotations"}
    assert set(variables.__all__) == public
    assert sorted(variables.__all__) == sorted(set(variables.__all__))
