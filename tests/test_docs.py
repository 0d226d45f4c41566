"""The documentation builds with warnings as errors, and its examples pass.

Two Sphinx builds of ``docs/`` sharing one doctree cache, exactly what CI
runs (see docs/conf.py), nitpicky (``-n``: a cross-reference that does not
resolve is an error) and with warnings as errors:

    python -m sphinx -n -W --keep-going -b html    docs docs/_build/html
    python -m sphinx -n -W --keep-going -b doctest docs docs/_build/doctest

The doctest build runs each page in a namespace that starts empty, as a fresh
interpreter does (docs/conf.py defines only the ``HAS_TORCH`` flag for
``:skipif:``), and every example block imports what it uses.

Every code block in the docs either runs (a ``{doctest}`` block, run by the
doctest build), names the test that runs it, or says why it is not run, on a
MyST comment line right above its opening fence:

    % run by: tests/test_wheel.py::test_installed_wheel_runs_outside_the_checkout
    % not run: installs packages

The Sphinx builds are skipped, with the reason, when the ``docs`` extra
(sphinx, furo, myst-parser) is not installed; the code-block rule is not.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import li_core

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: an opening fence (backticks, tildes or MyST's colons) and its info string
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
#: directives whose blocks Sphinx's doctest builder runs
RUN_BY_SPHINX = {"{doctest}", "{testcode}", "{testoutput}", "{testsetup}", "{testcleanup}"}
#: directives whose body is code shown as it is (everything else in braces is
#: markup that Sphinx interprets: toctrees, autodoc, the generated tables)
LITERAL_DIRECTIVES = {"{code-block}", "{code}", "{sourcecode}"}
MARKER = re.compile(r"^\s*%\s*(?:(?P<not_run>not run):\s*(?P<reason>\S.*)|run by:\s*(?P<test>\S+))\s*$")


def docs_sources() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def code_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """The code blocks of a Markdown page: (line, info string, the comment
    line right above the opening fence or None)."""
    blocks: list[tuple[int, str, str | None]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    closing: str | None = None
    for number, line in enumerate(lines, start=1):
        if closing is not None:  # inside a block: only its own closing fence ends it
            if line.strip() == closing:
                closing = None
            continue
        match = FENCE.match(line)
        if match is None:
            continue
        closing = match["fence"]
        info = match["info"].strip()
        above = lines[number - 2] if number >= 2 and MARKER.match(lines[number - 2]) else None
        blocks.append((number, info, above))
    return blocks


def needs_a_reason(info: str) -> bool:
    """A block whose content is code that nothing runs by itself."""
    directive = info.split()[0] if info else ""
    if directive in RUN_BY_SPHINX:
        return False
    return directive in LITERAL_DIRECTIVES or not directive.startswith("{")


def test_every_code_block_runs_or_says_why_not():
    """A plain code block (```python, ```console, ...) never runs by itself, so
    each one names the test that runs it or says why it is not run; a test it
    names must exist."""
    unmarked, unknown_tests = [], []
    for path in docs_sources():
        for number, info, above in code_blocks(path):
            where = f"{path.relative_to(ROOT)}:{number} ({info or 'no language'})"
            if not needs_a_reason(info):
                continue
            if above is None:
                unmarked.append(where)
                continue
            marker = MARKER.match(above)
            assert marker is not None
            if marker["test"]:
                test_file, _, test_name = marker["test"].partition("::")
                source = ROOT / test_file
                if not (source.is_file() and test_name and f"def {test_name}(" in source.read_text(encoding="utf-8")):
                    unknown_tests.append(f"{where}: {marker['test']}")
    assert not unmarked, (
        "code blocks that neither run nor say why; put '% run by: tests/FILE.py::TEST' or "
        "'% not run: REASON' on the line above the fence, or make them {doctest} blocks:\n" + "\n".join(unmarked)
    )
    assert not unknown_tests, "code blocks naming a test that does not exist:\n" + "\n".join(unknown_tests)


def test_the_code_block_rule_sees_every_kind_of_block(tmp_path):
    """The scanner itself: fenced blocks of each kind, a marker, a fence
    inside a longer fence, and directives that are markup."""
    page = tmp_path / "page.md"
    page.write_text(
        "````markdown\n```python\nnot a block of its own\n```\n````\n\n"
        "% not run: shows a plugin module\n```python\nimport x\n```\n\n"
        "```{doctest}\n>>> 1\n1\n```\n\n```{toctree}\nquickstart\n```\n\n"
        "~~~console\n$ li backends\n~~~\n",
        encoding="utf-8",
    )
    blocks = code_blocks(page)
    assert [(number, info) for number, info, _ in blocks] == [
        (1, "markdown"),
        (8, "python"),
        (12, "{doctest}"),
        (17, "{toctree}"),
        (21, "console"),
    ]
    assert [needs_a_reason(info) for _, info, _ in blocks] == [True, True, False, False, True]
    assert [above is not None for _, _, above in blocks] == [False, True, False, False, False]


def doctest_sources(path: Path) -> list[tuple[int, str]]:
    """(line, Python source) of every block the doctest builder runs on a page:
    the ``>>>`` and ``...`` lines of ``{doctest}`` blocks, the body of the others."""
    lines = path.read_text(encoding="utf-8").splitlines()
    sources = []
    for number, info, _ in code_blocks(path):
        if (info.split() or [""])[0] not in RUN_BY_SPHINX:
            continue
        fence = FENCE.match(lines[number - 1])
        assert fence is not None
        body = []
        for line in lines[number:]:
            if line.strip() == fence["fence"]:
                break
            body.append(line)
        if info.startswith("{doctest}"):
            code = [line[4:] for line in body if line.startswith((">>> ", "... ")) or line in (">>>", "...")]
        else:
            code = [line for line in body if not line.startswith(":")]
        sources.append((number, "\n".join(code)))
    return sources


def imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


#: names an example can only have from an import
IMPORTED_ONLY = {"np", "numpy", "da", "dask", "torch", "cupy", "nir", "li_core", "li_backends", *li_core.__all__}


def missing_imports(path: Path) -> list[str]:
    """Names that a block uses without importing them itself, where the name
    is imported by some block of the page or is one that only an import gives
    (``np``, ``li_scan``, ...): copied alone, that block fails."""
    blocks = [(number, ast.parse(source)) for number, source in doctest_sources(path)]
    on_the_page = set().union(*(imported_names(tree) for _, tree in blocks)) if blocks else set()
    missing = []
    for number, tree in blocks:
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        bound |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
        for name in sorted((used & (on_the_page | IMPORTED_ONLY)) - imported_names(tree) - bound):
            missing.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    return missing


def test_every_example_imports_what_it_uses():
    """Each example block imports the modules and names it uses, so it runs
    when copied into a fresh interpreter (the doctest build runs each page
    with empty globals, which catches a name that no block imports)."""
    missing = [name for path in docs_sources() for name in missing_imports(path)]
    assert not missing, "example blocks that use a name without importing it:\n" + "\n".join(missing)


def test_the_import_rule_sees_a_block_relying_on_another(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(
        "```{doctest}\n>>> import numpy as np\n>>> x = np.ones(2)\n```\n\n"
        "```{doctest}\n>>> y = np.zeros(2) + x\n```\n\n"
        "```{testcode}\nimport numpy as np\nprint(np.pi)\n```\n\n"
        "```{doctest}\n>>> li_scan(x)\n```\n",
        encoding="utf-8",
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert missing_imports(page) == ["page.md:6: np", "page.md:15: li_scan"]


def require_sphinx() -> None:
    for module in ("sphinx", "furo", "myst_parser"):
        pytest.importorskip(
            module, reason=f'{module} is not installed: install the docs extra (pip install -e ".[docs]")'
        )


def sphinx(builder: str, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", builder, "-d", str(doctrees)]
    return subprocess.run([*command, str(DOCS), str(out)], capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The HTML build (run once for this module)."""
    require_sphinx()
    root = tmp_path_factory.mktemp("docs")
    result = sphinx("html", root / "html", root / "doctrees")
    return root, result


def test_html_builds_without_warnings(built):
    _, result = built
    assert result.returncode == 0, f"sphinx -W -b html failed:\n{result.stdout}\n{result.stderr}"
    assert "WARNING" not in result.stderr, result.stderr


def test_doctests_pass(built):
    root, _ = built
    result = sphinx("doctest", root / "doctest", root / "doctrees")
    output = root / "doctest" / "output.txt"
    report = output.read_text(encoding="utf-8") if output.exists() else ""
    assert result.returncode == 0, f"doctests failed:\n{report}\n{result.stdout}\n{result.stderr}"
    summary = re.search(r"(\d+) tests\s+(\d+) failures in tests\s+(\d+) failures in setup code", report)
    assert summary, report
    tests, failures, setup_failures = map(int, summary.groups())
    assert tests >= 50, f"only {tests} doctests ran; were the examples dropped?"
    assert failures == 0 and setup_failures == 0


def test_generated_tables_come_from_the_code(built):
    """The backend table lists every registered backend with its declared
    capabilities; the CLI pages carry the real --help; the benchmark page
    renders docs/benchmarks.json with the machine it names."""
    root, result = built
    assert result.returncode == 0
    backends = (root / "html" / "backends.html").read_text(encoding="utf-8")
    for info in li_core.list_backends():
        assert f"<p>{info.name}</p>" in backends, info.name
        assert ", ".join(info.dtypes) in backends
    cli_page = (root / "html" / "cli.html").read_text(encoding="utf-8")
    for command in ("backends", "demo", "bench", "check", "compare"):
        assert f"usage: li {command}" in cli_page
    report = json.loads((DOCS / "benchmarks.json").read_text(encoding="utf-8"))
    bench_page = (root / "html" / "benchmarks.html").read_text(encoding="utf-8")
    assert report["machine"]["cpu"] in bench_page
    timed = [row for row in report["results"] if row["status"] == "ok"]
    assert timed, "docs/benchmarks.json has no timed results"
    assert all(f"<p>{row['workload']}</p>" in bench_page for row in timed if "host" not in row)
    host_rows = [row for row in timed if "host" in row]  # (the host workload has its own table)
    if host_rows:
        assert "Host overhead, microseconds per call" in bench_page
        assert all(f"<p>{cell['neurons']}</p>" in bench_page for row in host_rows for cell in row["host"])
    assert "data:image/png;base64," in bench_page or "needs matplotlib" in bench_page


#: a suppression comment and what follows it on the line
SUPPRESSION = re.compile(r"#\s*(?:noqa|type:\s*ignore)\b(?P<codes>[:\[][^#]*?)?(?P<rest>\s*(?:#.*|[-(].*)?)$")


def test_every_suppression_carries_its_reason():
    """CONTRIBUTING.md says so: ``# noqa: CODE - reason``, ``# noqa: CODE (reason)``
    or ``# type: ignore[code]  # reason`` on the same line."""
    sources = [*ROOT.glob("*/**/*.py"), ROOT / "scripts" / "gpu-check"]
    bare = []
    for path in sources:
        if "_build" in path.parts or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = SUPPRESSION.search(line)
            if match and len(match["rest"].strip(" #-()")) < 3:
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "suppressions without a reason:\n" + "\n".join(bare)


def test_changelog_versions_and_tags_agree():
    """CONTRIBUTING.md's version scheme: every version in CHANGELOG.md is a
    tag ``vX.Y.Z`` and every such tag a version there; the package's version
    is the next release's, so no released version is newer or equal."""
    released = re.findall(r"^## (\d+\.\d+\.\d+)\b", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), flags=re.M)
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), flags=re.M)[1]
    assert li_core.__version__ == version
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(part) for part in v.split("."))

    assert all(key(v) < key(version) for v in released), (version, released)
    done = subprocess.run(["git", "-C", str(ROOT), "tag", "--list", "v*"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    tags = {tag[1:] for tag in done.stdout.split() if re.fullmatch(r"v\d+\.\d+\.\d+", tag)}
    assert tags == set(released), f"tags {sorted(tags)} against CHANGELOG versions {released}"


def test_the_quickstart_lists_every_extra_and_what_all_installs():
    """Every extra of pyproject.toml has a row in the quickstart's table, and
    the ``all`` row names exactly the extras that ``all`` installs."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib arrived in Python 3.11")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    rows = {
        match[1]: match[2]
        for match in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", (DOCS / "quickstart.md").read_text(), flags=re.M)
    }
    assert set(rows) == set(extras), (
        f"extras without a row: {set(extras) - set(rows)}; rows of no extra: {set(rows) - set(extras)}"
    )
    (bundle,) = extras["all"]
    named = set(re.findall(r"`(\w+)`", rows["all"].split("(not")[0]))
    assert named == set(bundle.split("[")[1].rstrip("]").split(",")), rows["all"]
