"""Tests of the MNIST loader: the real IDX copy, every malformed input, TFDS mocks."""

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from train.data import DataError, load_mnist, read_idx

MNIST_DIR = os.environ.get("MNIST_DIR")
needs_mnist = pytest.mark.skipif(
    not MNIST_DIR, reason="MNIST_DIR is unset; point it at the offline MNIST folder"
)

# Published SHA-256 of the uncompressed files, from the data folder's README.
SHA256 = {
    "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Published class counts of MNIST, digits 0..9.
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def images_idx(images: np.ndarray, *, magic: int = 2051, count: int | None = None):
    """IDX bytes of uint8 images (N, rows, cols), written by hand."""
    n, rows, cols = images.shape
    header = struct.pack(">IIII", magic, n if count is None else count, rows, cols)
    return header + images.astype(np.uint8).tobytes()


def labels_idx(labels: np.ndarray, *, magic: int = 2049, count: int | None = None):
    """IDX bytes of uint8 labels (N,), written by hand."""
    header = struct.pack(">II", magic, len(labels) if count is None else count)
    return header + labels.astype(np.uint8).tobytes()


def small_split(n: int, seed: int, size: int = 28):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_dataset(folder: Path, *, compress: bool = True, **overrides: bytes):
    """Writes a valid 6-train/4-test dataset; ``overrides`` replace files' bytes."""
    train_images, train_labels = small_split(6, seed=0)
    test_images, test_labels = small_split(4, seed=1)
    files = {
        "train_images": images_idx(train_images),
        "train_labels": labels_idx(train_labels),
        "test_images": images_idx(test_images),
        "test_labels": labels_idx(test_labels),
    }
    files.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    for key, payload in files.items():
        if compress:
            (folder / f"{NAMES[key]}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / NAMES[key]).write_bytes(payload)
    return train_images, train_labels, test_images, test_labels


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def real_mnist():
    if not MNIST_DIR:
        pytest.skip("MNIST_DIR is unset; point it at the offline MNIST folder")
    return load_mnist(MNIST_DIR)


@needs_mnist
def test_real_split_sizes_are_60000_and_10000(real_mnist):
    assert real_mnist.train_images.shape == (60000, 28, 28, 1)
    assert real_mnist.train_labels.shape == (60000,)
    assert real_mnist.test_images.shape == (10000, 28, 28, 1)
    assert real_mnist.test_labels.shape == (10000,)


@needs_mnist
def test_real_dtypes_are_uint8_images_and_int32_labels(real_mnist):
    assert real_mnist.train_images.dtype == np.uint8
    assert real_mnist.test_images.dtype == np.uint8
    assert real_mnist.train_labels.dtype == np.int32
    assert real_mnist.test_labels.dtype == np.int32


@needs_mnist
def test_real_class_counts_match_published_counts(real_mnist):
    assert np.bincount(real_mnist.train_labels).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(real_mnist.test_labels).tolist() == TEST_CLASS_COUNTS


@needs_mnist
def test_real_pixels_span_0_to_255(real_mnist):
    for images in (real_mnist.train_images, real_mnist.test_images):
        assert images.min() == 0
        assert images.max() == 255


@needs_mnist
@pytest.mark.parametrize(
    ("split", "kind"),
    [("train", "images"), ("train", "labels"), ("test", "images"), ("test", "labels")],
)
def test_real_decoded_bytes_match_published_sha256(real_mnist, split, kind):
    array = getattr(real_mnist, f"{split}_{kind}")
    if kind == "images":
        raw = images_idx(array[..., 0])
    else:
        raw = labels_idx(array)
    assert hashlib.sha256(raw).hexdigest() == SHA256[f"{split}-{kind}"]


def test_small_gzip_dataset_round_trips(tmp_path):
    train_images, train_labels, test_images, test_labels = write_dataset(tmp_path)
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.train_images[..., 0], train_images)
    np.testing.assert_array_equal(data.train_labels, train_labels.astype(np.int32))
    np.testing.assert_array_equal(data.test_images[..., 0], test_images)
    np.testing.assert_array_equal(data.test_labels, test_labels.astype(np.int32))


def test_raw_files_load_like_gzip_files(tmp_path):
    write_dataset(tmp_path / "gz", compress=True)
    write_dataset(tmp_path / "raw", compress=False)
    for gz, raw in zip(
        load_mnist(tmp_path / "gz"), load_mnist(tmp_path / "raw"), strict=True
    ):
        np.testing.assert_array_equal(gz, raw)


def test_mnist_dir_env_is_used_when_no_folder_is_given(tmp_path, monkeypatch):
    train_images, *_ = write_dataset(tmp_path)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    np.testing.assert_array_equal(load_mnist().train_images[..., 0], train_images)


def test_read_idx_decodes_big_endian_int32(tmp_path):
    values = np.arange(-3, 9, dtype=np.int32).reshape(3, 4)
    path = tmp_path / "values.idx"
    path.write_bytes(
        struct.pack(">BBBBII", 0, 0, 0x0C, 2, 3, 4) + values.byteswap().tobytes()
    )
    np.testing.assert_array_equal(read_idx(path), values)


def test_missing_file_is_named(tmp_path):
    write_dataset(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing MNIST file t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(DataError, match="nowhere does not exist; expected a folder"):
        load_mnist(tmp_path / "nowhere")


def test_file_given_as_the_folder_is_reported(tmp_path):
    (tmp_path / "mnist").write_bytes(b"")
    with pytest.raises(DataError, match="mnist is a file; expected a folder"):
        load_mnist(tmp_path / "mnist")


def test_wrong_magic_number_is_reported_with_expected_value(tmp_path):
    images, _ = small_split(6, seed=0)
    write_dataset(tmp_path, train_images=images_idx(images, magic=2049))
    with pytest.raises(
        DataError, match=r"train-images.*magic number 2049.*expected 2051"
    ):
        load_mnist(tmp_path)


def test_header_count_larger_than_payload_is_reported(tmp_path):
    _, labels = small_split(6, seed=0)
    write_dataset(tmp_path, train_labels=labels_idx(labels, count=7))
    with pytest.raises(DataError, match=r"train-labels.*shape \(7,\).*holds 6 payload"):
        load_mnist(tmp_path)


def test_header_count_smaller_than_payload_is_reported(tmp_path):
    images, _ = small_split(6, seed=0)
    write_dataset(tmp_path, train_images=images_idx(images, count=5))
    with pytest.raises(DataError, match=r"train-images.*header announces shape \(5,"):
        load_mnist(tmp_path)


def test_header_dimensions_whose_product_overflows_are_reported(tmp_path):
    # 2**31 cubed is 2**93, which wraps to 0 in 64-bit integers and would match
    # an empty payload.
    header = struct.pack(">IIII", 2051, 2**31, 2**31, 2**31)
    write_dataset(tmp_path, compress=False, test_images=header)
    with pytest.raises(DataError, match=r"t10k-images.*holds 0 payload bytes"):
        load_mnist(tmp_path)


def test_truncated_gzip_is_reported(tmp_path):
    write_dataset(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte.gz: truncated or corrupt"
    ):
        load_mnist(tmp_path)


def test_corrupt_gzip_is_reported(tmp_path):
    write_dataset(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    payload = bytearray(path.read_bytes())
    # Overwrite the middle of the deflate stream so the stream or its CRC breaks.
    middle = len(payload) // 2
    payload[middle : middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(payload))
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte.gz: truncated or corrupt"
    ):
        load_mnist(tmp_path)


def test_image_and_label_counts_differing_is_reported(tmp_path):
    _, labels = small_split(5, seed=3)
    write_dataset(tmp_path, train_labels=labels_idx(labels))
    with pytest.raises(DataError, match="6 images but 5 labels"):
        load_mnist(tmp_path)


def test_label_outside_0_to_9_is_reported(tmp_path):
    write_dataset(tmp_path, test_labels=labels_idx(np.array([1, 2, 10, 3])))
    with pytest.raises(DataError, match=r"label 10 at index 2 is outside 0\.\.9"):
        load_mnist(tmp_path)


def test_wrong_image_size_is_reported(tmp_path):
    images, _ = small_split(6, seed=0, size=32)
    write_dataset(tmp_path, train_images=images_idx(images))
    with pytest.raises(DataError, match="images of 32x32 pixels, expected 28x28"):
        load_mnist(tmp_path)


def test_file_shorter_than_header_is_reported(tmp_path):
    write_dataset(tmp_path, test_images=struct.pack(">II", 2051, 4))
    with pytest.raises(DataError, match="too short for the 3-dimensional header"):
        load_mnist(tmp_path)


def test_split_without_examples_is_reported(tmp_path):
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    write_dataset(
        tmp_path,
        test_images=images_idx(empty),
        test_labels=labels_idx(np.zeros(0, dtype=np.uint8)),
    )
    with pytest.raises(DataError, match=r"t10k-images.*holds no examples"):
        load_mnist(tmp_path)


def test_gzip_data_without_the_gz_suffix_is_decompressed(tmp_path):
    expected = write_dataset(tmp_path, compress=False)
    path = tmp_path / NAMES["train_images"]
    path.write_bytes(gzip.compress(path.read_bytes()))
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.train_images[..., 0], expected[0])


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_loading_leaves_the_data_folder_unchanged(tmp_path):
    write_dataset(tmp_path)
    before = snapshot(tmp_path)
    load_mnist(tmp_path)
    assert snapshot(tmp_path) == before


def test_failed_loading_leaves_the_data_folder_unchanged(tmp_path):
    write_dataset(tmp_path, test_labels=labels_idx(np.array([1, 2, 10, 3])))
    before = snapshot(tmp_path)
    with pytest.raises(DataError):
        load_mnist(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.fixture
def mocked_tfds(monkeypatch, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with tfds.testing.mock_data(num_examples=12):
        yield


@pytest.mark.slow
def test_tfds_source_gives_uint8_images_of_shape_n_28_28_1(mocked_tfds):
    data = load_mnist()
    for images in (data.train_images, data.test_images):
        assert images.dtype == np.uint8
        assert images.shape == (12, 28, 28, 1)


@pytest.mark.slow
def test_tfds_source_gives_int32_labels_in_0_to_9(mocked_tfds):
    data = load_mnist()
    for labels in (data.train_labels, data.test_labels):
        assert labels.dtype == np.int32
        assert labels.shape == (12,)
        assert labels.min() >= 0
        assert labels.max() <= 9
