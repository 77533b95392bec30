"""Beyond one machine: real ps and worker processes on 127.0.0.1, each bounded in time."""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from helpers import ROOT, assert_one_line_error, run_main, tiny_checkpoint, tiny_config, wait_for_signal_state

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, context, errors, launch, placement

SCRIPT = os.path.join(ROOT, "train_lstm_mnist.py")
LIMIT_S = 120  # wall-clock limit of one cluster run


def run_cluster(*args, cwd=None):
    """A --local_cluster run as a real process tree; retried once if a free port was taken meanwhile."""
    for _ in range(2):
        process = subprocess.Popen([sys.executable, SCRIPT, *args, "--plots=0", "--cluster_timeout=30"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd or ROOT,
                                   start_new_session=True)
        try:
            out, err = process.communicate(timeout=LIMIT_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)  # the whole tree: the ps, the workers
        if not (process.returncode == 2 and "cannot listen" in err):
            return process.returncode, out, err
    return process.returncode, out, err


def iter_losses(out):
    return [float(m.group(1)) for m in re.finditer(r"^Iter \d+, Minibatch Loss= (\d+\.\d+), ", out, flags=re.M)]


@pytest.fixture(scope="module")
def async_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("cluster")
    code, out, err = run_cluster("--local_cluster=1,2", "--training_iters=8100", f"--out_dir={out_dir}")
    return code, out, err, out_dir


@pytest.mark.slow
def test_one_ps_and_two_async_workers_train_and_all_exit_by_themselves(async_run):
    code, out, err, out_dir = async_run
    assert code == 0, err
    losses = iter_losses(out)
    assert len(losses) >= 3 and losses[-1] < losses[0]
    # Every worker runs the tutorial's loop and prints its lines; the others' are tagged.
    # (worker 1 counts from the global step at which it joined: its first line may be Iter 2000 or later)
    assert re.search(r"^\[worker 1\] Iter \d+000, Minibatch Loss= \d+\.\d{6}, Training Accuracy= ", out, re.M)
    assert re.search(r"^\[worker 1\] Train Images:  \(55000, 784\)$", out, re.M)
    assert "Optimization Finished!" in out and "ps 0: all workers are done" in out
    (run_dir,) = [str(p) for p in out_dir.iterdir()]
    assert out.splitlines()[-2] == f"Run folder: {run_dir}"  # then the ps's last line
    step = int(checkpoints.latest_checkpoint(run_dir).rsplit("-", 1)[1])
    assert 80 <= step <= 82  # the last step, plus what the other worker had in flight (async)
    record = json.load(open(os.path.join(run_dir, "config.json")))
    assert record["config"]["sync_replicas"] is False
    assert len(record["cluster"]["ps"]) == 1 and len(record["cluster"]["worker"]) == 2


def run_own_cluster(n_workers, *args, slow=None, out_dir):
    """A cluster started as the launcher starts it, with worker `i`'s training steps made `slow[i]`
    seconds slower (tests/slow_worker.py): {process name: (exit code, output)}; a process still
    running after LIMIT_S fails the test."""
    hosts, commands = launch.cluster_commands(1, n_workers, [*args, "--plots=0", "--cluster_timeout=30",
                                                             f"--out_dir={out_dir}"], SCRIPT)
    for index, seconds in (slow or {}).items():
        commands[f"worker {index}"][1:2] = [os.path.join(ROOT, "tests", "slow_worker.py"), str(seconds), SCRIPT]
    logs = {name: open(out_dir / f"{name}.log", "w+") for name in commands}
    processes = {name: subprocess.Popen(command, stdout=logs[name], stderr=subprocess.STDOUT, cwd=ROOT)
                 for name, command in commands.items()}
    ends_by = time.monotonic() + LIMIT_S
    try:
        for process in processes.values():
            process.wait(timeout=max(ends_by - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the cluster hangs: {[name for name, p in processes.items() if p.poll() is None]} still running")
    finally:
        for process in processes.values():
            process.kill()
    results = {}
    for name, log in logs.items():
        log.seek(0)
        results[name] = (processes[name].returncode, log.read())
        log.close()
    return results


def global_step_of(out_dir):
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    return int(checkpoints.latest_checkpoint(str(run_dir)).rsplit("-", 1)[1])


def assert_every_worker_closed(results, n_workers):
    """Each worker ran the loop to its end and printed the tutorial's closing lines; the ps saw them done."""
    for index in range(n_workers):
        code, out = results[f"worker {index}"]
        tag = "" if index == 0 else re.escape(f"[worker {index}] ")
        assert code == 0, out
        assert "Traceback" not in out
        assert re.search(rf"^{tag}Optimization Finished!\n{tag}Testing Accuracy: [01]\.\d+$", out, re.M), out
    assert results["ps 0"][0] == 0 and "ps 0: all workers are done" in results["ps 0"][1]


@pytest.mark.slow
def test_a_slower_chief_and_a_faster_synchronous_worker_both_end(tmp_path):
    # The case that hung: worker 1 reached its own count of steps first and left, and the chief's next
    # update waited for its gradients forever. (Asynchronous workers end alike: test_one_ps_and_two_async_...)
    results = run_own_cluster(2, "--training_iters=4100", "--sync_replicas=true", slow={0: 0.15}, out_dir=tmp_path)
    assert_every_worker_closed(results, 2)
    # Each update applies two gradients, and the workers stop when the shared global step reaches the last, 40,
    # however many steps each ran itself (stale gradients are dropped, one worker may give both).
    assert global_step_of(tmp_path) == 40
    # The chief takes part in every update, so it logs them as the tutorial does; both learn.
    assert re.search(r"^\[worker 1\] Iter \d+000, Minibatch Loss= ", results["worker 1"][1], re.M)
    losses = iter_losses(results["worker 0"][1])
    assert len(losses) >= 2 and losses[-1] < losses[0]


@pytest.mark.slow
def test_a_cluster_checkpoint_restores_in_one_process(async_run, mnist, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(next(async_run[3].iterdir()), run_dir)
    assert predict.main([run_dir]) == 0
    assert "Full test set:" in capsys.readouterr().out
    results = script.train(tiny_config(tmp_path, training_iters=10000), mnist, resume=run_dir)
    assert results.steps == 99 and results.run_dir == run_dir


@pytest.mark.slow
def test_a_single_process_checkpoint_resumes_in_a_cluster_from_the_checkpoint_named(tiny_run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[1].run_dir, run_dir)
    older = tiny_checkpoint(tiny_run, run_dir, before=1)  # not the latest: that very one is restored
    step = int(older.rsplit("-", 1)[1])
    code, out, err = run_cluster("--local_cluster=1,1", f"--resume={older}", "--training_iters=4100")
    assert code == 0, err
    assert f"Resuming {run_dir} from {older} (global step {step})" in out.splitlines()
    assert checkpoints.latest_checkpoint(run_dir).endswith("model.ckpt-40")
    assert re.findall(r"^Iter (\d+),", out, flags=re.M) == ["3000", "4000"]  # one worker: its steps are global
    steps = [row.split(",")[0] for row in open(os.path.join(run_dir, "metrics.csv")).read().splitlines()[1:]]
    assert steps == ["10", "20", "30", "40"]  # the rows up to the checkpoint kept, those after it replaced


@pytest.mark.parametrize("args,words", [
    (["--job_name=worker", "--ps_hosts=h0", "--worker_hosts=h1:2222"], ["--ps_hosts=h0: 'h0' is not HOST:PORT"]),
    (["--job_name=worker", "--ps_hosts=h0:2222"], ["--job_name needs --ps_hosts and --worker_hosts"]),
    (["--job_name=worker", "--task_index=2", "--ps_hosts=h0:1", "--worker_hosts=h1:1,h2:1"],
     ["--task_index = 2 is not allowed: the worker job has tasks 0 to 1"]),
    (["--job_name=ps", "--ps_hosts=h0:99999", "--worker_hosts=h1:1"], ["'h0:99999' is not HOST:PORT"]),
    (["--local_cluster=0,2"], ["--local_cluster=0,2: expected PS,WORKERS"]),
])
def test_a_bad_cluster_description_is_one_line(capsys, args, words):
    code, out, err = run_main(capsys, *args)
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)


def test_a_workers_lines_are_tagged_and_written_whole():
    """Each write to the shared pipe is whole lines: print()'s pieces and newline, written apart, let two
    processes' lines interleave mid-line."""
    writes = []
    stream = types.SimpleNamespace(write=writes.append, flush=lambda: None)
    tagged = context.WholeLines(stream, "[worker 1] ")
    print("Optimization Finished!", file=tagged)
    print("Testing Accuracy:", 0.5, file=tagged)
    tagged.write("two\nlines\nand a ")
    print("half", file=tagged)
    print("shown", end="", file=tagged, flush=True)
    print(" early", file=tagged)
    assert writes == ["[worker 1] Optimization Finished!\n", "[worker 1] Testing Accuracy: 0.5\n",
                      "[worker 1] two\n[worker 1] lines\n", "[worker 1] and a half\n", "[worker 1] shown", " early\n"]


def test_tf_config_gives_the_role(monkeypatch):
    cluster = {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    none = types.SimpleNamespace(job_name=None)
    assert placement.role_of(none) == placement.Role(cluster, "worker", 1)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], **cluster}, "task": {"type": "chief"}}))
    with pytest.raises(errors.ConfigError, match="this script runs ps and worker jobs"):
        placement.role_of(none)


@pytest.mark.slow
def test_a_port_in_use_is_one_line_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, SCRIPT, "--job_name=ps", f"--ps_hosts=127.0.0.1:{port}",
                                 "--worker_hosts=127.0.0.1:1"], capture_output=True, text=True, timeout=LIMIT_S)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, f"ps 0: cannot listen on 127.0.0.1:{port}", "Could not start gRPC server")


@pytest.mark.slow
def test_a_worker_without_its_ps_gives_up_after_the_timeout(tmp_path):
    ps_port, worker_port = launch.free_ports(2)
    result = subprocess.run([sys.executable, SCRIPT, "--job_name=worker", f"--ps_hosts=127.0.0.1:{ps_port}",
                             f"--worker_hosts=127.0.0.1:{worker_port}", "--cluster_timeout=6",
                             f"--out_dir={tmp_path}"], capture_output=True, text=True, timeout=LIMIT_S)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"worker 0: waiting for the parameter server at 127.0.0.1:{ps_port}"
    assert lines[-1].startswith(f"error: worker 0: no parameter server at 127.0.0.1:{ps_port} after 6 s")
    assert not np.any([p.name for p in tmp_path.iterdir()])  # no run folder for a run that never started


def launched_cluster(*args):
    """A --local_cluster launcher as a process, its output in pipes (its cluster has process groups of its own)."""
    return subprocess.Popen([sys.executable, SCRIPT, *args, "--plots=0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)


def cluster_at_line(pattern, *args):
    """(launcher, its stdout up to the first line that matches `pattern`) of a launched cluster; started again
    once if a free port was taken meanwhile (the cluster then ends at once, saying so)."""
    for attempt in range(2):
        launcher = launched_cluster(*args)
        try:
            return launcher, wait_for_line(launcher, pattern)
        except AssertionError:
            err = launcher.communicate(timeout=LIMIT_S)[1]
            if attempt or "cannot listen" not in err:
                raise AssertionError(f"the cluster ended before printing {pattern!r}: {err}") from None


def pid_of(launcher, name):
    """The pid of the launcher's process `name` ("worker 1"), from its command line."""
    job, index = name.split()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline") as cmdline:
                parent, argv = int(stat.read().rsplit(")", 1)[1].split()[1]), cmdline.read().split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == launcher.pid and f"--job_name={job}" in argv and f"--task_index={index}" in argv:
            return int(pid)
    raise AssertionError(f"no {name} under the launcher")


def wait_for_line(process, pattern):
    """Read the process's stdout until a line matches `pattern` (bounded by the process's own end);
    the lines read."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if re.search(pattern, line):
            return "".join(lines)
    raise AssertionError(f"the cluster ended before printing {pattern!r}")


def finished(process, limit_s):
    """(exit code, stdout, stderr) once the process ends, within limit_s; the test fails otherwise."""
    try:
        out, err = process.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        pytest.fail(f"still running {limit_s} s later")
    return process.returncode, out, err


@pytest.mark.slow
def test_a_killed_worker_ends_the_others_within_the_timeout_in_one_line_each(tmp_path, mnist):
    launcher = launched_cluster("--local_cluster=1,2", "--sync_replicas=true", "--cluster_timeout=10",
                                "--training_iters=1000000", "--checkpoint_every=10", f"--out_dir={tmp_path}")
    first = wait_for_line(launcher, r"^\[worker 1\] Iter 2000,")  # the chief has saved a checkpoint by then
    os.kill(pid_of(launcher, "worker 1"), 9)
    killed_at = time.monotonic()
    code, out, err = finished(launcher, 10 + 20)
    assert time.monotonic() - killed_at < 10 + 10  # the chief's step deadline, then the ps's, at once
    assert code == 1, err
    assert "Traceback" not in err
    assert "Local cluster: worker 1 ended by SIGKILL; the others follow within cluster_timeout" in err.splitlines()
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    last = checkpoints.latest_checkpoint(run_dir)
    assert last and os.path.exists(last + ".index")
    chief_line = [line for line in err.splitlines() if line.startswith("error: worker 0: ")]
    assert chief_line == [f"error: worker 0: a step got no answer for 10 s (cluster_timeout); it waits for "
                          f"gradients from every worker and the chief's update: worker 1 at {worker_host(first, 1)} "
                          f"does not answer: stopped?; last checkpoint: {last}; resume with the same commands with "
                          f"--resume={run_dir} for the chief"]
    assert re.search(r"^error: ps 0: no answer from worker 1 \(127\.0\.0\.1:\d+\) for 10 s \(cluster_timeout\), and "
                     r"it has not said it is done", err, re.M)
    step = int(last.rsplit("-", 1)[1])  # and the checkpoint named resumes (here in one process, two steps on)
    results = script.train(tiny_config(tmp_path, training_iters=(step + 3) * 100), mnist, resume=run_dir)
    assert results.steps == step + 2 and results.run_dir == run_dir


def worker_host(out, index):
    """Worker `index`'s HOST:PORT, from the launcher's first line."""
    workers = re.search(r"^Local cluster: ps [^;]+; workers ([^ ]+(?:, [^ ]+)*) \(", out, re.M).group(1)
    return workers.split(", ")[index]


@pytest.mark.slow
def test_sigterm_to_the_launcher_ends_a_cluster_whose_step_is_blocked(tmp_path):
    launcher = launched_cluster("--local_cluster=1,2", "--sync_replicas=true", "--cluster_timeout=60",
                                "--training_iters=1000000", f"--out_dir={tmp_path}")
    wait_for_line(launcher, r"^\[worker 1\] Iter 1000,")
    os.kill(pid_of(launcher, "worker 1"), signal.SIGSTOP)  # the chief's next update waits for it
    launcher.send_signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    code, out, err = finished(launcher, 30)
    assert time.monotonic() - signalled_at < launch.AFTER_A_SIGNAL_S + launch.GRACE_S + 2
    assert code != 0
    stopping = re.search(r"^Local cluster: stopping (.*), still running after the signal$", err, re.M)
    assert stopping and "worker 1" in stopping.group(1), err  # the stopped worker is stopped by the launcher
    # The chief is blocked in its step, and stopped too; unless worker 1's gradient for that step was already on its
    # way, and then the chief honours the signal itself, with its checkpoint.
    assert "worker 0" in stopping.group(1) or re.search(r"^Interrupted by SIGTERM after Iter \d+ ", err, re.M), err


def cluster_pids(launcher):
    """The pids of the launcher's ps and workers."""
    return [pid_of(launcher, name) for name in ("ps 0", "worker 0", "worker 1")]


def alive(pid):
    """Whether `pid` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until_ended(pids, limit_s):
    """The seconds until every process of `pids` has ended; fails the test past `limit_s`."""
    started = time.monotonic()
    while any(alive(pid) for pid in pids):
        if time.monotonic() - started > limit_s:
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
            pytest.fail(f"still running {limit_s} s later: {[pid for pid in pids if alive(pid)]}")
        time.sleep(0.2)  # a poll of /proc, not a wait for readiness
    return time.monotonic() - started


@pytest.mark.slow
def test_a_cluster_whose_launcher_is_killed_ends_within_twice_the_timeout(tmp_path):
    launcher, _ = cluster_at_line(r"^\[worker 1\] Iter ", "--local_cluster=1,2", "--cluster_timeout=10",
                                  "--training_iters=1000000", f"--out_dir={tmp_path}")
    pids = cluster_pids(launcher)
    launcher.kill()  # no launcher code runs: the processes see it gone (distributed.Watchdog)
    code, _, err = finished(launcher, 30)
    assert code == -9
    assert wait_until_ended(pids, 2 * 10) < 2 * 10  # twice cluster_timeout
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]  # the chief stopped after a step, with a checkpoint
    assert checkpoints.latest_checkpoint(run_dir)


# A launcher of processes that sleep, in a process of its own: the entry point's signal handling, then
# launch.LocalCluster's wait, as `--local_cluster` runs them.
SLEEPING_CLUSTER = """
import subprocess, sys
from lstm_mnist import entry_point, launch, settings
def work(overrides, arguments):
    processes = {name: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], process_group=0,
                                        stdout=subprocess.DEVNULL)
                 for name in ("ps 0", "worker 0", "worker 1")}
    print(" ".join(str(p.pid) for p in processes.values()), flush=True)
    cluster = launch.LocalCluster(processes, 60)
    codes = cluster.wait()
    return 128 + cluster.first_signal if cluster.first_signal else launch.exit_code(codes)
sys.exit(entry_point.run([], "", lambda parser: None, settings.Settings({}), work, uses_tensorflow=lambda a: False))
"""


@pytest.mark.parametrize("ending", ["two Ctrl-C", "SIGHUP"])
def test_the_launcher_ends_its_processes_before_it_ends(ending):
    launcher = subprocess.Popen([sys.executable, "-c", SLEEPING_CLUSTER], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    pids = [int(pid) for pid in launcher.stdout.readline().split()]
    wait_for_signal_state(launcher, signal.SIGHUP, "SigCgt", True)  # the launcher's wait has its handlers in
    if ending == "two Ctrl-C":  # the second 0.3 s after the first: the launcher quits, its processes first
        launcher.send_signal(signal.SIGINT)
        time.sleep(0.3)  # the gap between two key presses, not a wait for readiness
        launcher.send_signal(signal.SIGINT)
    else:  # the terminal closed: passed on as SIGTERM; these processes do not stop by themselves
        launcher.send_signal(signal.SIGHUP)
    code, _, err = finished(launcher, 30)
    assert code == {"two Ctrl-C": 130, "SIGHUP": 129}[ending], err
    assert not any(alive(pid) for pid in pids)  # ended before the launcher did


@pytest.mark.slow
def test_a_worker_that_differs_refuses_and_a_lost_ps_ends_the_chief_within_the_timeout(tmp_path):
    """Started by hand, as docs/distributed.md starts them."""
    hosts, commands = launch.cluster_commands(1, 2, ["--plots=0", "--cluster_timeout=10", "--training_iters=1000000",
                                                     f"--out_dir={tmp_path}"], SCRIPT)
    commands["worker 1"] += ["--n_hidden=64", "--learning_rate=0.01"]
    processes = {name: subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                 for name, command in commands.items()}
    try:
        code, out, err = finished(processes["worker 1"], LIMIT_S)
        assert code == 2 and "Iter" not in out
        assert err.splitlines()[-1] == ("error: worker 1: its settings differ from the chief's: n_hidden = 64 here, "
                                        "128 in the chief's; learning_rate = 0.01 here, 0.001 in the chief's; start "
                                        "every process of a cluster with the same settings")
        wait_for_line(processes["worker 0"], r"^Iter ")  # asynchronous: the chief trains on alone
        processes["ps 0"].kill()
        killed_at = time.monotonic()
        code, _, err = finished(processes["worker 0"], 30)
        assert time.monotonic() - killed_at < 10  # cluster_timeout
    finally:
        for process in processes.values():
            process.kill()
    said = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1 and said == [f"error: worker 0: the parameter server ps 0 at {hosts['ps'][0]} has refused "
                                  f"connections for 5 s: it has ended, and the variables with it; the chief's "
                                  f"checkpoints are in its run folder"], err
