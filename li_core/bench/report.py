"""The text of a :func:`li_core.bench.run` report: settings, table, notes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .host import GOAL_HEADERS, HOST_HEADERS, goal_table, host_table
from .peers import PEERS


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table with left-aligned columns."""
    text_rows = [[("" if cell is None else str(cell)) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[k]) for r in text_rows)) if text_rows else len(h) for k, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in text_rows]
    return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    """``0.0123`` as ``12.3 ms`` (three significant digits)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def describe_settings(report: dict[str, Any]) -> str:
    """One sentence on how a :func:`run` report was measured and where."""
    machine, settings = report["machine"], report["settings"]
    gpus = sorted({row["gpu"] for row in report["results"] if row.get("gpu")})
    budget = settings.get("max_seconds")
    return (
        f"{settings['dtype']}, median of up to {settings['repeats']} runs"
        f"{f' (about {budget:g} s at most per measurement)' if budget else ''}"
        f"{', quick sizes' if settings['quick'] else ''}; li-neurons {machine['li_neurons']} on {machine['cpu']} "
        f"({machine['cpu_count']} CPUs{', GPU ' + ', '.join(gpus) if gpus else ''}), {machine['platform']}, "
        f"Python {machine['python']}"
        + (f"; {machine['date']}" if machine.get("date") else "")
        + (f", commit {machine['commit']}" if machine.get("commit") else "")
        + (f", `{machine['command']}`" if machine.get("command") else "")
    )


#: the columns of :func:`result_table`
RESULT_HEADERS = [
    "backend", "device", "workload", "shape", "median", "IQR", "copy", "x copy", "loop", "speedup",
    "norse", "vs norse", "norse step", "vs step",
]  # fmt: skip


def _timed(row: dict[str, Any], prefix: str) -> str:
    """A yardstick's or peer's median, with its number of runs where that is
    fewer than ``li_scan``'s (its runs outlasted the time budget)."""
    runs = row.get(f"{prefix}repeats", row["repeats"])
    return format_seconds(row[f"{prefix}median_s"]) + (
        f" ({runs} run{'s' * (runs > 1)})" if runs < row["repeats"] else ""
    )


def _peer(row: dict[str, Any], prefix: str) -> list[str]:
    """The cells of one peer: its time and its time over ``li_scan``'s, or ``-``."""
    if not row.get(f"{prefix}median_s"):
        return ["-", "-"]
    speedup = row[f"speedup_over_{prefix.rstrip('_')}"]
    return [_timed(row, prefix), f"{speedup:.3g}x"]


def result_table(report: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """The rows (as text, under :data:`RESULT_HEADERS`) of a :func:`run`
    report's timed cases, and one note per skipped or failed case."""
    table, notes = [], []
    for row in report["results"]:
        if row["status"] != "ok":
            what = " ".join(part for part in (row["backend"], row["device"], row["workload"]) if part)
            notes.append(f"{row['status']}: {what}: {row['reason']}")
            continue
        if "host" in row:  # (its own table: li_core.bench.host.host_table)
            continue
        table.append(
            [
                row["backend"],
                f"{row['device']} ({row['gpu']})" if row.get("gpu") else row["device"],
                row["workload"],
                row["shape"],
                format_seconds(row["median_s"]),
                f"{format_seconds(row['q25_s'])} - {format_seconds(row['q75_s'])}",
                format_seconds(row["copy_median_s"]),
                f"{row['ratio_to_copy']:.3g}",
                _timed(row, "loop_") + ("*" if row.get("loop_scaled") else ""),
                f"{row['speedup_over_loop']:.3g}x",
                *(cell for prefix in PEERS for cell in _peer(row, prefix)),
            ]
        )
        for prefix, peer in PEERS.items():
            if row.get(f"{prefix}reason"):
                where = f"{row['backend']} {row['device']} {row['workload']}"
                notes.append(f"{prefix.rstrip('_')} not timed: {where}: {peer}: {row[f'{prefix}reason']}")
    return table, notes


def format_results(report: dict[str, Any]) -> str:
    """The human-readable tables of a :func:`run` report (the scan table,
    the host workload's two, those that have rows), then the skipped and
    failed cases with their reasons, then what the scan table's columns
    mean."""
    table, notes = result_table(report)
    host, goals = host_table(report), goal_table(report)
    sections = []
    if table:
        sections.append(format_table(RESULT_HEADERS, table))
    if host:
        sections.append(
            "host overhead (us per call; floor: one autograd.Function, one op each way; "
            "+ params: training with three [N] parameter tensors that require grad):\n"
            + format_table(HOST_HEADERS, host)
        )
    if goals:
        sections.append(
            "host goals (medians of interleaved runs; met: the ratio, or the difference, within the goal):\n"
            + format_table(GOAL_HEADERS, goals)
        )
    if not sections:
        sections.append("(nothing was timed)")
    if notes:
        sections.append("\n".join(notes))
    if table:
        scaled = {row["workload"]: row["loop_steps"] for row in report["results"] if row.get("loop_scaled")}
        legend = [
            "x copy: li_scan's time over copying its input once on the same device; "
            "speedup: the one-step-at-a-time loop's time (li_core.reference.scan) over li_scan's; "
            "norse, vs norse: Norse's LI module on the same torch input (feed-forward workloads, when Norse is "
            "installed) and its time over li_scan's; norse step, vs step: the same for Norse's own "
            "li_feed_forward_step in a Python loop over x.unbind(0). The module reads input_tensor[ts] step by "
            "step, so its backward grows with T^2. Every time is timed like li_scan's (one warm-up, medians); "
            "'(n runs)': repeated fewer times than li_scan, its runs took longer than the time budget.",
            *(
                f"*: the loop timed over the first {steps} steps of {name}, scaled to all."
                for name, steps in scaled.items()
            ),
        ]
        sections.append("\n".join(legend))
    return "\n\n".join([f"li bench: {describe_settings(report)}", *sections])
