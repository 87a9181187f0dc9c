"""The JupyterLab extension in a live JupyterLab, driven by headless Chromium.

JupyterLab runs on 127.0.0.1 (a free port, a token, its own config, data and runtime
directories); the extension is found where ``pip install`` put it, in this
environment's ``share/jupyter/labextensions/dspex-lab`` (nothing is linked or built
here). Chromium (the system one, through Python Playwright; never ``playwright
install``) opens notebooks and the tests read the editor's DOM:

- a saved notebook: the ``%%dspex`` spec cell's keys, values, constraint operators,
  logic words and comments carry the ``dx-spec-*`` classes and the theme's colours,
  the ``%%dspex sql`` and ``%%dspex optimize`` cells theirs, and the Python cell and
  a markdown cell none of them, the Python cell keeping its Python highlighting;
- typing: a cell turns into a spec cell when ``%%dspex`` is typed on its first line,
  into SQL when the magic line becomes ``%%dspex sql``, and back to Python when the
  magic line is deleted.

The page's console must show no error from the extension. Screenshots go to
``test-artifacts/browser/extension-*.png``. Without the extension loaded, no
``dx-spec-*`` class exists and every test fails.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Lab,
    require_chromium,
    start_lab,
    stop_lab,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ARTIFACTS / "browser"

SPEC = """%%dspex qa
name: qa   # the spec's name
signature: question -> answer
model: sim/small
variables:
  adapter: [chat, json]
  module: {choices: [predict, cot, pot], default: cot}
  temperature: {range: [0.0, 1.5]}
  pot_timeout: {range: [1.0, 10.0], when: module == "pot"}
  max_tokens: {range: [64, 1024], log: true}
constraints:
  - model == "sim/small" -> module != "pot"
  - "not (adapter == 'json' and module in ['cot'])"
  - temperature <= 1.0 or module = "cot"
budget: {dollars: 2.0, trials: 40}"""

PYTHON = """import math
def double(x):
    return x * 2  # not a spec"""

SQL = """%%dspex sql -o df
SELECT run_id, count(*) FROM trials
WHERE run_id = {run.id} AND state = 'done' LIMIT :n  -- recent"""

OPTIMIZE = """%%dspex optimize qa --trials 5
# more options
--dollars 0.5"""

MARKDOWN = "%%dspex in a markdown cell is just text"

# (line of the cell, token text, the class it must carry)
SPEC_TOKENS = [
    (0, "%%dspex", "dx-spec-magic"), (0, "qa", "dx-spec-bind"),
    (1, "name", "dx-spec-key"), (1, ":", "dx-spec-punct"), (1, "qa", "dx-spec-string"),
    (1, "# the spec's name", "dx-spec-comment"),
    (2, "signature", "dx-spec-key"), (2, "question", "dx-spec-name"), (2, "->", "dx-spec-op"),
    (3, "sim/small", "dx-spec-string"),
    (4, "variables", "dx-spec-key"),
    (5, "adapter", "dx-spec-key"), (5, "chat", "dx-spec-string"), (5, "[", "dx-spec-bracket"),
    (6, "module", "dx-spec-key"), (6, "choices", "dx-spec-key"), (6, "default", "dx-spec-key"),
    (6, "predict", "dx-spec-string"),
    (7, "range", "dx-spec-key"), (7, "0.0", "dx-spec-number"), (7, "1.5", "dx-spec-number"),
    (8, "when", "dx-spec-key"), (8, "module", "dx-spec-name"), (8, "==", "dx-spec-op"),
    (8, '"pot"', "dx-spec-string"),
    (9, "log", "dx-spec-key"), (9, "true", "dx-spec-atom"), (9, "1024", "dx-spec-number"),
    (10, "constraints", "dx-spec-key"),
    (11, "-", "dx-spec-punct"), (11, "model", "dx-spec-name"), (11, "==", "dx-spec-op"),
    (11, '"sim/small"', "dx-spec-string"), (11, "->", "dx-spec-op"), (11, "!=", "dx-spec-op"),
    (12, "not", "dx-spec-logic"), (12, "and", "dx-spec-logic"), (12, "in", "dx-spec-logic"),
    (12, "adapter", "dx-spec-name"), (12, "'json'", "dx-spec-string"),
    (13, "<=", "dx-spec-op"), (13, "or", "dx-spec-logic"), (13, "=", "dx-spec-invalid"),
    (14, "budget", "dx-spec-key"), (14, "dollars", "dx-spec-key"), (14, "2.0", "dx-spec-number"),
]
SQL_TOKENS = [
    (0, "%%dspex", "dx-spec-magic"), (0, "sql", "dx-spec-command"), (0, "-o", "dx-spec-option"),
    (0, "df", "dx-spec-bind"),
    (1, "SELECT", "dx-spec-sql-keyword"), (1, "FROM", "dx-spec-sql-keyword"),
    (1, "trials", "dx-spec-name"),
    (2, "{run.id}", "dx-spec-param"), (2, ":n", "dx-spec-param"), (2, "'done'", "dx-spec-string"),
    (2, "-- recent", "dx-spec-comment"), (2, "AND", "dx-spec-sql-keyword"),
]
OPTIMIZE_TOKENS = [
    (0, "optimize", "dx-spec-command"), (0, "qa", "dx-spec-bind"),
    (0, "--trials", "dx-spec-option"), (0, "5", "dx-spec-number"),
    (1, "# more options", "dx-spec-comment"),
    (2, "--dollars", "dx-spec-option"), (2, "0.5", "dx-spec-number"),
]


# -- JupyterLab and the browser ---------------------------------------------------------
@dataclass
class Browser:
    page: Any
    console: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab for the module (each test opens notebooks of its own)."""
    require_chromium()
    installed = Path(sys.prefix) / "share/jupyter/labextensions/dspex-lab/package.json"
    assert installed.is_file(), f"{installed} is missing: pip install -e . ships it"
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        lab = start_lab(base, root, mp)
        try:
            yield lab
        finally:
            stop_lab(lab)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh, empty user data dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1300, "height": 1100})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            seen = Browser(page)
            page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen.console.append(f"pageerror: {e}"))
            yield seen
        finally:
            context.close()


def _notebook(lab: Lab, name: str, cells: list[tuple[str, str]]) -> str:
    """Write a notebook of (cell type, source) cells into the server's root."""
    nb = {
        "cells": [{"id": f"cell-{i}", "cell_type": kind, "source": source, "metadata": {},
                   **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                  for i, (kind, source) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "mimetype": "text/x-python",
                              "codemirror_mode": {"name": "ipython", "version": 3}},
        },
        "nbformat": 4, "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(nb))
    return name


def _open(lab: Lab, browser: Browser, name: str, cells: int) -> None:
    page = browser.page
    # ?reset: a clean workspace, without the notebooks an earlier test left open
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_function(
        """n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')
                .length === n""", arg=cells, timeout=60_000)
    button = page.locator(".Toastify").get_by_role("button", name="No", exact=True)
    if button.count():  # JupyterLab asks once whether to fetch its news
        button.first.click()


# -- reading the editors ----------------------------------------------------------------
_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
# Per cell of the visible notebook: the editor's classes and, per line, the leaf
# [classes, text] runs (a text node outside any span has no classes).
_CELLS_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  return Array.from(panel.querySelectorAll('.jp-Cell')).map(cell => {
    const editor = cell.querySelector('.cm-editor');
    const lines = editor ? Array.from(editor.querySelectorAll('.cm-line')).map(line => {
      const runs = [];
      const walk = (node, cls) => {
        if (node.nodeType === 3) {
          if (node.textContent) runs.push([cls, node.textContent]);
          return;
        }
        const own = node === line ? '' : (node.className || '');
        for (const child of node.childNodes) walk(child, (cls + ' ' + own).trim());
      };
      walk(line, '');
      return runs;
    }) : [];
    return {editor: editor ? editor.className : null, lines,
            spec: cell.querySelectorAll('[class*="dx-spec"]').length};
  });
}"""

# The computed colour and weight of the first span of a cell whose text is `text`,
# and the colour of its line.
_STYLE_JS = """([index, text]) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const cell = panel.querySelectorAll('.jp-Cell')[index];
  const span = Array.from(cell.querySelectorAll('.cm-line span'))
    .find(s => s.textContent === text);
  if (!span) return null;
  const style = getComputedStyle(span);
  return {color: style.color, weight: style.fontWeight,
          plain: getComputedStyle(span.closest('.cm-line')).color};
}"""


def _cells(browser: Browser) -> list[dict[str, Any]]:
    return list(browser.page.evaluate(_CELLS_JS))


def _classes(cell: dict[str, Any], line: int, text: str) -> list[str]:
    """The classes of each run on the line whose text is exactly `text`."""
    return [cls for cls, run in cell["lines"][line] if run == text]


def _check_tokens(cell: dict[str, Any], expected: list[tuple[int, str, str]]) -> None:
    wrong = []
    for line, text, cls in expected:
        found = _classes(cell, line, text)
        if not any(cls in c.split() for c in found):
            wrong.append(f"line {line} {text!r}: expected {cls}, found {found or 'no such run'}")
    assert not wrong, "\n".join(wrong) + "\n" + json.dumps(cell["lines"], indent=None)


def _python_highlighted(browser: Browser, index: int, keyword: str) -> bool:
    """Whether Python's highlighter coloured `keyword` in cell `index`."""
    style = browser.page.evaluate(_STYLE_JS, [index, keyword])
    return bool(style) and style["color"] != style["plain"]


def _extension_errors(browser: Browser) -> list[str]:
    return [m for m in browser.console
            if m.startswith("pageerror") or (m.startswith("error") and "dspex" in m.lower())]


@contextlib.contextmanager
def _recorded(lab: Lab, browser: Browser, shot: str) -> Iterator[None]:
    """Screenshot on the way out; on failure also the console and the server's log."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            browser.page.screenshot(path=str(SHOTS / f"{shot}-failure.png"))
        print("--- browser console ---\n" + "\n".join(browser.console[-80:]))
        print("--- jupyterlab log ---\n" + lab.log_tail(80))
        raise
    browser.page.screenshot(path=str(SHOTS / f"{shot}.png"))


# -- the tests --------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_dspex_cells_are_highlighted_and_other_cells_keep_theirs(
        lab: Lab, browser: Browser) -> None:
    cells = [("code", SPEC), ("code", PYTHON), ("code", SQL), ("code", OPTIMIZE),
             ("markdown", MARKDOWN)]
    name = _notebook(lab, "cells.ipynb", cells)
    page = browser.page
    with _recorded(lab, browser, "extension-cells"):
        _open(lab, browser, name, len(cells))
        # the extension was found where pip put it, and JupyterLab loaded it
        config = json.loads(page.locator("#jupyter-config-data").text_content() or "{}")
        assert "dspex-lab" in [e["name"] for e in config.get("federated_extensions", [])], (
            config.get("federated_extensions"))
        page.wait_for_selector(f"{_PANEL} .dx-spec-cell .dx-spec-key", timeout=30_000)
        page.wait_for_function(f"() => ({_STYLE_JS})([1, 'def']) && "
                               f"({_STYLE_JS})([1, 'def']).color !== "
                               f"({_STYLE_JS})([1, 'def']).plain", timeout=30_000)
        # the markdown cell in edit mode shows its source in an editor too
        page.locator(f"{_PANEL} .jp-MarkdownCell").first.dblclick()
        page.wait_for_selector(f"{_PANEL} .jp-MarkdownCell .cm-editor .cm-line", timeout=15_000)

        spec, python, sql, optimize, markdown = _cells(browser)
        assert "dx-spec-cell" in spec["editor"].split()
        _check_tokens(spec, SPEC_TOKENS)
        _check_tokens(sql, SQL_TOKENS)
        _check_tokens(optimize, OPTIMIZE_TOKENS)
        for other in (python, markdown):
            assert other["editor"] is not None
            assert "dx-spec-cell" not in other["editor"].split()
            assert other["spec"] == 0, other["lines"]
        assert len(markdown["lines"]) == 1 and "%%dspex" in markdown["lines"][0][0][1]
        # the Python cell keeps Python's highlighting: keywords coloured, comment too
        for keyword in ("import", "def", "return", "# not a spec"):
            assert _python_highlighted(browser, 1, keyword), (keyword, python["lines"])
        # the theme colours spec tokens (their tags are children of its tags)
        plain = page.evaluate(_STYLE_JS, [0, "signature"])["plain"]
        key = page.evaluate(_STYLE_JS, [0, "signature"])
        arrow = page.evaluate(_STYLE_JS, [0, "->"])
        text = page.evaluate(_STYLE_JS, [0, "sim/small"])
        assert key["color"] != plain and text["color"] != plain
        assert len({key["color"], text["color"]}) == 2
        assert arrow["weight"] == "700", arrow  # JupyterLab's operators are bold
        assert not _extension_errors(browser), _extension_errors(browser)


@pytest.mark.timeout(240)
def test_highlighting_follows_the_magic_line_as_it_is_typed(lab: Lab, browser: Browser) -> None:
    name = _notebook(lab, "typing.ipynb", [("code", "")])
    page = browser.page
    keys = page.keyboard
    body = 'signature: question -> answer\nconstraints:\n  - module == "cot"\nimport os'

    def state() -> dict[str, Any]:
        return _cells(browser)[0]

    def wait(predicate: str) -> None:
        page.wait_for_function(
            f"() => {{ const cell = ({_CELLS_JS})()[0]; return {predicate}; }}",
            timeout=15_000)

    with _recorded(lab, browser, "extension-typing"):
        _open(lab, browser, name, 1)
        page.locator(f"{_PANEL} .jp-Cell .cm-content").first.click()
        keys.insert_text(body)
        wait("cell.lines.length === 4")
        page.wait_for_function(f"() => ({_STYLE_JS})([0, 'import']) && "
                               f"({_STYLE_JS})([0, 'import']).color !== "
                               f"({_STYLE_JS})([0, 'import']).plain", timeout=30_000)
        assert state()["spec"] == 0, state()  # Python so far

        # typing the magic on a new first line makes it a spec cell, on the keystroke
        keys.press("Control+Home")
        keys.type("%%dspex qa")
        keys.press("Enter")
        wait("cell.editor.includes('dx-spec-cell') && cell.lines.length === 5")
        _check_tokens(state(), [
            (0, "%%dspex", "dx-spec-magic"), (0, "qa", "dx-spec-bind"),
            (1, "signature", "dx-spec-key"), (1, "->", "dx-spec-op"),
            (2, "constraints", "dx-spec-key"), (3, "==", "dx-spec-op"),
            (3, "module", "dx-spec-name"),
        ])
        page.screenshot(path=str(SHOTS / "extension-typing-spec.png"))

        # the magic line becomes %%dspex sql: the same body is read as SQL
        keys.press("Control+Home")
        keys.press("Shift+End")
        keys.type("%%dspex sql")
        wait("cell.lines[0].some(([c, t]) => t === 'sql' && c.includes('dx-spec-command'))")
        sql = state()
        _check_tokens(sql, [(1, "signature", "dx-spec-name"), (3, "==", "dx-spec-op"),
                            (3, '"cot"', "dx-spec-name")])
        assert not any("dx-spec-key" in c for line in sql["lines"] for c, _ in line), sql

        # deleting the magic line gives the cell back to Python
        keys.press("Control+Home")
        keys.press("Shift+End")
        keys.press("Delete")
        keys.press("Delete")
        wait("!cell.editor.includes('dx-spec-cell')")
        plain = state()
        assert plain["spec"] == 0 and len(plain["lines"]) == 4, plain
        assert _python_highlighted(browser, 0, "import")

        # and typing it again, with leading blank lines as IPython allows
        keys.press("Control+Home")
        keys.press("Enter")
        keys.press("ArrowUp")
        keys.type("%%dspex")
        keys.press("Enter")
        wait("cell.editor.includes('dx-spec-cell')")
        _check_tokens(state(), [(0, "%%dspex", "dx-spec-magic"),
                                (2, "signature", "dx-spec-key")])
        assert not _extension_errors(browser), _extension_errors(browser)
