"""MNIST from the four standard IDX files: a drop-in for the removed
`tensorflow.examples.tutorials.mnist.input_data`.

    mnist = read_data_sets("data/mnist", one_hot=True)
    batch_x, batch_y = mnist.train.next_batch(100)

Files are read gzipped (`.gz`) or raw, their decompressed contents checked against
the known sha256, and downloaded from public mirrors when missing. Every problem is
raised as `DataError`, whose message names the file and says what is wrong.
"""
import collections
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib

import numpy as np

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

# Public mirrors of the gzipped files, tried in order.
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DOWNLOAD_TIMEOUT_S = 30

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
NUM_CLASSES = 10

Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


class DataError(Exception):
    """A data file is missing, unreadable or not what it should be."""


# ---------------------------------------------------------------- IDX files

def read_file_bytes(path):
    """The file's contents, decompressed when the name ends in .gz."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        # gzip raises BadGzipFile (an OSError) for an HTML page saved as .gz,
        # EOFError for a truncated stream.
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise DataError(f"{path}: cannot read: {reason}") from e


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


def parse_labels(buf, path):
    """Labels as uint8 class ids of shape (N,), each checked to be 0..9."""
    labels = parse_idx(buf, path, LABELS_MAGIC)
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DataError(f"{path}: label {labels[bad]} at index {bad}, expected 0..9")
    return labels


def read_images(path):
    return parse_images(read_file_bytes(path), path)


def read_labels(path):
    return parse_labels(read_file_bytes(path), path)


def dense_to_one_hot(labels, num_classes=NUM_CLASSES):
    """Class ids (N,) to one-hot rows (N, num_classes)."""
    one_hot = np.zeros((len(labels), num_classes), dtype=np.float32)
    one_hot[np.arange(len(labels)), labels] = 1.0
    return one_hot


# ------------------------------------------------- finding and fetching files

def sha256_of(buf):
    return hashlib.sha256(buf).hexdigest()


def check_sha256(name, buf, path):
    if sha256_of(buf) != SHA256[name]:
        raise DataError(f"{path}: contents differ from the original {name} (sha256 mismatch); "
                        f"delete it to download a fresh copy")


def find_file(directory, name):
    """The path of `name` or `name.gz` in directory, or None."""
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    return None


def download(name, directory, mirrors=MIRRORS, timeout=DOWNLOAD_TIMEOUT_S):
    """Fetch `name.gz` from the first mirror that serves a correct copy.

    The download goes to a temporary file in `directory` and is renamed into
    place only after its checksum passes, so a broken or partial download is
    never left where the loader would trust it.
    """
    target = os.path.join(directory, name + ".gz")
    failures = []
    for mirror in mirrors:
        url = mirror + name + ".gz"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial.gz", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
            check_sha256(name, read_file_bytes(tmp), url)
            os.replace(tmp, target)
            return target
        except (OSError, ValueError, http.client.HTTPException, DataError) as e:
            failures.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DataError(f"{name}: not in {directory} and no mirror served it ({'; '.join(failures) or 'no mirrors'}); "
                    f"copy the four MNIST files (gzipped or raw) into {directory}")


def load_file(directory, name, mirrors, parse):
    """Find (or download) one standard file, check its checksum, parse it."""
    path = find_file(directory, name) or download(name, directory, mirrors)
    buf = read_file_bytes(path)
    check_sha256(name, buf, path)
    return parse(buf, path)


def ensure_directory(directory):
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise DataError(f"{directory}: data_dir is a file, not a folder; point data_dir at the MNIST folder")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise DataError(f"{directory}: cannot create the data folder: {e.strerror}") from e


# ------------------------------------------------------------------ DataSet

class DataSet:
    """Images and labels with the old `input_data` DataSet API.

    `next_batch` keeps the original semantics: the order is shuffled when the
    first epoch starts, and a batch that runs past the end is the rest of the
    old epoch followed by the start of a freshly shuffled one. Shuffling uses
    this DataSet's own RandomState, so it is reproducible from `seed` and
    independent of numpy's global generator.
    """

    def __init__(self, images, labels, fake_data=False, one_hot=False,
                 dtype=np.float32, reshape=True, seed=None):
        dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
        if dtype not in (np.uint8, np.float32):
            raise TypeError(f"Invalid image dtype {dtype}, expected uint8 or float32")
        self._rng = np.random.RandomState(seed)
        self.fake_data = fake_data
        self.one_hot = one_hot
        if fake_data:
            self._num_examples = 10000
        else:
            if len(images) != len(labels):
                raise DataError(f"{len(images)} images but {len(labels)} labels: "
                                f"the files come from different sets")
            self._num_examples = len(images)
            if reshape:
                images = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
            if dtype == np.float32:  # one float32 allocation, not a copy and then a product
                images = np.multiply(images, np.float32(1.0 / 255.0), dtype=np.float32)
        self._images = images
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

    def _take(self, start, end):
        rows = self._order[start:end]
        return self._images[rows], self._labels[rows]

    def _reorder(self, shuffle):
        self._order = self._rng.permutation(self._num_examples) if shuffle else np.arange(self._num_examples)

    def next_batch(self, batch_size, fake_data=False, shuffle=True):
        """The next `batch_size` examples of this data set."""
        if fake_data or self.fake_data:
            fake_image = [1.0] * 784
            fake_label = [1] + [0] * 9 if self.one_hot else 0
            return [fake_image] * batch_size, [fake_label] * batch_size
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0:
            self._reorder(shuffle)
        if start + batch_size <= self._num_examples:
            self._index_in_epoch += batch_size
            return self._take(start, self._index_in_epoch)
        # The epoch ends inside this batch: its rest, then a newly shuffled epoch.
        self._epochs_completed += 1
        rest_images, rest_labels = self._take(start, self._num_examples)
        self._reorder(shuffle)
        self._index_in_epoch = batch_size - (self._num_examples - start)
        new_images, new_labels = self._take(0, self._index_in_epoch)
        return (np.concatenate((rest_images, new_images), axis=0),
                np.concatenate((rest_labels, new_labels), axis=0))

    def get_state(self):
        """Where `next_batch` stands, as numpy arrays (to save with a checkpoint)."""
        _, keys, pos, has_gauss, cached_gaussian = self._rng.get_state()
        return {"epochs_completed": np.int64(self._epochs_completed),
                "index_in_epoch": np.int64(self._index_in_epoch),
                "order": self._order, "rng_keys": keys,
                "rng_rest": np.array([pos, has_gauss, cached_gaussian], dtype=np.float64)}

    def set_state(self, state):
        """Continue exactly where the DataSet that gave `state` stood."""
        if len(state["order"]) != self._num_examples:
            raise DataError(f"saved data position covers {len(state['order'])} examples, "
                            f"this set has {self._num_examples}")
        pos, has_gauss, cached_gaussian = state["rng_rest"]
        self._rng = np.random.RandomState()  # not shared with a DataSet this one was copied from
        self._rng.set_state(("MT19937", state["rng_keys"], int(pos), int(has_gauss), float(cached_gaussian)))
        self._epochs_completed = int(state["epochs_completed"])
        self._index_in_epoch = int(state["index_in_epoch"])
        self._order = np.array(state["order"])


# ------------------------------------------------------------ read_data_sets

def read_data_sets(train_dir, fake_data=False, one_hot=False, dtype=np.float32, reshape=True,
                   validation_size=5000, seed=None, source_urls=MIRRORS):
    """Train (55,000), validation (the first 5,000 of the training file) and test (10,000)."""
    if fake_data:
        def fake():
            return DataSet([], [], fake_data=True, one_hot=one_hot, dtype=dtype, seed=seed)
        return Datasets(train=fake(), validation=fake(), test=fake())

    ensure_directory(train_dir)

    def load(name, parse):
        return load_file(train_dir, name, source_urls, parse)

    train_images, train_labels = load(TRAIN_IMAGES, parse_images), load(TRAIN_LABELS, parse_labels)
    test_images, test_labels = load(TEST_IMAGES, parse_images), load(TEST_LABELS, parse_labels)
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
