"""Train a leaky-integrator readout on real data, export it to NIR, run it anywhere.

scikit-learn's bundled 8x8 digits (no download) are encoded as Poisson spike
trains over T = 100 steps of 1 ms, projected through trainable weights onto
10 leaky integrators (``li_scan`` on the ``torch`` backend) and classified by
the largest voltage each neuron reaches. The trained readout is then written
to a NIR file, read back with ``li_core.nir.from_nir`` and run on every array
library installed here; every library must predict the same digit for every
test image, with voltages within the contract's tolerance.

    python examples/digits/train.py                 # 20 epochs, then the NIR round trip
    python examples/digits/train.py --epochs 5      # faster
    python examples/digits/train.py --no-norse      # skip the timing of Norse's LILinearCell

With Norse installed, the same training is also run with Norse's
``LILinearCell`` stepped over time, and the speed-up is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from li_core import LIParameters, li_scan
from li_core.testing.tolerances import RTOL, error_ratio

STEPS = 100  # time steps per image
DT = 1e-3  # seconds per step
MAX_RATE = 500.0  # spikes per second of a white (16) pixel: a 0.5 chance per step
P = LIParameters()  # tau_syn = 5 ms, tau_mem = 10 ms


def load_digits_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images scaled to [0, 1] and labels, split 75/25 with every digit in both parts."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    return train_test_split(images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)


def poisson_spikes(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[T, n, 64]`` spike trains: pixel intensity times ``MAX_RATE * DT`` is
    each step's spike probability."""
    chance = images * (MAX_RATE * DT)
    return (rng.random((STEPS, *images.shape), dtype=np.float32) < chance).astype(np.float32)


def decision(voltages: Any) -> Any:
    """Each neuron's largest voltage over time ``[n, 10]``, the class scores."""
    return voltages.max(0).values if isinstance(voltages, torch.Tensor) else voltages.max(0)


def train(
    spikes: torch.Tensor,
    labels: torch.Tensor,
    forward: Any,
    weights: torch.nn.Parameter,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    learning_rate: float = 0.05,
) -> float:
    """Adam on the cross-entropy of the class scores; returns the seconds taken."""
    optimizer = torch.optim.Adam([weights], lr=learning_rate)
    order = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(labels.shape[0], generator=order).split(batch_size):
            loss = torch.nn.functional.cross_entropy(decision(forward(spikes[:, batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def initial_weights(seed: int) -> torch.Tensor:
    return torch.randn(10, 64, generator=torch.Generator().manual_seed(seed)) / 8.0  # N(0, 1/64)


def norse_forward(cell: Any) -> Any:
    """Norse's way: its ``LILinearCell`` stepped over time in Python."""

    def forward(spikes: torch.Tensor) -> torch.Tensor:
        state, voltages = None, []
        for x in spikes:
            v, state = cell(x, state)
            voltages.append(v)
        return torch.stack(voltages)

    return forward


def _libraries() -> dict[str, Any]:
    """``name -> (to_array(numpy_array), to_numpy(array))`` for every library here."""
    libraries: dict[str, Any] = {
        "numpy float64": (lambda a: a.astype(np.float64), np.asarray),
        "numpy float32": (lambda a: a, np.asarray),
        "torch float32": (torch.from_numpy, lambda x: x.numpy()),
    }
    if importlib.util.find_spec("array_api_strict"):
        import array_api_strict

        for dtype in ("float64", "float32"):
            libraries[f"array_api {dtype}"] = (
                lambda a, dtype=dtype: array_api_strict.asarray(a.astype(dtype)),
                np.from_dlpack,
            )
    from li_core import list_backends

    available = {info.name for info in list_backends() if info.available}
    if "jax" in available:
        import jax.numpy as jnp

        libraries["jax float32"] = (jnp.asarray, np.asarray)
    if "cupy" in available:
        import cupy

        libraries["cupy float32"] = (cupy.asarray, cupy.asnumpy)
    return libraries


def run_everywhere(nir_file: Path, spikes: np.ndarray, trained_scores: np.ndarray) -> dict[str, dict[str, Any]]:
    """The NIR model on every library: its predictions and voltages against
    the float64 NumPy run (the yardstick) and the trained torch model."""
    from li_core.nir import from_nir

    model = from_nir(nir_file)
    reference = None
    results = {}
    for name, (to_array, to_numpy) in _libraries().items():
        start = time.perf_counter()
        voltages = to_numpy(model(to_array(spikes))[0])
        seconds = time.perf_counter() - start
        if reference is None:
            reference = voltages  # numpy float64 comes first
        dtype = name.rsplit(" ", 1)[1]
        results[name] = {
            "same_predictions": int(np.sum(decision(voltages).argmax(1) == trained_scores.argmax(1))),
            "error_over_tolerance": error_ratio(voltages, reference, dtype),
            "rtol": RTOL[dtype],
            "seconds": seconds,
        }
    return results


def main(
    epochs: int = 20, seed: int = 0, compare_norse: bool = True, verbose: bool = True, threads: int = 1
) -> dict[str, Any]:
    """Train, evaluate, export, reload and run everywhere; returns the numbers.

    ``threads``: PyTorch's CPU threads. The tensors here are small, so one
    thread is as fast as several, and much faster on a busy machine (threads
    that wait for each other's share of a tiny matrix product).
    """
    from li_core.nir import to_nir

    say = print if verbose else (lambda *args, **kwargs: None)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_images, test_images, train_labels, test_labels = load_digits_split(seed)
    rng = np.random.default_rng(seed)
    train_spikes = torch.from_numpy(poisson_spikes(train_images, rng))
    test_spikes = poisson_spikes(test_images, rng)
    labels = torch.from_numpy(train_labels)

    weights = torch.nn.Parameter(initial_weights(seed))

    def forward(spikes: torch.Tensor) -> torch.Tensor:
        return li_scan(spikes, None, weights, P, DT, backend="torch")[0]

    seconds = train(train_spikes, labels, forward, weights, epochs=epochs, seed=seed)
    with torch.no_grad():
        trained_scores = decision(forward(torch.from_numpy(test_spikes))).numpy()
    accuracy = float(np.mean(trained_scores.argmax(1) == test_labels))
    say(
        f"digits: {len(train_labels)} training and {len(test_labels)} test images, "
        f"T = {STEPS} steps of {DT * 1e3:g} ms, {threads} PyTorch thread(s)"
    )
    say(f"li-neurons (li_scan, torch backend): {epochs} epochs in {seconds:.1f} s, test accuracy {accuracy:.1%}")
    results: dict[str, Any] = {"accuracy": accuracy, "train_seconds": seconds, "epochs": epochs}

    if compare_norse and importlib.util.find_spec("norse"):
        from norse.torch import LILinearCell

        cell = LILinearCell(64, 10)
        cell.input_weights.data = initial_weights(seed)
        norse_seconds = train(train_spikes, labels, norse_forward(cell), cell.input_weights, epochs=epochs, seed=seed)
        with torch.no_grad():
            norse_scores = decision(norse_forward(cell)(torch.from_numpy(test_spikes))).numpy()
        norse_accuracy = float(np.mean(norse_scores.argmax(1) == test_labels))
        say(
            f"Norse (LILinearCell over time):     {epochs} epochs in {norse_seconds:.1f} s, test accuracy {norse_accuracy:.1%}"
        )
        say(f"speed-up over Norse: {norse_seconds / seconds:.1f}x")
        results.update(norse_seconds=norse_seconds, norse_accuracy=norse_accuracy)

    with tempfile.TemporaryDirectory() as folder:
        import nir

        nir_file = Path(folder) / "digits-readout.nir"
        nir.write(nir_file, to_nir(weights.detach(), P, DT))
        results["backends"] = run_everywhere(nir_file, test_spikes, trained_scores)
    say(f"\nthe readout exported to NIR, read back with from_nir and run on {len(test_labels)} test images:")
    say(f"{'library':<18} {'same digit as trained':>22} {'max error / rtol':>17} {'seconds':>8}")
    for name, row in results["backends"].items():
        same = f"{row['same_predictions']}/{len(test_labels)}"
        say(f"{name:<18} {same:>22} {row['error_over_tolerance']:>17.3f} {row['seconds']:>8.3f}")
    say("(error / rtol: the largest deviation from the float64 NumPy voltages in units of the contract's tolerance)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1)")
    parser.add_argument("--no-norse", action="store_true", help="skip the timing of Norse's LILinearCell")
    arguments = parser.parse_args()
    main(arguments.epochs, arguments.seed, compare_norse=not arguments.no_norse, threads=arguments.threads)
