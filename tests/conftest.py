"""The tests' fixtures: MNIST loaded once, the shared runs, a small disk. Helpers are in helpers.py."""
import contextlib
import fcntl
import io
import pickle
import shutil
import subprocess

import pytest
from helpers import MNIST_DIR, fresh_copy, tiny_config, write_dataset

import data


@pytest.fixture(scope="session")
def loaded_mnist():
    """The shipped MNIST files, one-hot, as the script reads them (loaded once)."""
    datasets = data.read_data_sets(MNIST_DIR, one_hot=True, seed=1)
    return datasets, [ds.get_state() for ds in datasets]


@pytest.fixture
def mnist(loaded_mnist):
    return fresh_copy(loaded_mnist)


def made_once(tmp_path_factory, name, make):
    """`make(folder)`'s value, made by the first test process (of pytest-xdist's) that asks, in a folder they
    all share, and read back by the others: a shared run is trained once per test session, not once per worker."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if root.name.startswith("popen-gw") else root  # xdist: the workers' common folder
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = root / f"{name}.pickle"
        if not made.exists():
            folder = root / name
            folder.mkdir()
            made.write_bytes(pickle.dumps(make(folder)))
        return pickle.loads(made.read_bytes())


def trained(cfg, mnist=None):
    """(cfg, the run's results, its printed lines) of a run of the script's train()."""
    import train_lstm_mnist

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = train_lstm_mnist.train(cfg, mnist)
    return cfg, results, out.getvalue().splitlines()


@pytest.fixture(scope="session")
def tiny_run(loaded_mnist, tmp_path_factory):
    """One short run with every output on, trained once for all tests that only need a
    finished run: (cfg, results, printed lines). Tests that change its folder copy it first."""
    return made_once(tmp_path_factory, "tiny_run", lambda folder: trained(
        tiny_config(folder, eval_every=10, checkpoint_every=10, plots=True), fresh_copy(loaded_mnist)))


@pytest.fixture(scope="session")
def permuted_run(tmp_path_factory):
    """A short run of the permuted task (8 units, 3 steps, on a small data set of random images):
    (cfg, its last checkpoint)."""
    from lstm_mnist import checkpoints

    def permuted(folder):
        write_dataset(str(folder), n_train=1200, n_test=300)
        cfg, results, _ = trained(tiny_config(folder, task="permuted", n_hidden=8, training_iters=400,
                                              data_dir=str(folder), validation_size=200, eval_every=0))
        return cfg, checkpoints.latest_checkpoint(results.run_dir)
    return made_once(tmp_path_factory, "permuted_run", permuted)


@pytest.fixture(scope="session")
def stacked_run(loaded_mnist, tmp_path_factory):
    """A short run of two stacked LSTM layers of 16 units (TF1's MultiRNNCell), plots on:
    (cfg, results, printed lines)."""
    return made_once(tmp_path_factory, "stacked_run", lambda folder: trained(
        tiny_config(folder, num_layers=2, n_hidden=16, training_iters=1500, eval_every=0, plots=True),
        fresh_copy(loaded_mnist)))


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    """A copy of the session's tiny run folder, for a test that changes it: its path."""
    copy = str(tmp_path / "run")
    shutil.copytree(tiny_run[1].run_dir, copy)
    return copy


@pytest.fixture
def small_disk(tmp_path):
    """A real, tiny filesystem (tmpfs of 1 MiB) to fill; skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}); "
                    f"test_full_disk_while_saving_is_reported_and_the_previous_checkpoint_stays simulates the errno")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)
