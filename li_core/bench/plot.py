"""The bar chart of a :func:`li_core.bench.run` report (needs matplotlib)."""

from __future__ import annotations

import os
from typing import Any


def plot_results(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """A bar chart of a :func:`run` report, written to ``path`` (PNG, or any
    format matplotlib infers from the suffix): per workload, ``li_scan``'s
    median time on each backend and device next to the reference loop's,
    on a log scale, with the copy time as a tick. Needs matplotlib."""
    from matplotlib.figure import Figure

    rows = [r for r in report["results"] if r["status"] == "ok" and "host" not in r]
    present = {r["workload"] for r in rows}
    workloads = [w for w in report["settings"]["workloads"] if w in present]
    targets = list(dict.fromkeys(f"{r['backend']} ({r['device']})" for r in rows))
    figure = Figure(figsize=(max(6.0, 1.6 * len(workloads) * max(1, len(targets)) ** 0.5 + 2), 4.2))
    axes = figure.add_subplot()
    group = 0.8
    width = group / max(1, 2 * len(targets))
    colors = [f"C{k}" for k in range(10)]
    for k, target in enumerate(targets):
        fused, loop, copy, positions = [], [], [], []
        for g, workload in enumerate(workloads):
            match = [r for r in rows if r["workload"] == workload and f"{r['backend']} ({r['device']})" == target]
            if not match:
                continue
            r = match[0]
            positions.append(g - group / 2 + (2 * k + 0.5) * width)
            fused.append(r["median_s"] * 1e3)
            loop.append(r["loop_median_s"] * 1e3)
            copy.append(r["copy_median_s"] * 1e3)
        color = colors[k % len(colors)]
        axes.bar(positions, fused, width, color=color, label=f"{target}: li_scan")
        loop_positions = [p + width for p in positions]
        axes.bar(loop_positions, loop, width, color=color, alpha=0.35, hatch="//", label=f"{target}: step loop")
        label = "copy of the input" if k == 0 else None
        axes.scatter(positions, copy, marker="_", s=300, color="black", zorder=3, label=label)
    axes.set_xticks(range(len(workloads)), workloads)
    axes.set_yscale("log")
    axes.set_ylabel("median time (ms, log scale)")
    machine = report["machine"]
    title = f"li bench, {report['settings']['dtype']}: {machine['cpu']} ({machine['cpu_count']} CPUs)"
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
