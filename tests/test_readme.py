"""The newcomer's path: the README's two commands are what CI runs, its
Python example and recipes run alone and do what they say, it links every
docs page by its path, and ``li`` alone helps."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from li_core import li_scan

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def two_commands() -> list[str]:
    """The command lines of the README's "Two commands" section."""
    section = README.read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "the Two commands section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_two_commands_demo_then_tests():
    demo, tests = two_commands()
    assert demo.endswith("li demo") and '".[plot]"' in demo  # the picture needs matplotlib
    assert tests.endswith("python -m pytest") and "test" in tests


def test_ci_runs_the_readmes_test_command_exactly():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert two_commands()[1] in ci_lines
    # ... and it is the last thing CI runs, so its exit status is CI's
    assert [line for line in ci_lines if line.strip() and not line.startswith("#")][-1] == two_commands()[1]


def test_li_without_arguments_prints_help_and_a_hint():
    done = subprocess.run([sys.executable, "-m", "li_core"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: li")
    assert "li demo" in done.stdout.splitlines()[-1]


def python_blocks() -> dict[str, str]:
    """The README's Python blocks by the title above them: the section's
    heading, or the bold title of a recipe."""
    text = README.read_text()
    found = {}
    for match in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        heading, bold = re.findall(r"^(?:## (.+)|\*\*(.+?)\*\*)", text[: match.start()], flags=re.M)[-1]
        found[heading or bold] = match.group(1)
    return found


def run_block(title: str, folder: Path, monkeypatch) -> dict:
    """Run one README block alone, as a reader pastes it into a fresh
    interpreter in ``folder``; its namespace."""
    monkeypatch.chdir(folder)
    namespace: dict = {}
    exec(compile(python_blocks()[title], str(README), "exec"), namespace)  # noqa: S102 - running the README's own example is the test
    return namespace


def test_readme_has_the_example_and_the_recipes():
    assert list(python_blocks()) == [
        "Example",
        "Training with torch",
        "Out of core with Dask, into Zarr",
        "To snnTorch through NIR",
    ]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    namespace = run_block("Example", tmp_path, monkeypatch)
    assert namespace["voltages"].shape == (1000, 32, 10)
    assert namespace["state"].v.shape == (32, 10)
    np.testing.assert_array_equal(namespace["state"].v, namespace["voltages"][-1])


def test_readme_training_recipe_learns(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    namespace = run_block("Training with torch", tmp_path, monkeypatch)
    losses = namespace["losses"]
    assert len(losses) == 20 and losses[-1] < 0.8 * losses[0], losses
    assert namespace["weights"].grad is not None and namespace["voltages"].shape == (200, 16, 3)


def test_readme_dask_recipe_stores_the_voltages_in_zarr(tmp_path, monkeypatch):
    pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    namespace = run_block("Out of core with Dask, into Zarr", tmp_path, monkeypatch)
    assert (tmp_path / "voltages.zarr").is_dir()
    stored = namespace["stored"]
    assert stored.shape == (10_000, 4, 256)
    in_memory, _ = li_scan(namespace["currents"].compute())
    np.testing.assert_allclose(stored.compute(), in_memory, rtol=1e-5, atol=1e-5)


def test_readme_nir_recipe_runs_the_same_numbers_in_snntorch(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("nir")
    pytest.importorskip("snntorch", reason="snnTorch is not installed (CI installs it)")
    namespace = run_block("To snnTorch through NIR", tmp_path, monkeypatch)
    expected = namespace["li_voltages"]
    assert expected.shape == (200, 3) and np.abs(expected).max() > 0.01
    np.testing.assert_allclose(namespace["snntorch_voltages"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_readme_links_docs_pages_by_their_path():
    text = README.read_text()
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)\)", text))
    assert all((ROOT / page).is_file() for page in linked), linked
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md") if page.name != "index.md"}
    assert pages <= linked, f"pages the README does not link: {sorted(pages - linked)}"


def test_readme_says_how_to_install_the_numba_extra_where_it_quotes_speed():
    section = README.read_text().split("## How fast", 1)[1].split("\n## ", 1)[0]
    assert '".[numba]"' in section
