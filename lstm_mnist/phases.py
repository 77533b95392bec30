"""How long each phase of a command took: the `Time:` line at the end of a run.

The phases follow each other, so they add up to the command's wall time so
far; "start-up" is Python and the imports (TensorFlow's is most of it), from
the moment the process started, where the system says when that was.
"""
import os
import time


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
    """Ends one phase and starts the next with `mark(name_of_the_phase_that_ended)`."""

    def __init__(self):
        start_up = seconds_since_process_start()
        self.seconds = {} if start_up is None else {"start-up": start_up}
        self.last = time.perf_counter()

    def mark(self, phase):
        now = time.perf_counter()
        self.seconds[phase] = now - self.last
        self.last = now

    def line(self):
        parts = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.seconds.items())
        return f"Time: {sum(self.seconds.values()):.1f} s so far: {parts}"
