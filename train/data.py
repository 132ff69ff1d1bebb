"""MNIST loading: the four IDX files from a local folder, or TensorFlow Datasets.

Both sources give the same arrays (uint8 images ``(N, 28, 28, 1)``, int32 labels
``(N,)``) and pass the same validation before anything reaches a device.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SIZE = 28
NUM_CLASSES = 10
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"

# Standard file names of the MNIST distribution, by split.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DataError(ValueError):
    """A data file or array that is missing or does not hold valid MNIST."""


class MNIST(NamedTuple):
    """The MNIST splits as host arrays.

    Attributes:
      train_images: uint8 ``(N_train, 28, 28, 1)``, 0 is background.
      train_labels: int32 ``(N_train,)`` in ``0..9``.
      test_images: uint8 ``(N_test, 28, 28, 1)``.
      test_labels: int32 ``(N_test,)`` in ``0..9``.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _read_bytes(path: Path) -> bytes:
    """Returns the file's bytes, gunzipped when the name ends in ``.gz`` or the
    bytes start with gzip's magic number (an IDX file starts with two zeros)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror}).") from err
    if path.suffix != ".gz" and not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: truncated or corrupt gzip data ({err}); expected a complete "
            "gzip stream. Download the file again or replace it with the raw IDX file."
        ) from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file, raw or gzip-compressed (see ``_read_bytes``).

    Args:
      path: the file to read.

    Returns:
      An array with the file's shape and element type (native byte order).

    Raises:
      DataError: the file is missing, unreadable, not IDX, or its header's
        dimensions do not match the payload's length.
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Decodes IDX bytes read from ``path`` (named in errors)."""
    if len(data) < 4:
        raise DataError(
            f"{path}: {len(data)} bytes, too short for an IDX header (at least 4)."
        )
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path}: magic number {magic} (0x{magic:08X}) is not IDX; expected two "
            "zero bytes, a type code in "
            f"{', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)} and a dimension count "
            "of at least 1."
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{path}: {len(data)} bytes, too short for the {ndim}-dimensional header "
            f"announced by magic number {magic} ({header_len} bytes)."
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = _IDX_DTYPES[type_code]
    # Python integers: a forged header's product must not wrap around to match.
    expected = math.prod(shape) * dtype.itemsize
    payload = len(data) - header_len
    if payload != expected:
        raise DataError(
            f"{path}: header announces shape {shape} ({expected} payload bytes) but "
            f"the file holds {payload} payload bytes; the file is truncated or its "
            "header count is wrong."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _find(data_dir: Path, name: str) -> Path:
    """Returns ``data_dir/name.gz`` or ``data_dir/name``, whichever exists."""
    for candidate in (data_dir / f"{name}.gz", data_dir / name):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"{data_dir}: missing MNIST file {name}.gz (or uncompressed {name}). Put the "
        "four standard MNIST IDX files there, or point --data-dir / MNIST_DIR at "
        "the folder that holds them."
    )


def _check_magic(path: Path, data: bytes, expected: int) -> None:
    """Raises DataError unless the file's magic number is ``expected``."""
    if len(data) < 4:
        raise DataError(
            f"{path}: {len(data)} bytes, too short for an IDX magic number (4 bytes)."
        )
    magic = int.from_bytes(data[:4], "big")
    if magic != expected:
        kind = "image" if expected == IMAGES_MAGIC else "label"
        raise DataError(
            f"{path}: magic number {magic} (0x{magic:08X}), expected {expected} "
            f"(0x{expected:08X}) for an MNIST {kind} file; check that the file "
            "is the one its name says."
        )


def validate_split(
    images: np.ndarray, labels: np.ndarray, *, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Checks one split and returns it as uint8 ``(N, 28, 28, 1)``, int32 ``(N,)``.

    Args:
      images: ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` pixel values in ``0..255``.
      labels: ``(N,)`` integer class indices.
      source: names the data in error messages (a file or dataset name).

    Raises:
      DataError: wrong image size, differing counts, or a label outside 0..9.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise DataError(
            f"{source}: images of shape {images.shape}, expected (N, {IMAGE_SIZE}, "
            f"{IMAGE_SIZE}) or (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1); MNIST images are "
            f"{IMAGE_SIZE}x{IMAGE_SIZE} grey-scale."
        )
    if images.dtype != np.uint8:
        raise DataError(
            f"{source}: images of dtype {images.dtype}, expected uint8 pixels 0..255."
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{source}: labels of shape {labels.shape} and dtype {labels.dtype}, "
            "expected a 1-D integer array."
        )
    if len(images) == 0:
        raise DataError(
            f"{source}: the split holds no examples; its files' headers count 0 "
            "images. Replace them with the full MNIST files."
        )
    if len(images) != len(labels):
        raise DataError(
            f"{source}: {len(images)} images but {len(labels)} labels; the two files "
            "of a split must hold the same number of examples."
        )
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise DataError(
            f"{source}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside "
            f"0..{NUM_CLASSES - 1} ({bad.size} such labels); the labels file is "
            "corrupt or is not MNIST."
        )
    return images, labels.astype(np.int32)


def _load_idx_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads and validates one split's image and label files."""
    images_name, labels_name = IDX_FILES[split]
    images_path, labels_path = (
        _find(data_dir, images_name),
        _find(data_dir, labels_name),
    )

    images_bytes = _read_bytes(images_path)
    _check_magic(images_path, images_bytes, IMAGES_MAGIC)
    images = _parse_idx(images_bytes, images_path)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{images_path}: images of {images.shape[1]}x{images.shape[2]} pixels, "
            f"expected {IMAGE_SIZE}x{IMAGE_SIZE}; this is not MNIST."
        )

    labels_bytes = _read_bytes(labels_path)
    _check_magic(labels_path, labels_bytes, LABELS_MAGIC)
    labels = _parse_idx(labels_bytes, labels_path)
    return validate_split(images, labels, source=f"{images_path} / {labels_path}")


def _load_idx(data_dir: Path) -> MNIST:
    if not data_dir.is_dir():
        found = "is a file" if data_dir.exists() else "does not exist"
        raise DataError(
            f"MNIST folder {data_dir} {found}; expected a folder holding the four "
            "MNIST IDX files. Fix --data-dir or MNIST_DIR, or leave both unset to "
            "download MNIST with TensorFlow Datasets."
        )
    train_images, train_labels = _load_idx_split(data_dir, "train")
    test_images, test_labels = _load_idx_split(data_dir, "test")
    return MNIST(train_images, train_labels, test_images, test_labels)


def _load_tfds() -> MNIST:
    # TensorFlow takes seconds to import, so only this path pays for it.
    import tensorflow_datasets as tfds

    splits = {}
    for split in ("train", "test"):
        # Batches concatenated on the host rather than ``batch_size=-1``, which
        # sizes its single batch from split metadata that mocked datasets lack.
        try:
            dataset = tfds.load("mnist", split=split, as_supervised=True)
            batches = list(tfds.as_numpy(dataset.batch(10_000)))
        except Exception as err:
            # Any failure here (no network, missing optional package, bad cache)
            # has the same remedy, so it is reported as one kind of error.
            raise DataError(
                f"TensorFlow Datasets could not provide mnist {split} "
                f"({type(err).__name__}: {err}); pass --data-dir or set MNIST_DIR "
                "to a folder holding the four MNIST IDX files."
            ) from err
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        splits[split] = validate_split(images, labels, source=f"tfds mnist {split}")
    return MNIST(*splits["train"], *splits["test"])


def resolve_data_dir(
    data_dir: str | os.PathLike | None,
) -> str | os.PathLike | None:
    """The IDX folder to read: ``data_dir`` when given, else ``$MNIST_DIR``;
    None when neither is set (the data then comes from TensorFlow Datasets)."""
    return data_dir or os.environ.get("MNIST_DIR") or None


def load_mnist(data_dir: str | os.PathLike | None = None) -> MNIST:
    """Loads and validates MNIST.

    Args:
      data_dir: a folder holding the four standard IDX files, gzip-compressed
        (``train-images-idx3-ubyte.gz``, ...) or raw. When None, the environment
        variable ``MNIST_DIR`` names the folder; when that is unset too, the data
        comes from TensorFlow Datasets (downloaded and cached on first use).

    Returns:
      The train and test splits; nothing in ``data_dir`` is written.

    Raises:
      DataError: a file is missing or does not hold valid MNIST.
    """
    data_dir = resolve_data_dir(data_dir)
    if data_dir is None:
        logger.info("Loading MNIST from TensorFlow Datasets")
        return _load_tfds()
    logger.info("Loading MNIST from %s", data_dir)
    return _load_idx(Path(data_dir))
