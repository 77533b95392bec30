"""data.py on the shipped MNIST files and on small IDX files the tests write."""
import gzip
import itertools
import os
import shutil

import numpy as np
import pytest
from helpers import MNIST_DIR, assert_one_line_error, run_main, write_dataset, write_idx

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


@pytest.mark.parametrize("one_hot,reshape,dtype", list(itertools.product([False, True], [False, True],
                                                                          [np.uint8, np.float32])))
def test_shapes_and_dtypes_of_every_combination_are_the_originals(shipped_uint8, one_hot, reshape, dtype):
    datasets = data.read_data_sets(MNIST_DIR, one_hot=one_hot, reshape=reshape, dtype=dtype, validation_size=100)
    images, labels = datasets.test.images, datasets.test.labels
    assert images.shape == ((10000, 784) if reshape else (10000, 28, 28, 1))
    assert images.dtype == dtype
    assert labels.shape == ((10000, 10) if one_hot else (10000,))
    assert labels.dtype == (np.float64 if one_hot else np.uint8)  # dense_to_one_hot gave float64
    expected = shipped_uint8.reshape(images.shape)
    if dtype == np.float32:
        expected = expected.astype(np.float32) * np.float32(1.0 / 255.0)  # the original's arithmetic
    assert np.array_equal(images, expected)
    batch_x, batch_y = datasets.train.next_batch(7)
    assert batch_x.shape == (7, *images.shape[1:]) and batch_y.shape == (7, *labels.shape[1:])


@pytest.fixture(scope="module")
def shipped_uint8():
    """The shipped test images, uint8 (10000, 28, 28), read without data.py."""
    with gzip.open(f"{MNIST_DIR}/t10k-images-idx3-ubyte.gz") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(10000, 28, 28)


def test_extract_functions_take_file_objects_as_the_original():
    with open(f"{MNIST_DIR}/t10k-images-idx3-ubyte.gz", "rb") as f:
        images = data.extract_images(f)
    with open(f"{MNIST_DIR}/t10k-labels-idx1-ubyte.gz", "rb") as f:
        labels = data.extract_labels(f)
    with open(f"{MNIST_DIR}/t10k-labels-idx1-ubyte.gz", "rb") as f:
        one_hot = data.extract_labels(f, one_hot=True, num_classes=12)
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.tolist()[:5] == [7, 2, 1, 0, 4] and labels.dtype == np.uint8
    assert one_hot.shape == (10000, 12) and one_hot.dtype == np.float64 and one_hot[0].argmax() == 7
    with pytest.raises(ValueError, match="magic number 2049"):  # a label file where images belong
        data.extract_images(open(f"{MNIST_DIR}/t10k-labels-idx1-ubyte.gz", "rb"))


def test_the_originals_other_public_names():
    assert data.DEFAULT_SOURCE_URL == "https://storage.googleapis.com/cvdf-datasets/mnist/"
    assert data.load_mnist(MNIST_DIR).train.num_examples == 55000
    assert data.dense_to_one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert list(__import__("inspect").signature(data.read_data_sets).parameters)[:8] == [
        "train_dir", "fake_data", "one_hot", "dtype", "reshape", "validation_size", "seed", "source_url"]


def test_bad_validation_size_is_a_value_error_as_in_the_original():
    with pytest.raises(ValueError, match="validation_size = 60001 is not allowed: must be between 0 and 60000"):
        data.read_data_sets(MNIST_DIR, validation_size=60001)
    with pytest.raises(data.DataError):
        data.read_data_sets(MNIST_DIR, validation_size=-1)


# ---------------------------------------------------------------- next_batch

class OriginalBatches:
    """How TF1's input_data DataSet drew batches, written out for comparison: numpy's
    global generator seeded with TensorFlow's op seed (seed modulo 2**31 - 1) when the
    DataSet was made; the arrays themselves permuted at the first batch and at each
    epoch's end (without shuffle, left in their current order)."""

    def __init__(self, n, seed):
        np.random.seed(seed % (2**31 - 1))
        self.labels, self.n, self.epochs, self.index = np.arange(n), n, 0, 0

    def permute(self):
        perm = np.arange(self.n)
        np.random.shuffle(perm)
        self.labels = self.labels[perm]

    def next_batch(self, batch_size, shuffle=True):
        start = self.index
        if self.epochs == 0 and start == 0 and shuffle:
            self.permute()
        if start + batch_size <= self.n:
            self.index += batch_size
            return self.labels[start:self.index].tolist()
        self.epochs += 1
        rest = self.labels[start:self.n]
        if shuffle:
            self.permute()
        self.index = batch_size - (self.n - start)
        return np.concatenate((rest, self.labels[:self.index])).tolist()


def small_set(n=10, seed=0):
    """A DataSet whose image k is the number k, labels the same: batches show the order."""
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1)
    return data.DataSet(images, np.arange(n), dtype=np.uint8, seed=seed)


def test_ten_examples_seed_1_batch_3_over_four_epochs_are_the_originals():
    ds = small_set(seed=1)
    batches = [ds.next_batch(3)[1].tolist() for _ in range(14)]
    # What TF1's input_data gave (OriginalBatches prints the same).
    assert batches == [[2, 9, 6], [4, 0, 3], [1, 7, 8], [5, 5, 3], [4, 2, 8], [0, 6, 9], [1, 7, 1], [2, 0, 7],
                       [5, 6, 3], [9, 8, 4], [0, 5, 7], [1, 3, 2], [6, 8, 9], [4, 6, 3]]
    assert ds.epochs_completed == 4


@pytest.mark.parametrize("n,batch_size,seed", [(10, 3, 1), (10, 10, 5), (10, 1, 2), (10, 11, 3), (10, 25, 4),
                                               (55000, 100, 1), (55000, 128, 7), (55000, 55000, 1),
                                               (97, 13, 2**31 + 5)])
def test_batches_match_the_original_over_many_epochs(n, batch_size, seed):
    ours, original = small_set(n, seed) if n < 256 else big_set(n, seed), OriginalBatches(n, seed)
    calls = max(6, 3 * n // batch_size + 3)
    for _ in range(calls):
        assert ours.next_batch(batch_size)[1].tolist() == original.next_batch(batch_size)
    assert ours.epochs_completed == original.epochs >= 2


def big_set(n, seed):
    return data.DataSet(np.zeros((n, 1), np.uint8), np.arange(n), dtype=np.uint8, seed=seed)


def test_shuffle_false_and_switching_at_epoch_boundaries_as_the_original():
    pattern = [(4, False), (8, False), (4, True), (6, True), (5, False), (5, False), (3, True), (10, False)]
    ours, original = small_set(seed=3), OriginalBatches(10, 3)
    for batch_size, shuffle in pattern * 3:
        assert ours.next_batch(batch_size, shuffle=shuffle)[1].tolist() == original.next_batch(batch_size, shuffle)
    plain = small_set()
    assert plain.next_batch(4, shuffle=False)[1].tolist() == [0, 1, 2, 3]
    assert plain.next_batch(8, shuffle=False)[1].tolist() == [4, 5, 6, 7, 8, 9, 0, 1]


def test_images_and_labels_stay_paired_and_in_file_order():
    ds = small_set()
    images, labels = ds.next_batch(7)
    images2, labels2 = ds.next_batch(7)
    assert np.array_equal(images.ravel(), labels) and np.array_equal(images2.ravel(), labels2)
    assert ds.images.ravel().tolist() == list(range(10))  # the arrays themselves are never reordered


def test_same_seed_same_batches_and_independent_of_global_rng():
    a, b, c = small_set(seed=3), small_set(seed=3), small_set(seed=4)
    np.random.seed(0)
    batches_a = [a.next_batch(4)[1].tolist() for _ in range(6)]
    np.random.seed(99)
    batches_b = [b.next_batch(4)[1].tolist() for _ in range(6)]
    batches_c = [c.next_batch(4)[1].tolist() for _ in range(6)]
    assert batches_a == batches_b
    assert batches_a != batches_c
    before = np.random.get_state()[1].copy()
    small_set(seed=5).next_batch(4)
    assert np.array_equal(np.random.get_state()[1], before)


def test_state_round_trip_continues_the_same_sequence_across_epochs():
    a = small_set(seed=5)
    for _ in range(5):  # into the second epoch
        a.next_batch(3)
    b = small_set(seed=99)
    b.set_state(a.get_state())
    assert [a.next_batch(3)[1].tolist() for _ in range(9)] == [b.next_batch(3)[1].tolist() for _ in range(9)]


def test_a_position_saved_by_the_older_data_py_is_refused():
    state = small_set().get_state()
    del state["epoch_order"]
    with pytest.raises(data.DataError, match="older data.py.*start a new run"):
        small_set().set_state(state)


def test_old_tutorial_code_runs_unchanged(mnist):
    # As the tutorial used input_data.
    batch_x, batch_y = mnist.train.next_batch(100)
    assert batch_x.shape == (100, 784) and batch_y.shape == (100, 10)  # flat rows, as the tutorial reshaped them
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


def test_another_dataset_in_the_mnist_format_loads_after_one_warning(tmp_path, capsys):
    written = write_dataset(str(tmp_path), n_train=300, n_test=40)
    datasets = data.read_data_sets(str(tmp_path), one_hot=True, validation_size=50, mirrors=())
    err = capsys.readouterr().err
    assert err == (f"warning: {tmp_path}: {data.TRAIN_IMAGES}, {data.TRAIN_LABELS}, {data.TEST_IMAGES}, "
                   f"{data.TEST_LABELS} are not the original MNIST (sha256 differs); using them as given\n")
    assert datasets.train.num_examples == 250 and datasets.validation.num_examples == 50
    assert np.array_equal(np.rint(datasets.test.images * 255), written[data.TEST_IMAGES].reshape(40, 784))
    assert np.array_equal(datasets.test.labels.argmax(axis=1), written[data.TEST_LABELS])


def test_one_changed_file_among_the_originals_is_named(tmp_path, capsys):
    for name in (data.TRAIN_IMAGES, data.TRAIN_LABELS, data.TEST_IMAGES):
        (tmp_path / f"{name}.gz").write_bytes(open(f"{MNIST_DIR}/{name}.gz", "rb").read())
    labels = np.random.RandomState(0).randint(0, 10, 10000)
    write_idx(str(tmp_path / data.TEST_LABELS), 2049, labels)  # raw, valid IDX, not MNIST's
    datasets = data.read_data_sets(str(tmp_path), mirrors=())
    assert capsys.readouterr().err == (f"warning: {tmp_path}: {data.TEST_LABELS} is not the original MNIST "
                                       f"(sha256 differs); using it as given\n")
    assert np.array_equal(datasets.test.labels, labels)


def test_the_shipped_files_load_silently(capsys):
    data.read_data_sets(MNIST_DIR)
    assert capsys.readouterr().err == ""


def test_a_file_that_is_not_idx_is_still_an_error(tmp_path):
    write_dataset(str(tmp_path), n_train=30, n_test=10)
    (tmp_path / f"{data.TEST_IMAGES}.gz").write_bytes(gzip.compress(b"not an IDX file at all"))
    with pytest.raises(data.DataError, match=f"{data.TEST_IMAGES}.gz: bad magic number"):
        data.read_data_sets(str(tmp_path), validation_size=5, mirrors=())


def test_a_corrupt_gz_names_the_raw_file_beside_it(tmp_path):
    write_dataset(str(tmp_path), n_train=30, n_test=10)
    write_idx(str(tmp_path / data.TEST_LABELS), 2049, np.zeros(10, np.uint8))
    (tmp_path / f"{data.TEST_LABELS}.gz").write_bytes(b"<html>not gzip</html>")
    with pytest.raises(data.DataError, match=f"{data.TEST_LABELS}.gz: cannot read.*the raw {data.TEST_LABELS} "
                                             "beside it is not used while the .gz is there"):
        data.read_data_sets(str(tmp_path), validation_size=5, mirrors=())


def test_data_dir_that_is_a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    with pytest.raises(data.DataError, match="is a file"):
        data.read_data_sets(str(path))


def test_data_dir_below_a_file_names_the_file_not_the_mirrors(tmp_path):
    (tmp_path / "some_file").write_text("x")
    below = tmp_path / "some_file" / "deeper" / "mnist"
    with pytest.raises(data.DataError) as error:
        data.read_data_sets(str(below), source_url="http://127.0.0.1:9/", mirrors=())
    assert str(error.value) == (f"{below}: data_dir lies below {tmp_path / 'some_file'}, which is a file, not a "
                                f"folder; point data_dir at the MNIST folder")


# ------------------------------------------------------------ through the script

def test_the_script_trains_and_scores_on_another_dataset_in_the_mnist_format(tmp_path, capsys):
    from helpers import run_main

    folder = tmp_path / "fashion"
    folder.mkdir()
    write_dataset(str(folder), n_train=600, n_test=60)
    code, out, err = run_main(capsys, f"--data_dir={folder}", "--validation_size=100", "--training_iters=1200",
                              "--display_step=4", "--test_len=50", f"--out_dir={tmp_path / 'runs'}", "--plots=no")
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith(f"warning: {folder}: ") and "not the original MNIST" in err
    lines = out.splitlines()
    assert lines[:4] == ["Train Images:  (500, 784)", "Train Labels  (500, 10)", "Test Images:  (60, 784)",
                         "Test Labels:  (60, 10)"]
    assert [line.split(",")[0] for line in lines if line.startswith("Iter ")] == ["Iter 400", "Iter 800"]
    assert any(line.startswith("Testing Accuracy: ") for line in lines)
    assert "Full test set: " in out and "(60 images)" in out


def test_data_dir_that_is_a_file_through_the_script_is_one_line(capsys, tmp_path):
    (tmp_path / "mnist").write_text("not a folder")
    code, _, err = run_main(capsys, f"--data_dir={tmp_path / 'mnist'}", f"--out_dir={tmp_path / 'runs'}")
    assert code == 2
    assert_one_line_error(err, str(tmp_path / "mnist"), "is a file")


def test_unreadable_data_file(monkeypatch):
    def denied(path, mode="r", *args, **kwargs):  # root reads anything: the errno is simulated
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(data, "open", denied, raising=False)
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte\.gz: cannot read: Permission denied"):
        data.read_data_sets(MNIST_DIR)


def test_folder_in_place_of_a_data_file(tmp_path):
    (tmp_path / "t10k-labels-idx1-ubyte.gz").mkdir()
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz: cannot read: Is a directory"):
        data.read_labels(str(tmp_path / "t10k-labels-idx1-ubyte.gz"))


def test_labels_file_from_the_other_set(tmp_path, capsys):
    for name in (data.TRAIN_IMAGES, data.TEST_IMAGES, data.TEST_LABELS):
        shutil.copy(os.path.join(MNIST_DIR, name + ".gz"), tmp_path)
    shutil.copy(os.path.join(MNIST_DIR, data.TEST_LABELS + ".gz"), tmp_path / (data.TRAIN_LABELS + ".gz"))
    code, _, err = run_main(capsys, f"--data_dir={tmp_path}", f"--out_dir={tmp_path / 'runs'}")
    assert code == 2
    assert_one_line_error(err, f"{data.TRAIN_IMAGES} holds 60000 images but {data.TRAIN_LABELS} holds 10000 labels",
                          "different sets")
