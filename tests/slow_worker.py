"""Run the training script with every training step of this process made slower: for tests of a
cluster whose workers do not keep pace (`python tests/slow_worker.py SECONDS SCRIPT ARGS...`)."""
import os
import runpy
import sys
import time

delay, script = float(sys.argv[1]), sys.argv[2]
sys.argv = [script, *sys.argv[3:]]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))

from lstm_mnist.tf_setup import tf1  # noqa: E402  (after the path that finds it)

plain_run = tf1.train.MonitoredSession.run


def slower_run(session, fetches, *args, **kwargs):
    if not isinstance(fetches, (list, tuple, dict)):  # the loop's training step; its other runs fetch lists
        time.sleep(delay)
    return plain_run(session, fetches, *args, **kwargs)


tf1.train.MonitoredSession.run = slower_run
runpy.run_path(script, run_name="__main__")
