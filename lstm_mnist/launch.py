"""A cluster of the script on one machine, for trying distributed.py out: `--local_cluster=PS,WORKERS`."""
import re
import signal
import socket
import subprocess
import sys
import time

from lstm_mnist.errors import ConfigError


def run_local_cluster(spec, argv, script_path):
    """Start PS parameter servers and WORKERS workers of this script on 127.0.0.1 (free ports),
    pass them the rest of the command line, and wait for all; returns the exit code."""
    match = re.fullmatch(r"(\d+),(\d+)", spec)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ConfigError(f"--local_cluster={spec}: expected PS,WORKERS with at least one of each, like 1,2")
    n_ps, n_workers = int(match.group(1)), int(match.group(2))
    ports = free_ports(n_ps + n_workers)
    hosts = [f"127.0.0.1:{port}" for port in ports]
    flags = [f"--ps_hosts={','.join(hosts[:n_ps])}", f"--worker_hosts={','.join(hosts[n_ps:])}"]
    rest = [arg for arg in (argv if argv is not None else sys.argv[1:]) if not arg.startswith("--local_cluster")]
    print(f"Local cluster: ps {', '.join(hosts[:n_ps])}; workers {', '.join(hosts[n_ps:])} (worker 0 is the chief)")
    processes = [subprocess.Popen([sys.executable, script_path, *rest, f"--job_name={job}", f"--task_index={index}",
                                   *flags])
                 for job, count in (("ps", n_ps), ("worker", n_workers)) for index in range(count)]
    chief = processes[n_ps]
    previous = {sig: signal.signal(sig, lambda signum, frame: chief.send_signal(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # the chief stops the others
    try:
        codes = wait_for_all(processes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in processes:
            if process.poll() is None:
                process.kill()
    return next((code for code in codes if code), 0)


def wait_for_all(processes):
    """Exit codes of all processes; once one fails, the others are stopped (a ps would wait
    for a failed worker forever)."""
    failed_at = None
    while any(process.poll() is None for process in processes):
        if failed_at is None and any(process.poll() for process in processes):
            failed_at = time.monotonic()
            for process in processes:
                if process.poll() is None:
                    process.terminate()
        if failed_at is not None and time.monotonic() - failed_at > 10:
            for process in processes:
                if process.poll() is None:
                    process.kill()
        time.sleep(0.1)
    return [process.returncode for process in processes]


def free_ports(count):
    """Ports free on 127.0.0.1 now (another process may still take one before it is used)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
