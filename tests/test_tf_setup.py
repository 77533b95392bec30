"""TensorFlow set up for TF1 graph style."""
import signal
import time

import pytest
from conftest import start


@pytest.mark.slow
def test_ctrl_c_while_tensorflow_imports_is_one_line():
    process = start("-c", "import lstm_mnist.tf_setup")
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err == "Interrupted by SIGINT while importing TensorFlow: nothing was started\n"
