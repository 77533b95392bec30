"""Beyond one machine: real ps and worker processes on 127.0.0.1, each bounded in time."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_main, tiny_checkpoint, tiny_config

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, distributed, launch

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
    assert re.search(r"^\[worker 1\] Iter 1000, Minibatch Loss= \d+\.\d{6}, Training Accuracy= ", out, re.M)
    assert re.search(r"^\[worker 1\] Train Images:  \(55000, 784\)$", out, re.M)
    assert "Optimization Finished!" in out and "ps 0: all workers are done" in out
    (run_dir,) = [str(p) for p in out_dir.iterdir()]
    assert out.splitlines()[-2] == f"Run folder: {run_dir}"  # then the ps's last line
    step = int(checkpoints.latest_checkpoint(run_dir).rsplit("-", 1)[1])
    assert 80 <= step <= 82  # the last step, plus what the other worker had in flight (async)
    record = json.load(open(os.path.join(run_dir, "config.json")))
    assert record["config"]["sync_replicas"] is False
    assert len(record["cluster"]["ps"]) == 1 and len(record["cluster"]["worker"]) == 2


@pytest.mark.slow
def test_synchronous_replicas_run_every_workers_steps_and_stop_together(tmp_path):
    code, out, err = run_cluster("--local_cluster=1,2", "--training_iters=4100", "--sync_replicas=true",
                                 f"--out_dir={tmp_path}")
    assert code == 0, err
    assert "Traceback" not in err
    # The chief runs the loop's 40 steps; each global step applies both workers' gradients, less the ones
    # SyncReplicasOptimizer drops as stale while the other worker starts.
    assert re.findall(r"^Iter (\d+),", out, flags=re.M) == ["1000", "2000", "3000", "4000"]
    assert re.search(r"^\[worker 1\] Iter 1000,", out, flags=re.M)
    losses = iter_losses(out)
    assert losses[-1] < losses[0]
    (run_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert 30 <= int(checkpoints.latest_checkpoint(run_dir).rsplit("-", 1)[1]) <= 40


@pytest.mark.slow
def test_a_cluster_checkpoint_restores_in_one_process(async_run, mnist, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(next(async_run[3].iterdir()), run_dir)
    assert predict.main([run_dir]) == 0
    assert "Full test set:" in capsys.readouterr().out
    results = script.train(tiny_config(tmp_path, training_iters=10000), mnist, resume=run_dir)
    assert results["steps"] == 99 and results["run_dir"] == run_dir


@pytest.mark.slow
def test_a_single_process_checkpoint_resumes_in_a_cluster_from_the_checkpoint_named(tiny_run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[1]["run_dir"], run_dir)
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


def test_tf_config_gives_the_role(monkeypatch):
    cluster = {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    none = types.SimpleNamespace(job_name=None)
    assert distributed.role_of(none) == distributed.Role(cluster, "worker", 1)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], **cluster}, "task": {"type": "chief"}}))
    with pytest.raises(distributed.ConfigError, match="this script runs ps and worker jobs"):
        distributed.role_of(none)


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
