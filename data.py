"""MNIST from the four standard IDX files: a drop-in for the removed
`tensorflow.examples.tutorials.mnist.input_data` (TF1's
`tensorflow/contrib/learn/python/learn/datasets/mnist.py`).

    mnist = read_data_sets("data/mnist", one_hot=True)
    batch_x, batch_y = mnist.train.next_batch(100)

Same arrays (shapes, dtypes, values), same batches for the same integer seed,
same public names. Files are read gzipped (`.gz`) or raw, and downloaded when
missing. Files whose decompressed contents match the original MNIST's sha256
load silently; other valid IDX files of the same names (Fashion-MNIST, KMNIST)
load after one warning line on stderr. Every problem is raised as `DataError`,
a ValueError (as the original raised) whose message names the file.
"""
import collections
import gzip
import hashlib
import http.client
import io
import os
import sys
import urllib.request
import zlib

import numpy as np

from lstm_mnist.errors import BadInput
from lstm_mnist.files import write_atomically

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

# sha256 of the decompressed original files (data/mnist/SHA256SUMS).
SHA256 = {
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}

# CVDF mirror of http://yann.lecun.com/exdb/mnist/, the original's default.
DEFAULT_SOURCE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# Further public mirrors of the gzipped files, tried after source_url.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DOWNLOAD_TIMEOUT_S = 30

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
NUM_CLASSES = 10
TF_MAXINT32 = 2**31 - 1
EPOCH_ORDER = 2  # how DataSet orders later epochs; saved with its position (1: a fresh permutation each epoch)

Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


class DataError(ValueError, BadInput):
    """A data file is missing, unreadable or not what it should be, or a bad argument.
    A ValueError, as the original raised, so `except ValueError` still catches it; bad input
    to this project's entry points (exit code 2)."""


# ---------------------------------------------------------------- IDX files

def read_file_bytes(path):
    """The file's contents, decompressed when the name ends in .gz."""
    try:
        with open(path, "rb") as f:
            return gunzip(f, path) if path.endswith(".gz") else f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from e


def gunzip(f, name):
    """The decompressed contents of a gzipped file object."""
    try:
        with gzip.GzipFile(fileobj=f) as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as e:
        # BadGzipFile (an OSError) for an HTML page saved as .gz, EOFError for a truncated stream.
        raise DataError(f"{name}: cannot read: {e.strerror if isinstance(e, OSError) and e.strerror else e}") from e


def parse_idx(buf, path, magic):
    """Parse an IDX buffer with the given magic number into a uint8 array.

    The header is checked against the buffer before anything is allocated, so a
    file that declares a huge size fails with a clear message instead of
    exhausting memory.
    """
    ndim = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}[magic]
    header_len = 4 * (1 + ndim)
    if len(buf) < header_len:
        raise DataError(f"{path}: too short for an IDX header ({len(buf)} bytes)")
    found = int.from_bytes(buf[0:4], "big")
    if found != magic:
        raise DataError(f"{path}: bad magic number {found}, expected {magic} "
                        f"(not an MNIST {'image' if magic == IMAGES_MAGIC else 'label'} file)")
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DataError(f"{path}: image size {dims[1]}x{dims[2]} in the header")
    expected = header_len + int(np.prod(dims, dtype=np.int64))
    if len(buf) != expected:
        raise DataError(f"{path}: header declares {'x'.join(map(str, dims))} items "
                        f"({expected} bytes) but the file holds {len(buf)} bytes")
    return np.frombuffer(buf, dtype=np.uint8, offset=header_len).reshape(dims)


def parse_images(buf, path):
    """Images as uint8 of shape (N, rows, cols)."""
    return parse_idx(buf, path, IMAGES_MAGIC)


def parse_labels(buf, path, num_classes=NUM_CLASSES):
    """Labels as uint8 class ids of shape (N,), each checked to be 0..num_classes-1."""
    labels = parse_idx(buf, path, LABELS_MAGIC)
    if labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(f"{path}: label {labels[bad]} at index {bad}, expected 0..{num_classes - 1}")
    return labels


def read_images(path):
    return parse_images(read_file_bytes(path), path)


def read_labels(path):
    return parse_labels(read_file_bytes(path), path)


def dense_to_one_hot(labels_dense, num_classes=NUM_CLASSES):
    """Class ids (N,) to one-hot rows (N, num_classes), float64 as the original's."""
    one_hot = np.zeros((len(labels_dense), num_classes), dtype=np.float64)
    one_hot[np.arange(len(labels_dense)), labels_dense] = 1.0
    return one_hot


def file_name(f):
    return getattr(f, "name", None) or repr(f)


def extract_images(f):
    """Images of a gzipped IDX file object as uint8 (N, rows, cols, 1), as the original's."""
    return with_depth(parse_images(gunzip(f, file_name(f)), file_name(f)))


def extract_labels(f, one_hot=False, num_classes=NUM_CLASSES):
    """Labels of a gzipped IDX file object: uint8 (N,), or float64 one-hot (N, num_classes)."""
    labels = parse_labels(gunzip(f, file_name(f)), file_name(f), num_classes)
    return dense_to_one_hot(labels, num_classes) if one_hot else labels


def with_depth(images):
    """(N, rows, cols) as the original's (N, rows, cols, 1)."""
    return images.reshape(*images.shape, 1)


# ------------------------------------------------- finding and fetching files

def is_original(name, buf):
    """Whether decompressed contents are the original MNIST file `name`."""
    return hashlib.sha256(buf).hexdigest() == SHA256[name]


def find_file(directory, name):
    """The path of `name` or `name.gz` in directory, or None."""
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    return None


def download(name, directory, urls=(DEFAULT_SOURCE_URL, *MIRRORS), timeout=DOWNLOAD_TIMEOUT_S):
    """Fetch `name.gz` from the first base URL that serves the original MNIST file.

    The download is checked in memory (the largest file is under 10 MB) and
    only a correct copy is written, under a temporary name renamed into place:
    a broken or partial download is never left where the loader would trust
    it, and no folder is created for a download that never happens.
    """
    failures = []
    for base in urls:
        url = base + name + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                payload = response.read()
            if not is_original(name, gunzip(io.BytesIO(payload), url)):
                raise DataError(f"{url}: contents differ from the original {name} (sha256 mismatch)")
        except (OSError, ValueError, http.client.HTTPException) as e:  # DataError is a ValueError
            failures.append(f"{url}: {e}")
            continue
        return save_download(payload, directory, name)
    raise DataError(f"{name}: not in {directory} and no mirror served it ({'; '.join(failures) or 'no mirrors'}); "
                    f"copy the four MNIST files (gzipped or raw) into {directory}")


def save_download(payload, directory, name):
    """Write a checked download into place, whole or not at all (lstm_mnist.files)."""
    target = os.path.join(directory, name + ".gz")
    try:
        os.makedirs(directory, exist_ok=True)
        write_atomically(target, payload)
    except OSError as e:
        raise DataError(f"{directory}: cannot save the downloaded {name}.gz there ({e.strerror or e}); "
                        f"make it writable or copy the four MNIST files into it") from e
    return target


def load_file(directory, name, urls, parse):
    """Find (or download) one standard file and parse it: (array, whether it is MNIST's original)."""
    path = find_file(directory, name) or download(name, directory, urls)
    try:
        buf = read_file_bytes(path)
    except DataError as e:
        if path.endswith(".gz") and os.path.exists(path[:-3]):
            raise DataError(f"{e}; the raw {name} beside it is not used while the .gz is there: "
                            f"delete the .gz to use it") from e
        raise
    return parse(buf, path), is_original(name, buf)


def check_directory(directory):
    """The data folder, or the nearest of its parents that exists, must be a folder: below a
    regular file nothing can be found or downloaded, whatever the mirrors say."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise DataError(f"{directory}: data_dir is a file, not a folder; point data_dir at the MNIST folder")
    parent = os.path.dirname(os.path.abspath(directory))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise DataError(f"{directory}: data_dir lies below {parent}, which is a file, not a folder; point data_dir "
                        f"at the MNIST folder")


# ------------------------------------------------------------------ DataSet

def prepared_images(images, labels, dtype, reshape):
    """The images as the original DataSet kept them: each flattened to a row (with `reshape`), and
    float32 in [0, 1] (with that dtype); one label for each, or DataError."""
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels: the files come from different sets")
    if reshape:
        images = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
    if dtype == np.float32:  # one float32 allocation, not a copy and then a product
        images = np.multiply(images, np.float32(1.0 / 255.0), dtype=np.float32)
    return images


def check_state(state, num_examples):
    """DataError unless `state` (DataSet.get_state's) can continue a DataSet of num_examples."""
    if int(state.get("epoch_order", 1)) != EPOCH_ORDER:
        raise DataError("the saved data position comes from an older data.py, which drew a fresh order at "
                        "each epoch instead of re-permuting the last one as TF1's input_data did; it cannot "
                        "continue the same batches: start a new run")
    if len(state["order"]) != num_examples:
        raise DataError(f"saved data position covers {len(state['order'])} examples, this set has {num_examples}")


def fake_batch(batch_size, one_hot):
    """The original's fake_data batch: every image all ones, every label 0."""
    fake_image = [1.0] * 784
    fake_label = [1] + [0] * 9 if one_hot else 0
    return [fake_image] * batch_size, [fake_label] * batch_size


class DataSet:
    """Images and labels with the old `input_data` DataSet API and batches.

    `next_batch` draws what the original drew for the same integer seed: the
    examples are permuted when the first epoch starts, and again at every
    epoch's end, each permutation applied to the order left by the ones
    before (the original shuffled its arrays in place); a batch that runs past
    the end is the rest of the old epoch followed by the start of the new one.
    The original seeded numpy's global generator with `seed`; this DataSet
    draws the same permutations from a RandomState(seed) of its own and leaves
    the global generator alone. `images` and `labels` stay in file order.
    """

    def __init__(self, images, labels, fake_data=False, one_hot=False,
                 dtype=np.float32, reshape=True, seed=None):
        dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
        if dtype not in (np.uint8, np.float32):
            raise TypeError(f"Invalid image dtype {dtype}, expected uint8 or float32")
        # The original seeded numpy with TensorFlow's op seed for `seed`: seed modulo 2**31 - 1.
        self._rng = np.random.RandomState(None if seed is None else seed % TF_MAXINT32)
        self.fake_data = fake_data
        self.one_hot = one_hot
        self._num_examples = 10000 if fake_data else len(images)
        self._images = images if fake_data else prepared_images(images, labels, dtype, reshape)
        self._labels = labels
        self._epochs_completed = 0
        self._index_in_epoch = 0
        self._order = np.arange(self._num_examples)

    @property
    def images(self):
        return self._images

    @property
    def labels(self):
        return self._labels

    @property
    def num_examples(self):
        return self._num_examples

    @property
    def epochs_completed(self):
        return self._epochs_completed

    def _shuffle(self):
        """Permute the current order, as the original permuted its current arrays."""
        self._order = self._order[self._rng.permutation(self._num_examples)]

    def next_batch(self, batch_size, fake_data=False, shuffle=True):
        """The next `batch_size` examples of this data set."""
        if fake_data or self.fake_data:
            return fake_batch(batch_size, self.one_hot)
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        if start + batch_size <= self._num_examples:
            self._index_in_epoch += batch_size
            rows = self._order[start:self._index_in_epoch]
        else:  # the epoch ends inside this batch: its rest, then the start of the next epoch
            self._epochs_completed += 1
            rest = self._order[start:]
            if shuffle:
                self._shuffle()
            self._index_in_epoch = batch_size - (self._num_examples - start)
            rows = np.concatenate((rest, self._order[:self._index_in_epoch]))
        return self._images[rows], self._labels[rows]

    def get_state(self):
        """Where `next_batch` stands, as numpy arrays (to save with a checkpoint)."""
        _, keys, pos, has_gauss, cached_gaussian = self._rng.get_state()
        return {"epochs_completed": np.int64(self._epochs_completed),
                "index_in_epoch": np.int64(self._index_in_epoch),
                "order": self._order, "rng_keys": keys,
                "rng_rest": np.array([pos, has_gauss, cached_gaussian], dtype=np.float64),
                "epoch_order": np.int64(EPOCH_ORDER)}

    def set_state(self, state):
        """Continue exactly where the DataSet that gave `state` stood."""
        check_state(state, self._num_examples)
        pos, has_gauss, cached_gaussian = state["rng_rest"]
        self._rng = np.random.RandomState()  # not shared with a DataSet this one was copied from
        self._rng.set_state(("MT19937", state["rng_keys"], int(pos), int(has_gauss), float(cached_gaussian)))
        self._epochs_completed = int(state["epochs_completed"])
        self._index_in_epoch = int(state["index_in_epoch"])
        self._order = np.array(state["order"])

    def shard(self, index, count, seed=None):
        """Beyond input_data: examples index, index + count, ... as a DataSet of their own with its
        own shuffling (one worker's part of the training data in a cluster)."""
        return DataSet(self.images[index::count], self.labels[index::count], dtype=np.uint8, reshape=False,
                       one_hot=self.one_hot, seed=seed)  # uint8 and no reshape: the arrays are taken as they are


# ------------------------------------------------------------ read_data_sets

def read_data_sets(train_dir, fake_data=False, one_hot=False, dtype=np.float32, reshape=True,
                   validation_size=5000, seed=None, source_url=DEFAULT_SOURCE_URL, mirrors=MIRRORS):
    """Train (55,000), validation (the first 5,000 of the training file) and test (10,000).

    A missing file is downloaded from `source_url` (the base URL of the four
    .gz files), then from `mirrors`.
    """
    if fake_data:
        def fake():
            return DataSet([], [], fake_data=True, one_hot=one_hot, dtype=dtype, seed=seed)
        return Datasets(train=fake(), validation=fake(), test=fake())

    check_directory(train_dir)
    urls = [source_url or DEFAULT_SOURCE_URL] + [m for m in mirrors if m != source_url]
    arrays, not_mnist = {}, []
    for name, parse in ((TRAIN_IMAGES, parse_images), (TRAIN_LABELS, parse_labels),
                        (TEST_IMAGES, parse_images), (TEST_LABELS, parse_labels)):
        arrays[name], original = load_file(train_dir, name, urls, parse)
        if not original:
            not_mnist.append(name)
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(f"{train_dir}: {images} holds {len(arrays[images])} images but {labels} holds "
                            f"{len(arrays[labels])} labels: the files come from different sets")
    warn_if_not_mnist(train_dir, not_mnist)
    train_images, test_images = with_depth(arrays[TRAIN_IMAGES]), with_depth(arrays[TEST_IMAGES])
    train_labels, test_labels = arrays[TRAIN_LABELS], arrays[TEST_LABELS]
    if not 0 <= validation_size <= len(train_images):
        raise DataError(f"validation_size = {validation_size} is not allowed: must be between 0 and "
                        f"{len(train_images)}, the images of the training file")

    if one_hot:
        train_labels, test_labels = dense_to_one_hot(train_labels), dense_to_one_hot(test_labels)

    def dataset(x, y):
        return DataSet(x, y, one_hot=one_hot, dtype=dtype, reshape=reshape, seed=seed)

    return Datasets(train=dataset(train_images[validation_size:], train_labels[validation_size:]),
                    validation=dataset(train_images[:validation_size], train_labels[:validation_size]),
                    test=dataset(test_images, test_labels))


def warn_if_not_mnist(directory, names):
    """One line on stderr when valid IDX files other than MNIST's (Fashion-MNIST, say) are used."""
    if names:
        print(f"warning: {directory}: {', '.join(names)} {'is' if len(names) == 1 else 'are'} not the original "
              f"MNIST (sha256 differs); using {'it' if len(names) == 1 else 'them'} as given", file=sys.stderr)


def load_mnist(train_dir="MNIST-data"):
    return read_data_sets(train_dir)
