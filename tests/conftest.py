import contextlib
import copy
import gzip
import os

import numpy as np
import pytest

import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.path.join(ROOT, "data", "mnist")


@pytest.fixture(scope="session")
def loaded_mnist():
    """The shipped MNIST files, one-hot, as the script reads them (loaded once)."""
    datasets = data.read_data_sets(MNIST_DIR, one_hot=True, seed=1)
    return datasets, [ds.get_state() for ds in datasets]


def fresh_copy(loaded):
    """DataSets that share the loaded arrays but start drawing batches afresh from seed 1,
    as a newly started script does: one test's training never shifts another's batches."""
    datasets, states = loaded
    copies = [copy.copy(ds) for ds in datasets]
    for ds, state in zip(copies, states, strict=True):
        ds.set_state(state)
    return data.Datasets(*copies)


@pytest.fixture
def mnist(loaded_mnist):
    return fresh_copy(loaded_mnist)


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


def write_dataset(folder, n_train, n_test, seed=0):
    """Four valid gzipped IDX files of random 28x28 images and labels 0-9 under MNIST's names,
    as Fashion-MNIST or KMNIST ship them: {name: array written}."""
    rng = np.random.RandomState(seed)
    arrays = {data.TRAIN_IMAGES: rng.randint(0, 256, (n_train, 28, 28)), data.TRAIN_LABELS: rng.randint(0, 10, n_train),
              data.TEST_IMAGES: rng.randint(0, 256, (n_test, 28, 28)), data.TEST_LABELS: rng.randint(0, 10, n_test)}
    for name, array in arrays.items():
        write_idx(os.path.join(folder, name + ".gz"), 2051 if array.ndim == 3 else 2049, array)
    return arrays


def run_main(capsys, *args, main=None):
    """(exit code, stdout, stderr) of an entry point's main, train_lstm_mnist's by default."""
    import train_lstm_mnist

    code = (main or train_lstm_mnist.main)(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err, *words):
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err


def tiny_config(tmp_path, **overrides):
    """The shipped config with a tiny budget, writing its run folders under tmp_path."""
    from lstm_mnist import settings

    return settings.make({"training_iters": 3000, "out_dir": str(tmp_path / "runs"), "plots": False, **overrides})


@pytest.fixture(scope="session")
def tiny_run(loaded_mnist, tmp_path_factory):
    """One short run with every output on, trained once for all tests that only need a
    finished run: (cfg, results, printed lines). Tests that change its folder copy it first."""
    import contextlib
    import io

    import train_lstm_mnist

    tmp_path = tmp_path_factory.mktemp("tiny_run")
    cfg = tiny_config(tmp_path, eval_every=10, checkpoint_every=10, plots=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = train_lstm_mnist.train(cfg, fresh_copy(loaded_mnist))
    return cfg, results, out.getvalue().splitlines()


@contextlib.contextmanager
def served(tiny_run):
    """serve.py's server for the tiny run's last checkpoint, in a thread: (base address, Reader)."""
    import serve

    cfg, results, _ = tiny_run
    reader = serve.Reader(cfg, os.path.join(results["run_dir"], "model.ckpt-29"))
    httpd = serve.make_server(reader)
    serve.serve_in_thread(httpd)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", reader
    finally:
        httpd.shutdown()
        httpd.server_close()
        reader.close()
