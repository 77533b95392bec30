"""The timing lines."""
import subprocess
import sys

from helpers import ROOT


def test_the_time_line_gives_every_phase_of_the_run_in_order(tiny_run):
    _, metrics, lines = tiny_run
    phases = metrics.phase_seconds
    assert [name for name in phases if name != "start-up"] == ["data", "graph", "session", "training", "scoring",
                                                                "gates", "plots"]
    assert phases["training"] == metrics.train_seconds
    assert lines[-2] == "Time: {:.1f} s so far: {}".format(
        sum(phases.values()), ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))


def test_start_up_counts_from_the_start_of_the_process():
    code = "import time; time.sleep(1.5); from lstm_mnist import phases; print(phases.seconds_since_process_start())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert 1.45 <= float(result.stdout) < 30, result.stderr  # /proc counts in hundredths
