"""Stress check, not in the default test run: start synchronous-replica clusters many times and
count the runs that hang, fail, or end without every worker's closing lines.

    python tests/stress_cluster.py                      # 40 runs of 1 ps + 2 workers, 10 of 1 ps + 3 workers
    python tests/stress_cluster.py --runs=1,2:5 --runs=1,3:2 --limit_s=120

A run is the command of the synchronous-replicas issue (--training_iters=4100 --plots=0
--cluster_timeout=30); one still running after --limit_s is a hang, and its process tree is killed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "train_lstm_mnist.py")
SETTINGS = ["--sync_replicas=true", "--training_iters=4100", "--plots=0", "--cluster_timeout=30"]


def one_run(spec, limit_s, out_dir):
    """'ok', 'hang', 'failed (rc N)' or 'incomplete (...)' for one --local_cluster=spec run, and its seconds."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, SCRIPT, f"--local_cluster={spec}", *SETTINGS, f"--out_dir={out_dir}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        kill_tree(process)
        return "hang", time.monotonic() - started
    seconds = time.monotonic() - started
    if process.returncode:
        return f"failed (rc {process.returncode}); its output:\n{out}", seconds
    workers = int(spec.split(",")[1])
    missing = [index for index in range(workers)
               if not re.search(rf"^{tag(index)}Optimization Finished!$", out, re.M)
               or not re.search(rf"^{tag(index)}Testing Accuracy: ", out, re.M)]
    if missing:
        return f"incomplete (workers {missing} lack their closing lines); its output:\n{out}", seconds
    return "ok", seconds


def tag(index):
    return "" if index == 0 else re.escape(f"[worker {index}] ")


def kill_tree(process):
    """The launcher and its cluster, which has process groups of its own."""
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    for pid in [process.pid, *map(int, children)]:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", action="append", metavar="PS,WORKERS:COUNT",
                        help="how many runs of which cluster (default: 1,2:40 and 1,3:10)")
    parser.add_argument("--limit_s", type=float, default=120, help="a run still going after this is a hang")
    arguments = parser.parse_args()
    plan = [(spec, int(count)) for spec, count in (item.split(":") for item in arguments.runs or ["1,2:40", "1,3:10"])]
    with tempfile.TemporaryDirectory() as out_dir:
        for spec, count in plan:
            results = []
            for run in range(1, count + 1):
                result, seconds = one_run(spec, arguments.limit_s, out_dir)
                results.append(result)
                print(f"{spec} run {run}/{count}: {result} ({seconds:.1f} s)", flush=True)
            ok = results.count("ok")
            print(f"--local_cluster={spec}: {ok} of {count} ok, {results.count('hang')} hung, "
                  f"{count - ok - results.count('hang')} failed or incomplete", flush=True)


if __name__ == "__main__":
    main()
