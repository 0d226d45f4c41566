"""Every measured figure in README.md and docs/ traces to a stored result.

A stored result is a JSON file under docs/ written by ``li bench --json`` or by
a script in benchmarks/ (through benchmarks/recording.py); it records the date,
the commit, the machine and the command that produced it.

A page quotes figures in a block (a paragraph, a list or a table: lines up to
the next blank line) that starts with a marker comment, in MyST
(``% ...``) or HTML (``<!-- ... -->``, for the README):

    % figures: results/blocked.json
    % illustration: the first design's figures, whose code was removed
    % not measured: the defaults of the parameters

``illustration:`` and ``not measured:`` give the reason why the block's
figures come from no stored result. With ``figures:`` (one or more files, relative to the page), every figure the
block quotes, and every decimal number in it, must be the rounding of a number
in one of those files (times are stored in seconds). A block without a
marker may quote no figure at all. What counts as a figure: a number with a
unit of time (ns, µs, ms, s) or of throughput (GB/s), a ratio (``3.5x``,
``21 times``), a percentage, or a fraction of a tolerance (``0.45 of the
tolerance``); a range (``245 to 326 ms``) counts both ends. Code (fenced,
inline) and math are not read: examples run as doctests, and formulas are not
measurements. CONTRIBUTING.md explains this to contributors.

Every stored result also records the path each backend took (``paths``:
what ``li backends`` says, such as compiled loops or not); a result whose
paths are not the ones the same backends take now, here, measured other
code, and the check names it with the command that refreshes it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from li_core.bench import backend_paths, changed_paths, path_of

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: pages that other files own for now are still checked: every page must pass
PAGES = sorted([ROOT / "README.md", *(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)])

NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"
#: unit -> factor to the stored value (times are stored in seconds)
SCALE = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
FIGURE = re.compile(
    rf"(?<![\w.,])(?:(?P<low>{NUMBER})\s*(?:to|\u2013|-|and|against)\s*)?(?P<value>{NUMBER})"
    r"(?:\s?(?P<unit>ns|µs|us|ms|s)(?![\w/])"  # a time
    r"|\s?(?P<rate>GB/s)"  # a throughput
    r"|\s?(?:x|\u00d7)(?![\w.])(?!\s*\d)"  # a ratio (not a size such as 16 x 100,000)
    r"|\s+times\b"  # a ratio in words
    r"|\s?%"  # a percentage
    r"|\s+(?:of|times)\s+(?:the|its)\s+(?:\w+\s+)?tolerance)"  # a fraction of a tolerance
)
#: a decimal number, with its power of ten if written in scientific notation (``9.2e-4``)
DECIMAL = re.compile(rf"(?<![\w.,])(?P<mantissa>{NUMBER})(?:e(?P<power>[+-]?\d+))?")
MARKER = re.compile(r"^\s*(?:%|<!--)\s*(?P<kind>figures|illustration|not measured):\s*(?P<what>.*?)\s*(?:-->)?\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})")
REQUIRED = ("date", "commit", "command", "cpu")
#: every stored result: li bench's, and those of benchmarks/recording.py
STORED = sorted([DOCS / "benchmarks.json", *(DOCS / "results").glob("*.json")])


def prose(text: str) -> str:
    """``text`` without fenced blocks (each line blanked), display math,
    inline code and inline math; line count kept."""
    lines, closing = [], None
    for line in text.splitlines():
        if closing is not None:
            if line.strip() == closing:
                closing = None
            lines.append("")
            continue
        fence = FENCE.match(line)
        if fence:
            closing = fence.group(1)
            lines.append("")
            continue
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\$\$.*?\$\$", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    return re.sub(r"\$[^$\n]+\$", " ", text)


def blocks(text: str) -> Iterator[tuple[int, re.Match[str] | None, str]]:
    """(first line, marker or None, text) of every block of the page's prose."""
    lines = prose(text).splitlines()
    start = 0
    while start < len(lines):
        if not lines[start].strip():
            start += 1
            continue
        end = start
        while end < len(lines) and lines[end].strip():
            end += 1
        body = lines[start:end]
        marker = MARKER.match(body[0])
        if marker:
            body = body[1:]
        text = "\n".join(line for line in body if not line.lstrip().startswith(("%", "<!--")))
        yield start + 1, marker, text
        start = end


def quoted(text: str) -> Iterator[tuple[str, float, int, float]]:
    """(as written, value, decimals, scale) of every figure in ``text``."""
    for match in FIGURE.finditer(text):
        scale = SCALE[match["unit"]] if match["unit"] else 1.0
        for number in (match["low"], match["value"]):
            if number:
                yield match.group(), float(number.replace(",", "")), _decimals(number), scale


def decimals_in(text: str) -> Iterator[tuple[str, float, int, float]]:
    """(as written, mantissa, decimals, power of ten) of every decimal number in ``text``."""
    for match in DECIMAL.finditer(text):
        mantissa = match["mantissa"]
        if "." in mantissa:
            power = 10.0 ** int(match["power"]) if match["power"] else 1.0
            yield match.group(), float(mantissa.replace(",", "")), _decimals(mantissa), power


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def stored_numbers(report: object) -> Iterator[float]:
    if isinstance(report, bool):
        return
    if isinstance(report, (int, float)):
        yield float(report)
    elif isinstance(report, dict):
        for value in report.values():
            yield from stored_numbers(value)
    elif isinstance(report, list):
        for value in report:
            yield from stored_numbers(value)


def traced(value: float, places: int, scale: float, numbers: list[float]) -> bool:
    """Some stored number, in the quoted unit, rounds to ``value`` at ``places`` decimals."""
    half = 0.5 * 10.0**-places * (1 + 1e-9)
    return any(math.isfinite(x) and abs(x / scale - value) <= half for x in numbers)


def load(page: Path, names: str, home: Path) -> tuple[list[float], list[str]]:
    """The numbers of the files a marker names, and what is wrong with them."""
    numbers: list[float] = []
    problems = []
    for name in names.replace(",", " ").split():
        path = (page.parent / name).resolve()
        if not path.is_file():
            problems.append(f"{name}: no such file")
            continue
        if home not in path.parents:
            problems.append(f"{name}: a stored result lives under {home.name}/")
        report = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in REQUIRED if not report.get("machine", {}).get(key)]
        if missing:
            problems.append(f"{name}: machine lacks {', '.join(missing)}")
        numbers += list(stored_numbers(report))
    return numbers, problems


def check_page(page: Path, home: Path = DOCS) -> list[str]:
    """Every problem of one page, as ``path:line: what``; stored results
    must lie under ``home``."""
    found = []
    where = page.relative_to(ROOT) if ROOT in page.parents else page
    for line, marker, text in blocks(page.read_text(encoding="utf-8")):
        if marker is None:
            unmarked = dict.fromkeys(" ".join(q.split()) for q, *_ in quoted(text))
            found += [f"{where}:{line}: '{q}' is quoted without a marker" for q in unmarked]
        elif marker["kind"] != "figures":
            if not marker["what"]:
                found.append(f"{where}:{line}: an '{marker['kind']}' marker gives no reason")
        else:
            numbers, problems = load(page, marker["what"], home)
            found += [f"{where}:{line}: {problem}" for problem in problems]
            if problems:
                continue
            for written, value, places, scale in quoted(text):
                if not traced(value, places, scale, numbers):
                    found.append(f"{where}:{line}: '{written}' is in none of {marker['what']}")
            for written, value, places, power in decimals_in(text):
                scales = [power] if power != 1.0 else [1.0, *SCALE.values()]
                if not any(traced(value, places, s, numbers) for s in scales):
                    found.append(f"{where}:{line}: '{written}' is in none of {marker['what']}")
    return found


def test_every_quoted_figure_is_stored_or_marked_as_an_illustration():
    problems = [problem for page in PAGES for problem in check_page(page)]
    assert not problems, (
        "figures that trace to no stored result; rerun the script and quote its JSON with "
        "'% figures: FILE' above the block, or mark it '% illustration: REASON' (CONTRIBUTING.md):\n"
        + "\n".join(problems)
    )


def stale(path: Path) -> list[str]:
    """Why the stored result at ``path`` measured other code paths than the
    backends take now (none if it did not), each with the command that refreshes it."""
    report = json.loads(path.read_text(encoding="utf-8"))
    where = path.relative_to(ROOT) if ROOT in path.parents else path
    refresh = f"refresh it with `{report['machine'].get('command')}` (it stores {where})"
    if not report.get("paths"):
        return [f"{where} records no paths (what li backends says each backend ran); {refresh}"]
    return [
        f"{where}: {name} ran '{then}', now it runs '{now}'; {refresh}"
        for name, (then, now) in changed_paths(report["paths"]).items()
    ]


def test_every_stored_result_measured_the_paths_the_backends_take_now():
    problems = [problem for path in STORED for problem in stale(path)]
    assert not problems, "stored results measured other code than runs now:\n" + "\n".join(problems)


def test_a_result_recorded_with_the_compiled_loops_off_is_stale(tmp_path, monkeypatch):
    compiled = pytest.importorskip("li_backends.compiled")
    if compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    with monkeypatch.context() as off:
        off.setattr(compiled, "ENABLED", False)
        recorded = backend_paths(["numpy", "dask"])
    report = {"machine": {"command": "python benchmarks/bench_x.py"}, "paths": recorded}
    (tmp_path / "x.json").write_text(json.dumps(report), encoding="utf-8")
    problems = stale(tmp_path / "x.json")
    assert len(problems) == 1, problems  # numpy's loops changed; dask still runs NumPy blocks on numpy
    assert "numpy ran 'float32 and float64 scans: loops of array operations" in problems[0]
    assert "refresh it with `python benchmarks/bench_x.py`" in problems[0]


def test_a_path_is_the_note_without_machine_details_or_install_hints():
    note = 'on CUDA: torch\'s loop (no device (driver)); for the kernels: pip install "a>=1" (the x extra); x: compiled loops (numba 0.6, 2 threads)'
    assert path_of(note) == "on CUDA: torch's loop; x: compiled loops"


def test_a_result_without_paths_is_stale(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"machine": {"command": "li bench --json"}}), encoding="utf-8")
    assert "records no paths" in stale(tmp_path / "x.json")[0]


def test_every_stored_result_says_when_where_and_how():
    reports = STORED
    assert len(reports) >= 3, reports
    for path in reports:
        machine = json.loads(path.read_text(encoding="utf-8"))["machine"]
        assert all(machine.get(key) for key in REQUIRED), f"{path.name}: {machine}"


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A page folder with one stored result: 12.1 ms, 3.5 and 0.45."""
    report = {
        "machine": {"date": "2026-01-01 00:00 UTC", "commit": "abc1234", "command": "python x.py", "cpu": "CPU"},
        "figures": {"rescan": 0.012134, "ratio": 3.46, "accuracy": 0.449},
    }
    (tmp_path / "r.json").write_text(json.dumps(report), encoding="utf-8")
    return tmp_path


def check(folder: Path, text: str) -> list[str]:
    path = folder / "page.md"
    path.write_text(text, encoding="utf-8")
    return check_page(path, home=folder)


@pytest.mark.parametrize(
    "text",
    [
        "Takes 12.1 ms.\n",  # a time, unmarked
        "It is 3.5x faster.\n",  # a ratio
        "It is 4 times faster.\n",
        "NumPy is 0.45 of the tolerance.\n",
        "It takes 245 to 326 ms.\n",
        "% figures: r.json\nTakes 12.2 ms.\n",  # marked, but not what is stored
        "% figures: r.json\nThe loop 0.46 and 0.3.\n",  # decimals in a figures block
        "% figures: r.json\nFrom 3 to 12.1 ms.\n",  # the low end of a range
        "% figures: missing.json\nTakes 12.1 ms.\n",
        "% illustration:\nTakes 12.1 ms.\n",  # no reason
        "% not measured:\nTakes 12.1 ms.\n",
        "% figures: r.json\nAn error of 3.5e-9.\n",  # 3.5 is stored, 3.5e-9 is not
        "| a | b |\n|---|---|\n| x | 12.1 ms |\n",  # a table
    ],
)
def test_the_check_finds_untraced_figures(stored, text):
    assert check(stored, text)


@pytest.mark.parametrize(
    "text",
    [
        "% figures: r.json\nTakes 12.1 ms, 3.5x less; 0.45 of the tolerance.\n",
        "% figures: r.json\n| a | b |\n|---|---|\n| x | 12 ms |\n",
        "<!-- figures: r.json -->\nTakes 12.1 ms.\n",
        "% figures: r.json\nAn error of 1.2e-2 (0.45).\n",  # scientific notation
        "% not measured: the default of a setting\nThe default is 10 s.\n",
        "% illustration: a design that was removed\nIt was 2.9 times outside.\n",
        "Sizes such as 16 x 100,000 or 16 \u00d7 1024 are no figures.\n",
        "The time `0.5 s` in code, $0.5\\,s$ in math.\n\n```python\nsleep(3 s)\n```\n",
        "Steps of 1000 and rates of 1e-4.\n",
    ],
)
def test_the_check_accepts_traced_figures_and_plain_text(stored, text):
    assert check(stored, text) == []


def test_a_stored_result_must_say_when_where_and_how(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"machine": {"date": "today"}, "figures": {"t": 0.0121}}))
    problems = check(tmp_path, "% figures: r.json\nTakes 12.1 ms.\n")
    assert problems and "lacks commit, command, cpu" in problems[0]


def test_recording_stores_the_paths_and_keeps_its_call(tmp_path, monkeypatch):
    """benchmarks/recording.py's write_report, called as the scripts of
    other pages call it (positional, no backends), records every available
    backend's path; with ``backends`` only theirs."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    recording = pytest.importorskip("recording")
    written = recording.write_report("x", {"repeats": 1}, {"t": 0.5}, {}, str(tmp_path / "x.json"))
    report = json.loads(written.read_text(encoding="utf-8"))
    assert report["paths"] == backend_paths() and report["figures"] == {"t": 0.5}
    assert stale(written) == []
    only = recording.write_report("x", {}, {}, {}, str(tmp_path / "y.json"), backends=["numpy"])
    assert list(json.loads(only.read_text(encoding="utf-8"))["paths"]) == ["numpy"]
