"""TensorFlow set up for TF1 graph style."""
import signal

import pytest
from conftest import start, wait_for_signal_state


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_tensorflow_imports_is_one_line(signum):
    process = start("-c", "import lstm_mnist.tf_setup")
    wait_for_signal_state(process, signal.SIGTERM, "SigCgt", True)  # tf_setup's handlers are in: the import began
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert err == f"Interrupted by {signal.Signals(signum).name} while importing TensorFlow: nothing was started\n"


def test_the_import_leaves_the_signal_handlers_as_it_found_them():
    import subprocess
    import sys

    code = ("import signal; handlers = lambda: [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]; "
            "before = handlers(); import lstm_mnist.tf_setup; print(handlers() == before)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout == "True\n", result.stderr

