"""Helpers shared by the trainer's tests: learnable fake digits, IDX files
written by hand, and a free local port for multi-process runs."""

import gzip
import socket
import struct
import sys
from pathlib import Path

import numpy as np

from train.data import MNIST

ROOT = Path(__file__).resolve().parent.parent

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def synthetic_mnist(
    num_train: int, num_test: int, seed: int = 0, noise: int = 120
) -> MNIST:
    """Learnable digits: a fixed random template per class plus pixel noise
    uniform in [-noise, noise]; larger noise makes the task harder."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 28, 28, 1))

    def split(n):
        labels = rng.integers(0, 10, size=n).astype(np.int32)
        pixels = templates[labels] + rng.integers(-noise, noise + 1, (n, 28, 28, 1))
        return np.clip(pixels, 0, 255).astype(np.uint8), labels

    return MNIST(*split(num_train), *split(num_test))


def write_idx(folder: Path, data: MNIST, *, compress: bool = True) -> None:
    """Writes the four MNIST files of ``data`` into ``folder``, by hand:
    gzip-compressed (``name.gz``) or raw."""
    folder.mkdir(parents=True, exist_ok=True)
    for field, name in IDX_NAMES.items():
        array = getattr(data, field)
        if array.ndim == 4:
            header = struct.pack(">IIII", 2051, len(array), 28, 28)
        else:
            header = struct.pack(">II", 2049, len(array))
        payload = header + array.astype(np.uint8).tobytes()
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)


def train_command(*args: str) -> list[str]:
    """``python -m train`` with ``args``, in this interpreter."""
    return [sys.executable, "-m", "train", *args]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
