"""The documentation builds with warnings as errors, and its examples pass.

Two Sphinx builds of ``docs/`` sharing one doctree cache, exactly what CI
runs (see docs/conf.py):

    python -m sphinx -W --keep-going -b html    docs docs/_build/html
    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

Skipped, with the reason, when the ``docs`` extra (sphinx, furo, myst-parser)
is not installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import li_core

for module in ("sphinx", "furo", "myst_parser"):
    pytest.importorskip(module, reason=f'{module} is not installed: pip install "li-neurons[docs]"')

DOCS = Path(__file__).resolve().parent.parent / "docs"


def sphinx(builder: str, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, "-d", str(doctrees)]
    return subprocess.run([*command, str(DOCS), str(out)], capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The HTML build (run once for this module)."""
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
    assert all(f"<p>{row['workload']}</p>" in bench_page for row in timed)
    assert "data:image/png;base64," in bench_page or "needs matplotlib" in bench_page
