"""``li demo``'s Zarr store never costs a user's data: what is refused, what
is replaced, and what an interrupted run leaves (li_core.demo.simulate_into_store)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import li_core
from li_core import cli, demo
from li_core.testing.tolerances import assert_matches

da = pytest.importorskip("dask.array", reason="the demo store needs li-neurons[dask]")
pytest.importorskip("zarr", reason="the demo store needs li-neurons[dask]")
pytest.importorskip("tqdm", reason="the demo store needs li-neurons[dask]")

SIZES = {"neurons": 20, "inputs": 10, "steps": 300, "progress": False}


def expected_voltages(seed: int) -> np.ndarray:
    spikes, weights = demo.make_inputs(SIZES["neurons"], SIZES["inputs"], SIZES["steps"], seed=seed)
    return li_core.li_scan(spikes, None, weights)[0]


def stored(path: Path) -> np.ndarray:
    return np.asarray(da.from_zarr(str(path)))


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its contents."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working directory two levels down, with a user's files around it."""
    work = tmp_path / "project" / "run"
    work.mkdir(parents=True)
    for folder in (tmp_path, tmp_path / "project", work):
        (folder / "notes.txt").write_text(f"notes in {folder.name}")
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("store", [".", "..", "", "../..", "HOME", "CWD"])
def test_the_working_directory_its_ancestors_and_home_are_refused_even_with_overwrite(workdir, store, monkeypatch):
    monkeypatch.setenv("HOME", str(workdir.parent))  # Path.home() reads HOME
    store = {"HOME": str(workdir.parent), "CWD": str(workdir)}.get(store, store)
    before = tree(workdir.parents[1])
    with pytest.raises(ValueError, match="store") as info:
        demo.simulate_into_store(store, overwrite=True, **SIZES)
    assert any(words in str(info.value) for words in ("working directory", "home directory", "empty"))
    assert tree(workdir.parents[1]) == before, "a refused store changed files"


def test_a_foreign_directory_is_refused_and_kept(workdir):
    results = workdir / "results"
    results.mkdir()
    (results / "mine.txt").write_text("a user's results")
    with pytest.raises(ValueError, match=r"results.*not a demo store.*overwrite=True"):
        demo.simulate_into_store(results, **SIZES)
    assert tree(results) == {"mine.txt": b"a user's results"}


def test_a_foreign_zarr_array_is_refused_and_kept(workdir):
    other = workdir / "other.zarr"
    da.ones((4, 3), chunks=2).to_zarr(str(other))
    before = tree(other)
    with pytest.raises(ValueError, match="not a demo store"):
        demo.simulate_into_store(other, **SIZES)
    assert tree(other) == before


def test_overwrite_replaces_a_foreign_path(workdir):
    results = workdir / "results"
    results.mkdir()
    (results / "mine.txt").write_text("old")
    demo.simulate_into_store(results, overwrite=True, seed=2, **SIZES)
    assert_matches(stored(results), expected_voltages(2), "float32", "seed 2")
    assert not (results / "mine.txt").exists()


def test_a_previous_demo_store_is_replaced(workdir):
    """Replaced if it exists: the second run's numbers, marked complete, and
    no temporary sibling left behind."""
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    assert_matches(stored(path), expected_voltages(1), "float32", "seed 1")
    result = demo.simulate_into_store(path, seed=2, **SIZES)
    assert_matches(stored(path), expected_voltages(2), "float32", "seed 2")
    assert_matches(np.asarray(result.voltages), expected_voltages(2), "float32", "seed 2")
    assert demo.store_mark(path)["complete"] is True
    assert demo.store_mark(path)["seed"] == 2
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]


def test_an_interrupted_run_keeps_the_previous_store_and_marks_its_own_incomplete(workdir, monkeypatch):
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    marks = []

    def interrupt(block):
        """Stands for Ctrl-C while the blocks are being written; records the
        mark of the store being written."""
        (partial,) = [p for p in workdir.iterdir() if p.name.endswith(".li-demo-partial")]
        marks.append(demo.store_mark(partial / "store"))
        raise KeyboardInterrupt

    scan = li_core.li_scan
    monkeypatch.setattr(
        demo,
        "li_scan",
        lambda *a, **k: (scan(*a, **k)[0].map_blocks(interrupt, meta=np.empty((0, 0), np.float32)), None),
    )
    with pytest.raises(KeyboardInterrupt):
        demo.simulate_into_store(path, seed=2, **SIZES)
    assert marks and marks[0]["complete"] is False  # a reader can tell a partial store
    assert tree(path) == before, "the previous store was touched"
    assert demo.store_mark(path)["complete"] is True
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]  # the partial store is removed


def test_store_mark_of_what_is_not_a_demo_store(workdir):
    assert demo.store_mark(workdir / "missing") is None
    assert demo.store_mark(workdir / "notes.txt") is None
    assert demo.store_mark(workdir) is None


# -- through the command line ----------------------------------------------------------------


def li(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def never(*args, **kwargs):
    raise AssertionError("the simulation ran although the arguments were refused")


@pytest.mark.parametrize("name", ["notes.txt", "results"])
def test_li_demo_refuses_an_existing_file_or_foreign_directory_before_simulating(workdir, capsys, monkeypatch, name):
    (workdir / "results").mkdir()
    monkeypatch.setattr(demo, "simulate_into_store", never)
    status, _, err = li(capsys, "demo", "--backend", "dask", "--store", name, "-o", "d.png")
    assert status == 2
    assert err.count("\n") == 1 and err.startswith(f"li demo: --store '{name}' exists") and "--overwrite" in err
    assert (workdir / "notes.txt").read_text() == "notes in run"


def test_li_demo_refuses_the_working_directory(workdir, capsys, monkeypatch):
    monkeypatch.setattr(demo, "simulate_into_store", never)
    status, _, err = li(capsys, "demo", "--backend", "dask", "--store", ".", "--overwrite")
    assert status == 2 and "working directory" in err and err.count("\n") == 1
    assert (workdir / "notes.txt").exists()


def test_li_demo_overwrite_replaces_a_foreign_directory(workdir, capsys):
    (workdir / "results").mkdir()
    arguments = ["demo", "--backend", "dask", "--store", "results", "--neurons", "8", "--steps", "50", "-o", "d.png"]
    status, out, err = li(capsys, *arguments, "--overwrite")
    assert status == 0, err
    assert "into the Zarr store results" in out and demo.store_mark(workdir / "results")["complete"] is True
