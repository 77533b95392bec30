"""TensorFlow, set up for TF1 graph style: `from lstm_mnist.tf_setup import tf, tf1`.

`tf` and `tf1` (tf.compat.v1) import TensorFlow on their first use, not when this module is
imported: a command refuses a mistyped flag, or says what is wrong with its input, before it
pays TensorFlow's import (seconds). Every module that needs TensorFlow takes it from here, so
the set-up below always happens before TensorFlow is first imported, whatever the order:
- BasicLSTMCell lives in tf-keras since TF 2.16; TF_USE_LEGACY_KERAS=1 selects
  it and must be set before the import.
- TF's C++ start-up chatter would bury the tutorial's log, so
  TF_CPP_MIN_LOG_LEVEL defaults to 3 (a user's own value wins). TF writes some
  info lines (a cuInit error on a machine without a GPU) before it reads that
  level, so at any level above 0 stderr is muted for the import itself; Python
  errors still surface as usual.
- The tutorial silenced warnings; here only the cells' deprecation notices are.
- Eager execution is off: placeholders, graphs and Sessions, as in TF1.
"""
import functools
import gc
import os
import signal
import sys
import threading
import types
import warnings

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@functools.cache
def tensorflow():
    """TensorFlow, imported (once) and set up for TF1's graph style."""
    module = _import_stoppably()
    module.compat.v1.logging.set_verbosity(module.compat.v1.logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*BasicLSTMCell. is deprecated")
    module.compat.v1.disable_eager_execution()
    return module


class _OnFirstUse(types.ModuleType):
    """A module that is imported when one of its attributes is first asked for."""

    def __init__(self, name, load):
        super().__init__(name)
        self._load = load

    def __getattr__(self, attribute):
        return getattr(self._load(), attribute)


tf = _OnFirstUse("tensorflow", tensorflow)
tf1 = _OnFirstUse("tensorflow.compat.v1", lambda: tensorflow().compat.v1)


def _import_quietly():
    """TensorFlow's import, with stderr muted (below) and Python's garbage collector paused: the
    import makes half a million objects and almost no garbage (1,500 objects), and the collector's
    passes over them cost a tenth of its time (6.3 s -> 5.6 s measured on 2 cores). Its objects are
    then frozen: they live as long as the process, so later collections need not walk them."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import_muted()
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _import_muted():
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow
        return tensorflow
    sys.stderr.flush()
    saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return tensorflow


class _ImportStopped(BaseException):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _stop_import(signum, frame):
    raise _ImportStopped(signum)


def _import_stoppably():
    """The import takes seconds: a Ctrl-C or SIGTERM then is common and gets one line and 128 + the
    signal as its exit code, no traceback (and not SIGTERM's silent death). The handlers in place
    before are put back after the import."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return _import_quietly()
    previous = {sig: signal.signal(sig, _stop_import) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _import_quietly()
    except _ImportStopped as stop:
        print(f"Interrupted by {signal.Signals(stop.signum).name} while importing TensorFlow: nothing was started",
              file=sys.stderr)
        raise SystemExit(128 + stop.signum) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def session_config(cfg, device_filters=None):
    """Every session's config: thread counts from config.py; soft placement lets the CPU-only
    data-position variable sit beside a GPU graph; in a cluster, `device_filters` (the devices
    a worker's session sees)."""
    return tf1.ConfigProto(allow_soft_placement=True, intra_op_parallelism_threads=cfg.intra_op_threads,
                           inter_op_parallelism_threads=cfg.inter_op_threads, device_filters=device_filters)
