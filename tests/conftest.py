import gzip
import os

import numpy as np
import pytest

import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.path.join(ROOT, "data", "mnist")


@pytest.fixture(scope="session")
def mnist():
    """The shipped MNIST files, one-hot, as the script reads them."""
    return data.read_data_sets(MNIST_DIR, one_hot=True, seed=1)


def write_idx(path, magic, array, declared_shape=None):
    """Write `array` (uint8) as an IDX file, gzipped when path ends in .gz.

    `declared_shape` writes a header that lies about the contents.
    """
    shape = declared_shape if declared_shape is not None else array.shape
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in shape)
    payload = header + np.asarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path
