"""Sphinx directives that generate the parts of the docs that must not be typed by hand.

``{li-backends}``
    The capabilities table of every registered backend, from
    ``li_core.list_backends()`` on the machine that builds the docs (the
    declared dtypes, devices and autograd are the backends' own; availability
    is this machine's).
``{li-cli-help} [COMMAND]``
    The ``--help`` text of ``li`` or of one of its subcommands.
``{li-bench-results} [PATH]``
    The table and bar chart of a ``li bench --json`` report (default: the
    ``li_bench_results`` config value, relative to the docs source folder),
    with the machine it was measured on.
``{li-results-table} PATH NAME``
    The table ``NAME`` stored by a script in ``benchmarks/`` in the JSON file
    ``PATH`` (relative to the docs source folder, e.g. ``results/blocked.json``),
    under a line that names the command, the machine, the date and the commit.
``{li-compare}``
    The ``li compare`` table, computed while the docs are built.
``{li-versions}``
    Every requirement of li-neurons and its extras (from the installed
    package's metadata) with the version installed where the docs are built.

All of them re-read their pages on every build, so they never go stale; under
the doctest builder they only leave a placeholder.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: the running builder's name, recorded at builder-inited
_builder: dict[str, str | None] = {"name": None}


def _generated_only_for_output(directive: SphinxDirective) -> list[nodes.Node] | None:
    """Placeholders under the doctest builder, which never shows generated
    tables (it shares the doctree cache with the HTML build, so the page is
    marked to be read again by the next build either way)."""
    directive.env.note_reread()
    if _builder["name"] == "doctest":
        return [nodes.paragraph(text="(generated when the documentation is built)")]
    return None


def _table(headers: list[str], rows: list[list[Any]]) -> nodes.table:
    table = nodes.table(classes=["li-generated"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for _ in headers:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    head += _row(headers)
    body = nodes.tbody()
    group += body
    for row in rows:
        body += _row(row)
    return table


def _row(cells: list[Any]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += cell if isinstance(cell, nodes.paragraph) else nodes.paragraph(text="" if cell is None else str(cell))
        row += entry
    return row


def _summary(backend: Any) -> nodes.paragraph:
    """The first line of the backend class's docstring (``literals`` kept)."""
    doc = (type(backend).__doc__ or "").strip()
    paragraph = nodes.paragraph()
    for k, part in enumerate(re.split(r"``(.+?)``", doc.splitlines()[0] if doc else "")):
        paragraph += nodes.literal(text=part) if k % 2 else nodes.Text(part)
    return paragraph


class BackendsTable(SphinxDirective):
    """The capabilities table from ``li_core.list_backends()``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import li_core
        from li_core.cli import BACKEND_COLUMNS, backend_row

        if (placeholder := _generated_only_for_output(self)) is not None:
            return placeholder
        infos = li_core.list_backends()
        rows = [
            [
                *backend_row(info),
                li_core.get_backend(info.name).install_hint() or "(always installed)",
                _summary(li_core.get_backend(info.name)),
            ]
            for info in infos
        ]
        headers = ["name", "available here", *BACKEND_COLUMNS[2:], "install", "implementation"]
        result: list[nodes.Node] = [_table(headers, rows)]
        missing = [info for info in infos if not info.available]
        if missing:
            items = nodes.bullet_list()
            for info in missing:
                item = nodes.list_item()
                paragraph = nodes.paragraph()
                paragraph += nodes.literal(text=info.name)
                paragraph += nodes.Text(f" was unavailable where these docs were built: {info.reason}")
                item += paragraph
                items += item
            result.append(items)
        return result


class CliHelp(SphinxDirective):
    """The ``--help`` output of ``li`` or ``li COMMAND``."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from li_core import cli

        if (placeholder := _generated_only_for_output(self)) is not None:
            return placeholder
        argv = [*self.arguments, "--help"]
        output = io.StringIO()
        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "90"
        try:
            with contextlib.redirect_stdout(output), contextlib.suppress(SystemExit):
                cli.main(argv)
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        text = output.getvalue().rstrip()
        block = nodes.literal_block(text, text, language="text")
        return [block]


class BenchResults(SphinxDirective):
    """The table (and chart) of a ``li bench --json`` report."""

    optional_arguments = 1
    has_content = False
    option_spec: ClassVar[dict] = {"no-chart": directives.flag}

    def run(self) -> list[nodes.Node]:
        from li_core import bench
        from li_core.bench.host import GOAL_HEADERS, HOST_HEADERS, goal_table, host_table

        if (placeholder := _generated_only_for_output(self)) is not None:
            return placeholder
        name = self.arguments[0] if self.arguments else self.config.li_bench_results
        path = Path(self.env.srcdir) / name
        self.env.note_dependency(str(path))
        report = json.loads(path.read_text(encoding="utf-8"))
        rows, notes = bench.result_table(report)
        result: list[nodes.Node] = [nodes.paragraph(text=f"Measured in {bench.describe_settings(report)}.")]
        result.append(_table(bench.RESULT_HEADERS, rows))
        host = host_table(report)
        if host:
            result.append(
                nodes.paragraph(
                    text="Host overhead, microseconds per call, beside the floor of any fused op written in Python "
                    "(one autograd.Function, one elementwise op each way):"
                )
            )
            result.append(_table(HOST_HEADERS, host))
        goals = goal_table(report)
        if goals:
            result.append(nodes.paragraph(text="Host goals, each call beside its floor, with its goal:"))
            result.append(_table(GOAL_HEADERS, goals))
        if notes:
            items = nodes.bullet_list()
            for note in notes:
                item = nodes.list_item()
                item += nodes.paragraph(text=note)
                items += item
            result.append(items)
        if "no-chart" not in self.options:
            result += self._chart(report, bench)
        return result

    def _chart(self, report: dict[str, Any], bench: Any) -> list[nodes.Node]:
        """The chart inline in the HTML (nothing is written to the source tree)."""
        try:
            import matplotlib  # noqa: F401 - imported only to check that it is installed
        except ImportError:
            return [nodes.paragraph(text="(The chart needs matplotlib, which was not installed.)")]
        png = io.BytesIO()
        bench.plot_results(report, png)
        data = base64.b64encode(png.getvalue()).decode("ascii")
        html = f'<img src="data:image/png;base64,{data}" alt="bar chart of the benchmark results" style="width:100%">'
        return [nodes.raw("", html, format="html")]


def _with_literals(text: str) -> nodes.paragraph:
    """A paragraph of ``text`` whose single-backtick parts are code."""
    paragraph = nodes.paragraph()
    for k, part in enumerate(re.split(r"`(.+?)`", text)):
        paragraph += nodes.literal(text=part) if k % 2 else nodes.Text(part)
    return paragraph


class ResultsTable(SphinxDirective):
    """One table of a report stored by ``benchmarks/recording.py``."""

    required_arguments = 2
    has_content = False

    def run(self) -> list[nodes.Node]:
        path = Path(self.env.srcdir) / self.arguments[0]
        self.env.note_dependency(str(path))
        report = json.loads(path.read_text(encoding="utf-8"))
        stored = report["tables"][self.arguments[1]]
        machine = report["machine"]
        where = (
            f"Measured with `{machine['command']}` on {machine['cpu']} ({machine['cpu_count']} cores), "
            f"{machine['date']}, commit {machine['commit']}; stored in `docs/{self.arguments[0]}`."
        )
        rows = [[_with_literals(cell) for cell in row] for row in stored["rows"]]
        return [_with_literals(where), _table(stored["headers"], rows)]


class CompareTable(SphinxDirective):
    """``li compare`` run while the docs are built: every registered backend
    and declared dtype against the float64 reference."""

    has_content = False
    option_spec: ClassVar[dict] = {"steps": directives.positive_int}

    def run(self) -> list[nodes.Node]:
        from li_core.testing.compare import compare
        from li_core.testing.tolerances import RTOL

        if (placeholder := _generated_only_for_output(self)) is not None:
            return placeholder
        rows = []
        for r in compare(steps=self.options.get("steps", 1000)):
            if r.skipped:
                rows.append(
                    [r.backend, r.dtype, r.device, r.case, "", "", RTOL.get(r.dtype, ""), "", f"skipped: {r.skipped}"]
                )
            else:
                verdict = "ok" if r.ok else "OUTSIDE TOLERANCE"
                rows.append(
                    [
                        r.backend,
                        r.dtype,
                        r.device,
                        r.case,
                        f"{r.max_abs:.3e}",
                        f"{r.max_rel:.3e}",
                        f"{RTOL[r.dtype]:g}",
                        f"{r.ratio:.3f}",
                        verdict,
                    ]
                )
        headers = [
            "backend",
            "dtype",
            "device",
            "case",
            "max abs error",
            "max rel error",
            "rtol",
            "error / tol",
            "result",
        ]
        return [_table(headers, rows)]


class VersionsTable(SphinxDirective):
    """The declared requirements beside the versions installed here."""

    has_content = False
    #: installed by CI (.ci/run) beside the extras, for the interop tests
    CI_ONLY: ClassVar[list[str]] = ["jax", "norse", "nirtorch", "snntorch"]

    def run(self) -> list[nodes.Node]:
        import platform
        from importlib import metadata

        required: dict[tuple[str, str], list[str]] = {}
        for line in metadata.requires("li-neurons") or []:
            spec, _, marker = line.partition(";")
            match = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*(.*)", spec)
            if match is None or match.group(1) == "li-neurons":
                continue
            extra = re.search(r'extra == "([^"]+)"', marker)
            required.setdefault((match.group(1), match.group(3) or "any"), []).append(
                extra.group(1) if extra else "(always)"
            )
        rows = [["Python", _requires_python(), "", platform.python_version()]]
        for (name, spec), extras in required.items():
            rows.append([name, spec, ", ".join(extras), _installed(metadata, name)])
        rows += [[name, "", "(installed by CI only)", _installed(metadata, name)] for name in self.CI_ONLY]
        return [_table(["distribution", "required", "extras", "installed here"], rows)]


def _installed(metadata: Any, name: str) -> str:
    try:
        return str(metadata.version(name))
    except metadata.PackageNotFoundError:
        return "not installed"


def _requires_python() -> str:
    from importlib import metadata

    return metadata.metadata("li-neurons").get("Requires-Python") or "any"


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("li_bench_results", "benchmarks.json", "env")
    app.connect("builder-inited", lambda app: _builder.update(name=app.builder.name))
    app.add_directive("li-backends", BackendsTable)
    app.add_directive("li-cli-help", CliHelp)
    app.add_directive("li-bench-results", BenchResults)
    app.add_directive("li-results-table", ResultsTable)
    app.add_directive("li-compare", CompareTable)
    app.add_directive("li-versions", VersionsTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
