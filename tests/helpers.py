"""What the tests share besides fixtures (conftest.py): paths, the settings, small files they write,
and ways to run an entry point or a process and read what it said."""
import contextlib
import copy
import gzip
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
from PIL import Image

import data
import train_lstm_mnist

SETTINGS = train_lstm_mnist.SETTINGS  # config.py's settings, as every entry point offers them


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


MNIST_DIR = os.path.join(ROOT, "data", "mnist")


SCRIPT = os.path.join(ROOT, "train_lstm_mnist.py")


def fresh_copy(loaded):
    """DataSets that share the loaded arrays but start drawing batches afresh from seed 1,
    as a newly started script does: one test's training never shifts another's batches."""
    datasets, states = loaded
    copies = [copy.copy(ds) for ds in datasets]
    for ds, state in zip(copies, states, strict=True):
        ds.set_state(state)
    return data.Datasets(*copies)


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
    return SETTINGS.make({"training_iters": 3000, "out_dir": str(tmp_path / "runs"), "plots": False, **overrides})


@contextlib.contextmanager
def served(cfg, checkpoint):
    """serve.py's server for a run's checkpoint, in a thread: (base address, Reader)."""
    import serve
    reader = serve.Reader(cfg, checkpoint)
    httpd = serve.make_server(reader)
    serve.serve_in_thread(httpd)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", reader
    finally:
        httpd.shutdown()
        httpd.server_close()
        reader.close()


ITER_LINE = re.compile(r"^Iter (\d+), Minibatch Loss= \d+\.\d{6}, Training Accuracy= [01]\.\d{5}$")


SHAPE_LINES = ["Train Images:  (55000, 784)", "Train Labels  (55000, 10)",
               "Test Images:  (10000, 784)", "Test Labels:  (10000, 10)"]


def write_digit_png(path, image, size=84):
    """A 28x28 MNIST image as a larger, dark-on-light RGB PNG, as a user might draw it."""
    pixels = (255 - image.reshape(28, 28) * 255).astype(np.uint8)
    Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC).convert("RGB").save(path)


def png_header_only(path, width, height):
    """A PNG that declares a size without holding its pixels, as a decompression bomb does."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))


def start(*command):
    return subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)


def wait_for_signal_state(process, signum, field, present, limit_s=30):
    """Wait until `signum` is (`present`) or is not in the `field` mask of the process's
    /proc/PID/status: "SigCgt" (it has a handler), "ShdPnd" (sent, not yet delivered)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and process.poll() is None:
        with open(f"/proc/{process.pid}/status") as status:
            mask = int(next(line for line in status if line.startswith(field + ":")).split()[1], 16)
        if bool(mask >> (signum - 1) & 1) == present:
            return
        time.sleep(0.01)  # a poll, not a wait for readiness
    raise AssertionError(f"{signal.Signals(signum).name} {'not ' if present else ''}in {field} after {limit_s} s "
                         f"(exit code {process.poll()})")


def interrupt_after(process, signum, printed):
    """Send `signum` once `printed(lines so far)` holds; (all stdout lines, stderr)."""
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if printed(lines):
                process.send_signal(signum)
                break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return lines + out.splitlines(), err


def logged_steps(count):
    return lambda lines: sum(x.startswith("Iter ") for x in lines) == count


def fill(folder, leave=0):
    """Fill the filesystem of `folder` up to `leave` bytes."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(os.path.join(folder, "filler"), "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def tiny_checkpoint(tiny_run, folder=None, before=0):
    """The path of the tiny run's last checkpoint (`before=1`: the one saved before it), in `folder`
    (by default the run's own): the step comes from the run's settings."""
    from lstm_mnist import settings

    cfg, results, _ = tiny_run
    last = settings.last_step(cfg)
    step = last if before == 0 else (last // cfg.checkpoint_every - before + 1) * cfg.checkpoint_every
    return os.path.join(folder or results.run_dir, f"model.ckpt-{step}")
