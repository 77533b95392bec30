"""Where a command's time went: the `Training time:`, `Steady state:` and `Time:` lines at the end of a run.

The phases follow each other, so they add up to the command's wall time so
far; "start-up" is Python and the imports (TensorFlow's is most of it), from
the moment the process started, where the system says when that was.
"""
import contextlib
import os
import time

from lstm_mnist.part import Part


def seconds_since_process_start():
    """Wall seconds since this process started (Linux's /proc), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime, after the name
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - started_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


class PhaseClock:
    """Ends one phase and starts the next with `mark(name_of_the_phase_that_ended)`; the first
    phase, start-up, ends when it is made, or again at `start_up_ends`."""

    def __init__(self):
        self.seconds = {}
        self.start_up_ends()

    def start_up_ends(self):
        """The start-up (from the process's start, where the system says when that was) ends now."""
        start_up = seconds_since_process_start()
        if start_up is not None:
            self.seconds["start-up"] = start_up
        self.last = time.perf_counter()

    def mark(self, phase):
        now = time.perf_counter()
        self.seconds[phase] = now - self.last
        self.last = now

    def line(self):
        parts = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.seconds.items())
        return f"Time: {sum(self.seconds.values()):.1f} s so far: {parts}"


class StepTimes:
    """The training loop's own times: its first step (the graph's warm-up) and the time spent
    on work set `aside` (the parts' asides: validation, checkpoints), so that the steady-state
    speed, the figure to compare with other frameworks', can leave them out and report each."""

    def __init__(self, asides=()):
        self.started = time.perf_counter()
        self.first_step = None
        self.aside = dict.fromkeys(asides, 0.0)

    @contextlib.contextmanager
    def spent_on(self, what):
        started = time.perf_counter()
        yield
        self.aside[what] += time.perf_counter() - started

    def first_step_done(self):
        """The first step is left out whole, its validation and checkpoint included."""
        self.first_step = time.perf_counter() - self.started
        self.aside = dict.fromkeys(self.aside, 0.0)

    def lines(self, train_seconds, first, last, batch_size):
        """The `Training time:` line, and the `Steady state:` line where steps `first`..`last`
        (the first of them left out) leave any to measure."""
        trained = last - first + 1
        lines = [f"Training time: {train_seconds:.1f} s for {trained} steps, "
                 f"{trained * batch_size / max(train_seconds, 1e-9):.0f} examples/s (with validation and checkpoints)"]
        if trained > 1:
            steady = train_seconds - self.first_step - sum(self.aside.values())
            asides = "".join(f", {name} {seconds:.2f} s" for name, seconds in self.aside.items())
            lines.append(f"Steady state: {(trained - 1) * batch_size / max(steady, 1e-9):.0f} examples/s over steps "
                         f"{first + 1}-{last} (left out: the first step {self.first_step:.2f} s{asides})")
        return lines


class TrainingSpeed(Part):
    """At the end: the `Training time:` and `Steady state:` lines of the run's StepTimes."""

    def __init__(self, batch_size):
        self.batch_size = batch_size

    def on_test_end(self, run, session, results):
        for line in run.times.lines(run.train_seconds, run.done + 1, run.steps, self.batch_size):
            print(line)


class Progress(Part):
    """A line now and then on a long run: how far along it is and when it should end, from the speed
    of its steps so far (validation and checkpoints included). A run expected to train for less than
    LONG_S prints none: the tutorial's run, say."""

    FIRST_S, EVERY_S, LONG_S = 60, 600, 300

    def __init__(self, train_examples):
        self.train_examples = train_examples
        self.next_at = self.FIRST_S

    def after_run(self, run, session, step):
        elapsed = time.perf_counter() - run.times.started
        if elapsed < self.next_at or step.number <= run.done + 1:
            return
        self.next_at = elapsed + self.EVERY_S
        left = run.last_step - step.number
        per_step = elapsed / (step.number - run.done)
        if (run.last_step - run.done) * per_step < self.LONG_S:
            return
        ends = time.strftime("%H:%M", time.localtime(time.time() + left * per_step))
        epochs = f"epoch {step.number * run.cfg.batch_size / self.train_examples:.1f} of " \
                 f"{run.last_step * run.cfg.batch_size / self.train_examples:.1f}"
        print(f"Progress: step {step.number} of {run.last_step} ({step.number / run.last_step:.0%}, {epochs}), "
              f"{duration(elapsed)} so far, about {duration(left * per_step)} to go (ends around {ends})")


def duration(seconds):
    """Seconds in words: 45 s, 12 min, 3 h 05 min."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
