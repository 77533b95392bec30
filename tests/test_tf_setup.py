"""TensorFlow set up for TF1 graph style, imported on its first use; every other import does nothing but import."""
import glob
import os
import signal
import subprocess
import sys

import pytest
from helpers import ROOT, SCRIPT, start, wait_for_signal_state


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_tensorflow_imports_is_one_line(signum):
    process = start("-c", "from lstm_mnist.tf_setup import tf; tf.Graph")
    wait_for_signal_state(process, signal.SIGTERM, "SigCgt", True)  # tf_setup's handlers are in: the import began
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert err == f"Interrupted by {signal.Signals(signum).name} while importing TensorFlow: nothing was started\n"


def test_the_import_leaves_the_signal_handlers_as_it_found_them():
    code = ("import signal; handlers = lambda: [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]; "
            "before = handlers(); from lstm_mnist.tf_setup import tf; tf.Graph; print(handlers() == before)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout == "True\n", result.stderr


def test_importing_any_module_of_the_package_sets_no_handler_or_hook_and_imports_no_tensorflow():
    modules = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, "lstm_mnist", "*.py")))
    modules.remove("distributed")  # a cluster's runtime: its SessionRunHook needs TensorFlow's base class
    code = ("import signal, sys, threading\n"
            "state = lambda: ([signal.getsignal(s) for s in signal.valid_signals()], sys.excepthook, "
            "threading.excepthook)\n"
            "before = state()\n"
            f"for name in {modules!r}:\n"
            "    __import__('lstm_mnist.' + name)\n"
            "tensorflow = 'tensorflow' in sys.modules\n"
            "import lstm_mnist.distributed\n"
            "print(state() == before, tensorflow)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert len(modules) > 20
    assert result.stdout == "True False\n", result.stderr


def test_a_mistyped_flag_is_refused_before_tensorflow_is_imported():
    code = ("import sys, runpy; sys.argv = [sys.argv[0], '--no_such_flag']\n"
            "try:\n"
            f"    runpy.run_path({SCRIPT!r}, run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    print(e.code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.stdout == "2 False\n"
    assert result.stderr.startswith("error: unknown setting --no_such_flag")

