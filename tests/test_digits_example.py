"""examples/digits/train.py, with fewer epochs: the trained leaky-integrator
readout classifies held-out digits, and its NIR export, read back with
``from_nir``, predicts the same digit on every test image on every installed
array library, with voltages within the contract's tolerance."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

for module, extra in (("torch", "torch"), ("sklearn", "test"), ("nir", "nir")):
    pytest.importorskip(module, reason=f'{module} is not installed: pip install "li-neurons[{extra}]"')

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits" / "train.py"


@pytest.fixture(scope="module")
def results():
    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example.main(epochs=5, seed=0, compare_norse=False, verbose=False)


def test_readout_reaches_ninety_percent(results):
    assert results["accuracy"] >= 0.9, f"test accuracy {results['accuracy']:.1%} after {results['epochs']} epochs"


def test_nir_export_runs_the_same_everywhere(results):
    backends = results["backends"]
    expected = {"numpy float64", "numpy float32", "torch float32"}
    if importlib.util.find_spec("array_api_strict"):
        expected |= {"array_api float64", "array_api float32"}
    assert expected <= set(backends)
    test_images = 450  # a quarter of scikit-learn's 1797 digits
    for name, row in backends.items():
        assert row["same_predictions"] == test_images, f"{name}: {row['same_predictions']}/{test_images} agree"
        assert row["error_over_tolerance"] <= 1.0, f"{name}: voltages off by {row['error_over_tolerance']:.2f} x rtol"
