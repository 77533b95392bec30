"""A cluster of the script on one machine, for trying distributed.py out: `--local_cluster=PS,WORKERS`.

The processes it starts never outlive it: they are told its pid (LAUNCHER) and end when it has
ended (distributed.Watchdog), however it ends: a second Ctrl-C, its terminal closed, kill -9.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

from lstm_mnist.errors import ConfigError

AFTER_A_SIGNAL_S = 5  # after Ctrl-C or SIGTERM, the chief has this long to stop the cluster itself
GRACE_S = 3  # between SIGTERM and SIGKILL for a process that has to be stopped
MARGIN_S = 15  # beyond cluster_timeout, for the others to follow a process that ended
LAUNCHER = "LSTM_MNIST_LAUNCHER_PID"  # the launcher's pid, in the environment of the processes it starts
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # a Ctrl-C, a kill, the terminal closed


def run_local_cluster(spec, argv, script_path, cluster_timeout):
    """Start PS parameter servers and WORKERS workers of this script on 127.0.0.1 (free ports),
    pass them the rest of the command line, and wait for all; returns the exit code: 128 + the
    signal that stopped the cluster, else its processes' (exit_code)."""
    match = re.fullmatch(r"(\d+),(\d+)", spec)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ConfigError(f"--local_cluster={spec}: expected PS,WORKERS with at least one of each, like 1,2")
    hosts, commands = cluster_commands(int(match.group(1)), int(match.group(2)), argv, script_path)
    print(f"Local cluster: ps {', '.join(hosts['ps'])}; workers {', '.join(hosts['worker'])} "
          f"(worker 0 is the chief)")
    # A process group of their own: a Ctrl-C in the terminal reaches the launcher alone, which passes it on.
    environment = {**os.environ, LAUNCHER: str(os.getpid())}
    processes = {name: subprocess.Popen(command, process_group=0, env=environment)
                 for name, command in commands.items()}
    cluster = LocalCluster(processes, cluster_timeout + MARGIN_S)
    codes = cluster.wait()
    return 128 + cluster.first_signal if cluster.first_signal else exit_code(codes)


def exit_code(codes):
    """The launcher's exit code: the first failure among the workers (the chief first), then the ps
    tasks; a process ended by a signal counts as 128 + the signal, as a shell reports it."""
    order = sorted(codes, key=lambda name: not name.startswith("worker"))
    failed = [codes[name] for name in order if codes[name]]
    return (128 - failed[0] if failed[0] < 0 else failed[0]) if failed else 0


def cluster_commands(n_ps, n_workers, argv, script_path):
    """({"ps": hosts, "worker": hosts}, {"ps 0": command, ..., "worker 0": command, ...}): the
    command line of each process of a cluster on 127.0.0.1, with the rest of `argv`."""
    ports = free_ports(n_ps + n_workers)
    hosts = {"ps": [f"127.0.0.1:{port}" for port in ports[:n_ps]],
             "worker": [f"127.0.0.1:{port}" for port in ports[n_ps:]]}
    flags = [f"--ps_hosts={','.join(hosts['ps'])}", f"--worker_hosts={','.join(hosts['worker'])}"]
    rest = [arg for arg in argv if not arg.startswith("--local_cluster")]
    commands = {f"{job} {index}": [sys.executable, script_path, *rest, f"--job_name={job}", f"--task_index={index}",
                                   *flags]
                for job in ("ps", "worker") for index in range(len(hosts[job]))}
    return hosts, commands


class LocalCluster:
    """Waits for the processes of a local cluster, so that it never waits forever.

    Once one process has ended, the others have `follow_s` to end by themselves (their own
    waits are bounded by cluster_timeout); one that ended on bad input (exit 2) leaves them
    nothing to wait for. Ctrl-C, SIGTERM or SIGHUP goes to the chief (as SIGTERM for a SIGHUP),
    which stops the cluster after its step; the others have AFTER_A_SIGNAL_S. Then the launcher
    says which are still running and stops them: SIGTERM, and SIGKILL GRACE_S later. A second
    signal kills them at once, before the launcher ends.
    """

    def __init__(self, processes, follow_s):
        self.processes, self.follow_s = processes, follow_s  # {name: Popen}
        self.deadline = self.signals = self.first_signal = None

    def wait(self):
        """{name: exit code} once every process has ended."""
        previous = {sig: signal.signal(sig, self.signalled) for sig in SIGNALS}
        # The entry point quits at a second signal (signals.SecondSignalWatcher, through the wakeup fd): here
        # the second one kills the processes first, so the fd goes quiet while the launcher waits.
        wakeup = signal.set_wakeup_fd(-1)
        try:
            while self.running():
                self.check_ended()
                if self.deadline is not None and time.monotonic() > self.deadline:
                    self.stop_the_rest()
                time.sleep(0.1)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(wakeup)
            for process in self.running().values():
                process.kill()
        return {name: process.returncode for name, process in self.processes.items()}

    def running(self):
        return {name: process for name, process in self.processes.items() if process.poll() is None}

    def check_ended(self):
        ended = {name: process.returncode for name, process in self.processes.items() if process.poll() is not None}
        if ended and self.deadline is None:
            self.deadline = time.monotonic() + (0 if 2 in ended.values() else self.follow_s)
            failed = {name: code for name, code in ended.items() if code}
            if failed and not self.signals:
                said = ", ".join(f"{name} ended {how_it_ended(code)}" for name, code in failed.items())
                print(f"Local cluster: {said}; the others follow within cluster_timeout", file=sys.stderr, flush=True)

    def signalled(self, signum, frame):
        self.signals = (self.signals or 0) + 1
        self.first_signal = self.first_signal or signum
        if self.signals > 1:
            for process in self.running().values():
                process.kill()
            return
        # the chief saves a checkpoint and stops the others
        self.processes["worker 0"].send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)
        self.deadline = min(self.deadline or float("inf"), time.monotonic() + AFTER_A_SIGNAL_S)

    def stop_the_rest(self):
        left = self.running()
        print(f"Local cluster: stopping {', '.join(left)}, still running after "
              f"{'the signal' if self.signals else 'the others ended'}", file=sys.stderr, flush=True)
        for process in left.values():
            process.terminate()
        given_up = time.monotonic() + GRACE_S
        while self.running() and time.monotonic() < given_up:
            time.sleep(0.1)
        for process in self.running().values():
            process.kill()


def how_it_ended(code):
    """A process's exit code in words: a signal's name (Popen gives -N), or the code."""
    return f"by {signal.Signals(-code).name}" if code < 0 else f"with exit code {code}"


def free_ports(count):
    """Ports free on 127.0.0.1 now (another process may still take one before it is used)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
