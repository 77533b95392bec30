"""data.py on the shipped MNIST files and on small IDX files the tests write."""
import numpy as np
import pytest
from conftest import MNIST_DIR, write_idx

import data

# ------------------------------------------------------------ shipped files

def test_split_shapes_and_dtypes(mnist):
    assert mnist.train.images.shape == (55000, 784)
    assert mnist.validation.images.shape == (5000, 784)
    assert mnist.test.images.shape == (10000, 784)
    assert mnist.train.labels.shape == (55000, 10)
    assert mnist.test.labels.shape == (10000, 10)
    for ds in mnist:
        assert ds.images.dtype == np.float32
        assert ds.images.min() == 0.0 and ds.images.max() == 1.0
        assert np.all(ds.labels.sum(axis=1) == 1.0)
        assert ds.num_examples == len(ds.images) == len(ds.labels)


def test_known_first_labels_and_validation_is_head_of_training_file():
    plain = data.read_data_sets(MNIST_DIR, validation_size=5000)
    assert list(plain.validation.labels[:5]) == [5, 0, 4, 1, 9]
    assert list(plain.test.labels[:5]) == [7, 2, 1, 0, 4]
    whole = data.read_data_sets(MNIST_DIR, validation_size=0)
    assert whole.train.num_examples == 60000
    assert np.array_equal(whole.train.labels[5000:5010], plain.train.labels[:10])
    assert np.bincount(whole.train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_uint8_and_unreshaped_images():
    raw = data.read_data_sets(MNIST_DIR, dtype=np.uint8, reshape=False)
    assert raw.test.images.shape == (10000, 28, 28)
    assert raw.test.images.dtype == np.uint8 and raw.test.images.max() == 255


# ---------------------------------------------------------------- next_batch

def small_set(n=10, seed=0):
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1)
    return data.DataSet(images, np.arange(n), dtype=np.uint8, seed=seed)


def test_first_epoch_is_shuffled_and_covers_every_example():
    ds = small_set()
    images, labels = ds.next_batch(10)
    assert sorted(labels.tolist()) == list(range(10))
    assert labels.tolist() != list(range(10))
    assert np.array_equal(images.ravel(), labels)  # images and labels stay paired
    assert ds.epochs_completed == 0


def test_wrap_around_batch_is_rest_of_epoch_then_new_epoch():
    ds = small_set()
    first, _ = ds.next_batch(7)
    wrapped, _ = ds.next_batch(7)
    rest = wrapped[:3].ravel().tolist()
    assert ds.epochs_completed == 1
    assert sorted(first.ravel().tolist() + rest) == list(range(10))
    following, _ = ds.next_batch(6)
    assert sorted(wrapped[3:].ravel().tolist() + following.ravel().tolist()) == list(range(10))
    assert ds.epochs_completed == 1


def test_shuffle_false_keeps_file_order():
    ds = small_set()
    assert ds.next_batch(4, shuffle=False)[1].tolist() == [0, 1, 2, 3]
    assert ds.next_batch(8, shuffle=False)[1].tolist() == [4, 5, 6, 7, 8, 9, 0, 1]


def test_same_seed_same_batches_and_independent_of_global_rng():
    a, b, c = small_set(seed=3), small_set(seed=3), small_set(seed=4)
    np.random.seed(0)
    batches_a = [a.next_batch(4)[1].tolist() for _ in range(6)]
    np.random.seed(99)
    batches_b = [b.next_batch(4)[1].tolist() for _ in range(6)]
    batches_c = [c.next_batch(4)[1].tolist() for _ in range(6)]
    assert batches_a == batches_b
    assert batches_a != batches_c


def test_state_round_trip_continues_the_same_sequence():
    a = small_set(seed=5)
    for _ in range(4):
        a.next_batch(3)
    b = small_set(seed=99)
    b.set_state(a.get_state())
    assert [a.next_batch(3)[1].tolist() for _ in range(5)] == [b.next_batch(3)[1].tolist() for _ in range(5)]


def test_old_tutorial_code_runs_unchanged(mnist):
    # As the tutorial used input_data.
    batch_x, batch_y = mnist.train.next_batch(100)
    batch_x = batch_x.reshape((100, 28, 28))
    assert batch_x.shape == (100, 28, 28) and batch_y.shape == (100, 10)
    fake = data.read_data_sets(".", fake_data=True, one_hot=True)
    fx, fy = fake.train.next_batch(2)
    assert len(fx) == 2 and len(fx[0]) == 784 and fy[0] == [1] + [0] * 9


# ---------------------------------------------------------------- IDX parser

IMAGES = np.random.RandomState(0).randint(0, 256, size=(3, 28, 28)).astype(np.uint8)
LABELS = np.array([3, 1, 4], dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_valid_idx_files_gzipped_or_raw(tmp_path, suffix):
    images = write_idx(str(tmp_path / f"imgs{suffix}"), 2051, IMAGES)
    labels = write_idx(str(tmp_path / f"lbls{suffix}"), 2049, LABELS)
    assert np.array_equal(data.read_images(images), IMAGES)
    assert np.array_equal(data.read_labels(labels), LABELS)


def expect_error(path, reader, *words):
    with pytest.raises(data.DataError) as err:
        reader(path)
    message = str(err.value)
    assert path in message
    for word in words:
        assert word in message
    return message


def test_truncated_file(tmp_path):
    path = write_idx(str(tmp_path / "imgs"), 2051, IMAGES)
    with open(path, "r+b") as f:
        f.truncate(500)
    expect_error(path, data.read_images, "declares", "holds 500 bytes")


def test_truncated_gzip_stream(tmp_path):
    path = write_idx(str(tmp_path / "imgs.gz"), 2051, IMAGES)
    with open(path, "r+b") as f:
        f.truncate(300)
    expect_error(path, data.read_images, "cannot read")


def test_wrong_magic(tmp_path):
    path = write_idx(str(tmp_path / "lbls.gz"), 2051, LABELS.reshape(1, 1, 3))
    expect_error(path, data.read_labels, "magic number 2051", "expected 2049")


def test_count_mismatch_between_header_and_data(tmp_path):
    path = write_idx(str(tmp_path / "lbls"), 2049, LABELS, declared_shape=(5,))
    expect_error(path, data.read_labels, "declares 5")


def test_huge_declared_size_is_refused_without_allocating(tmp_path):
    path = write_idx(str(tmp_path / "imgs"), 2051, IMAGES, declared_shape=(2**31, 2**16, 2**16))
    expect_error(path, data.read_images, "declares")


def test_label_out_of_range(tmp_path):
    path = write_idx(str(tmp_path / "lbls.gz"), 2049, np.array([1, 10, 2]))
    expect_error(path, data.read_labels, "label 10")


def test_html_error_page_saved_as_gz(tmp_path):
    path = str(tmp_path / "train-labels-idx1-ubyte.gz")
    with open(path, "w") as f:
        f.write("<html><body>404 Not Found</body></html>")
    expect_error(path, data.read_labels, "cannot read")


def test_images_and_labels_from_different_sets():
    images = data.read_images(f"{MNIST_DIR}/t10k-images-idx3-ubyte.gz")
    labels = data.read_labels(f"{MNIST_DIR}/train-labels-idx1-ubyte.gz")
    with pytest.raises(data.DataError, match="10000 images but 60000 labels"):
        data.DataSet(images, labels)


def test_changed_standard_file_fails_its_checksum(tmp_path):
    for name in (data.TRAIN_IMAGES, data.TRAIN_LABELS, data.TEST_IMAGES):
        (tmp_path / f"{name}.gz").write_bytes(open(f"{MNIST_DIR}/{name}.gz", "rb").read())
    write_idx(str(tmp_path / data.TEST_LABELS), 2049, LABELS)  # raw, valid IDX, not MNIST's
    with pytest.raises(data.DataError, match=f"{data.TEST_LABELS}.*sha256 mismatch"):
        data.read_data_sets(str(tmp_path), source_urls=())


def test_data_dir_that_is_a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    with pytest.raises(data.DataError, match="is a file"):
        data.read_data_sets(str(path))
