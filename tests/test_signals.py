"""Signals: what SIGINT and SIGTERM do, phase by phase, in real processes (signals.py, entry_point.py)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, SCRIPT, interrupt_after, logged_steps, start, wait_for_signal_state

from lstm_mnist import errors, signals


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, signum):
    process = start(SCRIPT, "--training_iters=8000", "--display_step=2", f"--out_dir={tmp_path}", "--plots=0")
    lines, err = interrupt_after(process, signum, logged_steps(3))
    assert process.returncode == 128 + signum
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    saved = re.search(rf"Interrupted by {signal.Signals(signum).name} after Iter \d+ \(step (\d+)\): "
                      rf"checkpoint saved to (\S+)\nResume with: python \S+ --resume={re.escape(run_dir)}\n$", err)
    assert saved, err
    step = int(saved.group(1))
    assert saved.group(2) == os.path.join(run_dir, f"model.ckpt-{step}")
    assert os.path.exists(saved.group(2) + ".index")
    assert step >= 6 and "Optimization Finished!" not in lines

    if signum == signal.SIGINT:
        resumed = subprocess.run([sys.executable, SCRIPT, f"--resume={run_dir}"], capture_output=True, text=True,
                                 cwd=ROOT, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        out = resumed.stdout.splitlines()
        assert f"Resuming {run_dir} after Iter {step * 100} (step {step})" in out
        iters = [int(m.group(1)) for m in map(re.compile(r"^Iter (\d+),").match, lines + out) if m]
        assert iters == list(range(200, 8000, 200))  # every logged step of an uninterrupted run, once
        assert os.path.exists(os.path.join(run_dir, "model.ckpt-79.index"))


def test_a_second_signal_during_steps_is_left_to_the_default_action(capsys):
    stops = signals.StopRequests()
    stops.defer("stopping after this step")
    with signals.handled():
        stops.handle(signal.SIGINT, None)
        assert stops.requested == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert capsys.readouterr().err == "SIGINT: stopping after this step\n"


def test_a_signal_is_noted_where_it_lands_and_raised_at_the_next_check():
    """Raised from the handler, Interrupted landed inside TensorFlow's session code, which swallowed
    it (exit 0) or crashed (SIGSEGV) in a third of the tries: the handler must only note it."""
    with signals.handled() as stops:
        stops.now("while testing: nothing to lose")
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode, here
        for _ in range(3):
            pass
        assert isinstance(stops.pending, errors.Interrupted)  # noted, not raised
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        with pytest.raises(errors.Interrupted, match="^Interrupted by SIGTERM while testing: nothing to lose$"):
            stops.now("the next phase")  # every change of phase checks first
        with pytest.raises(errors.Interrupted):
            stops.check()
    with signals.handled() as stops:
        assert stops.pending is None and signal.getsignal(signal.SIGTERM) == stops.handle  # the next run starts clean


def wait_for_the_main_thread_to_sleep(process, for_s=0.3, limit_s=60):
    """Wait until the process's main thread has slept (state S in /proc/PID/task/PID/stat) for
    `for_s` on end: in a session run of seconds, not in the short waits between steps (flushing
    the events file, the GIL)."""
    deadline, asleep_since = time.monotonic() + limit_s, None
    while time.monotonic() < deadline and process.poll() is None:
        with open(f"/proc/{process.pid}/task/{process.pid}/stat") as stat:
            asleep = stat.read().rsplit(")", 1)[1].split()[0] == "S"
        now = time.monotonic()
        asleep_since = (asleep_since or now) if asleep else None
        if asleep_since and now - asleep_since >= for_s:
            return
        time.sleep(0.005)  # a poll, not a wait for readiness
    raise AssertionError(f"the main thread did not sleep for {for_s} s within {limit_s} s")


@pytest.mark.slow
def test_a_second_signal_during_a_long_step_quits_at_once(tmp_path):
    """A step of a large batch holds the main thread for seconds, so no Python handler can run in it:
    the second signal must still end the process at once, not after the step and its checkpoint."""
    process = start(SCRIPT, "--batch_size=10000", "--training_iters=100000", "--display_step=1", "--eval_every=0",
                    "--plots=0", f"--out_dir={tmp_path}")
    started = time.monotonic()
    while not process.stdout.readline().startswith("Iter 10000,"):  # step 1 is done: step 2 is running
        assert process.poll() is None and time.monotonic() - started < 240, process.stderr.read()
    wait_for_the_main_thread_to_sleep(process)  # in step 2's session run: Python code runs in no other wait here
    process.send_signal(signal.SIGINT)
    wait_for_signal_state(process, signal.SIGINT, "ShdPnd", False)  # delivered: the next one is a second signal
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 130, err
    assert err == "SIGINT again: quitting at once, without saving (the last checkpoint saved stays intact)\n"
    assert "Iter 20000," not in out  # step 2 never finished
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert not [name for name in os.listdir(run_dir) if name.startswith("model.ckpt")]
