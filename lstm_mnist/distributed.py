"""Beyond one machine: the same graph, data-parallel on TensorFlow's own distributed runtime.

TF1's between-graph replication with parameter servers, as in TensorFlow's
tools/dist_test/python/mnist_replica.py: every worker builds the tutorial's
graph with its variables placed on the ps tasks (replica_device_setter) and
trains through a MonitoredTrainingSession; task 0 is the chief, which
initializes or restores the variables, writes the run folder and checkpoints,
prints the tutorial's lines and scores the test set. Each worker reads its own
shard of the training data (examples i, i + W, i + 2W, ... for worker i of W),
so that together they go through each example once per epoch, as one process
would. Updates are asynchronous unless sync_replicas is set
(SyncReplicasOptimizer: one update per step from all workers' gradients).

    python train_lstm_mnist.py --job_name=ps --task_index=0 --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222
    python train_lstm_mnist.py --job_name=worker --task_index=0 --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222
    python train_lstm_mnist.py --local_cluster=1,2    # 1 ps + 2 workers on 127.0.0.1, for trying it out

TF's gRPC servers listen without authentication: run them on a trusted network only.
"""
import collections
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import data
from lstm_mnist import checkpoints, run_folder, scoring, settings
from lstm_mnist.errors import STOPS, ConfigError, Interrupted, TrainingError
from lstm_mnist.tf_setup import tf, tf1

Role = collections.namedtuple("Role", ["cluster", "job", "index"])  # cluster: {"ps": [...], "worker": [...]}
WAIT_LINE_EVERY_S = 5  # a waiting worker says so this often


# ------------------------------------------------------------ the cluster

def add_arguments(parser):
    group = parser.add_argument_group("beyond one machine (TF1 parameter servers and workers; see distributed.py)")
    group.add_argument("--job_name", choices=["ps", "worker"], help="this process's job")
    group.add_argument("--task_index", type=int, default=0, help="this process's index in its job (0: the chief)")
    group.add_argument("--ps_hosts", metavar="HOST:PORT,...", help="the parameter servers")
    group.add_argument("--worker_hosts", metavar="HOST:PORT,...", help="the workers")
    group.add_argument("--local_cluster", metavar="PS,WORKERS",
                       help="start PS parameter servers and WORKERS workers on 127.0.0.1 and wait for them")


def role_of(arguments):
    """This process's Role from the command line or TF_CONFIG, or None for a single process."""
    if arguments.job_name:
        if not (arguments.ps_hosts and arguments.worker_hosts):
            raise ConfigError("--job_name needs --ps_hosts and --worker_hosts (comma-separated HOST:PORT lists)")
        cluster = {"ps": host_list("--ps_hosts", arguments.ps_hosts),
                   "worker": host_list("--worker_hosts", arguments.worker_hosts)}
        return checked_role(cluster, arguments.job_name, arguments.task_index, "--task_index")
    if os.environ.get("TF_CONFIG"):
        return role_from_tf_config(os.environ["TF_CONFIG"])
    return None


def host_list(flag, text):
    hosts = text.split(",")
    for host in hosts:
        if not re.fullmatch(r"[\w.\-]+:\d{1,5}", host) or not 0 < int(host.rsplit(":", 1)[1]) < 65536:
            raise ConfigError(f"{flag}={text}: {host!r} is not HOST:PORT")
    return hosts


def role_from_tf_config(text):
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        job, index = task["type"], int(task.get("index", 0))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"TF_CONFIG is not a cluster description ({e}); expected "
                          f'{{"cluster": {{"ps": [...], "worker": [...]}}, '
                          f'"task": {{"type": ..., "index": ...}}}}') from e
    if set(cluster) != {"ps", "worker"}:
        raise ConfigError(f"TF_CONFIG's cluster has jobs {sorted(cluster)}; this script runs ps and worker jobs")
    cluster = {name: host_list(f"TF_CONFIG {name}", ",".join(hosts)) for name, hosts in cluster.items()}
    return checked_role(cluster, job, index, "TF_CONFIG task index")


def checked_role(cluster, job, index, name):
    if job not in ("ps", "worker"):
        raise ConfigError(f"job {job!r}: this script runs ps and worker jobs")
    if not 0 <= index < len(cluster[job]):
        raise ConfigError(f"{name} = {index} is not allowed: the {job} job has tasks 0 to {len(cluster[job]) - 1}")
    return Role(cluster, job, index)


def start_server(role):
    address = role.cluster[role.job][role.index]
    try:
        return tf1.train.Server(tf1.train.ClusterSpec(role.cluster), job_name=role.job, task_index=role.index)
    except (tf.errors.OpError, ValueError) as e:
        raise ConfigError(f"{role.job} {role.index}: cannot listen on {address} (TensorFlow: "
                          f"{str(e).splitlines()[0]}); is the port in use?") from e


def done_queue(ps_index, workers):
    """A queue on ps `ps_index`: every worker puts a token in it when it is done, and the ps
    exits once it has one from each (a ps's server.join() would never return)."""
    with tf1.device(f"/job:ps/task:{ps_index}"):
        return tf1.FIFOQueue(workers, tf.int32, shared_name=f"done_queue{ps_index}")


def tell_the_ps_done(server, cluster):
    with tf.Graph().as_default():
        enqueues = [done_queue(i, len(cluster["worker"])).enqueue(1) for i in range(len(cluster["ps"]))]
        with tf1.Session(server.target, config=session_config(cluster, None)) as sess:
            sess.run(enqueues)


def session_config(cluster, worker_index):
    """Sessions see the ps tasks and their own worker only, so one never waits for another worker."""
    filters = ["/job:ps"] + ([f"/job:worker/task:{worker_index}"] if worker_index is not None else [])
    return tf1.ConfigProto(device_filters=filters, allow_soft_placement=True)


# --------------------------------------------------------------------- ps

def run_ps(role):
    server = start_server(role)
    workers = len(role.cluster["worker"])
    print(f"ps {role.index}: holding the variables at {role.cluster['ps'][role.index]} "
          f"until the {workers} workers are done")
    STOPS.defer()  # honoured between the waits below
    with tf.Graph().as_default():
        dequeue = done_queue(role.index, workers).dequeue()
        # Short waits, so that a signal is seen between them (Python cannot act while TF blocks).
        poll = tf1.RunOptions(timeout_in_ms=500)
        with tf1.Session(server.target) as sess:
            done = 0
            while done < workers:
                if STOPS.requested:
                    raise Interrupted(STOPS.requested, f"as ps {role.index}: the workers lose their variables; "
                                                       f"the chief's checkpoints are in its run folder")
                try:
                    sess.run(dequeue, options=poll)
                    done += 1
                except tf.errors.DeadlineExceededError:
                    continue
    print(f"ps {role.index}: all workers are done")


# ----------------------------------------------------------------- workers

class Placement:
    """How a worker's graph sits on the cluster (build_graph's `cluster`)."""

    def __init__(self, role, cfg):
        self.workers = len(role.cluster["worker"])
        self.sync = cfg.sync_replicas
        self.device = tf1.train.replica_device_setter(worker_device=f"/job:worker/task:{role.index}",
                                                      cluster=tf1.train.ClusterSpec(role.cluster))
        self.sync_optimizer = None  # set by replicated(), for its session hook


def replicated(optimizer, cluster):
    """The optimizer as the cluster needs it: wrapped in SyncReplicasOptimizer for synchronous
    updates, as it is otherwise (and on one machine)."""
    if cluster is None or not cluster.sync:
        return optimizer
    cluster.sync_optimizer = tf1.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=cluster.workers,
                                                             total_num_replicas=cluster.workers)
    return cluster.sync_optimizer


def wait_until(not_ready, timeout, waiting_line, give_up):
    """Poll `not_ready()` (None once ready, else why not) every 0.2 s, printing `waiting_line`
    every few seconds; after `timeout` seconds, TrainingError(give_up(why))."""
    started = last_said = time.monotonic()
    while (why := not_ready()) is not None:
        STOPS.check()
        now = time.monotonic()
        if now - started > timeout:
            raise TrainingError(give_up(why))
        if now - last_said >= WAIT_LINE_EVERY_S:
            print(waiting_line(why), file=sys.stderr)
            last_said = now
        time.sleep(0.2)


def wait_for_ps(role, timeout):
    """Wait until every ps accepts connections; give up after `timeout` seconds."""
    for host in role.cluster["ps"]:
        wait_until(lambda host=host: connection_refused(host), timeout,
                   lambda why, host=host: f"worker {role.index}: waiting for the parameter server at {host}",
                   lambda why, host=host: f"worker {role.index}: no parameter server at {host} after {timeout} s "
                                          f"({why}); start it, or raise cluster_timeout")


def connection_refused(host):
    """None if HOST:PORT accepts a connection, else why not."""
    name, port = host.rsplit(":", 1)
    try:
        socket.create_connection((name, int(port)), timeout=2).close()
        return None
    except OSError as e:
        return e.strerror or str(e)


def wait_for_the_chief(server, model, role, timeout):
    """A non-chief worker waits here, polling often, until the chief has initialized (or
    restored) the variables: MonitoredTrainingSession alone would poll every 30 s."""
    with model.graph.as_default():
        uninitialized = tf1.report_uninitialized_variables(tf1.global_variables())  # local ones are this worker's
    with tf1.Session(server.target, graph=model.graph, config=session_config(role.cluster, role.index)) as sess:
        wait_until(lambda: [name.decode() for name in sess.run(uninitialized)] or None, timeout,
                   lambda names: f"worker {role.index}: waiting for the chief to initialize the variables "
                                 f"({len(names)} not yet, {names[0]} among them)",
                   lambda names: f"worker {role.index}: the chief has not initialized the variables after "
                                 f"{timeout} s; is worker 0 running?")


class StopHook(tf1.train.SessionRunHook):
    """Stops a worker when the chief set the cluster's stop flag, or on SIGINT/SIGTERM; on the
    chief, a signal also sets the flag, so that every worker stops."""

    def __init__(self, flag, is_chief):
        self.flag, self.is_chief = flag, is_chief
        self.raise_flag = flag.assign(True) if is_chief else None

    def before_run(self, run_context):
        return tf1.train.SessionRunArgs(self.flag)

    def after_run(self, run_context, run_values):
        if STOPS.requested and self.is_chief:
            run_context.session.run(self.raise_flag)
        if run_values.results or STOPS.requested:
            run_context.request_stop()


def run_worker(role, cfg, resume, script):
    """Train as one worker of the cluster; the chief (task 0) also keeps the run folder and scores."""
    quiet_queue_runners_at_close()
    is_chief = role.index == 0
    workers = len(role.cluster["worker"])
    server = start_server(role)
    STOPS.now("before training started: nothing was saved")
    mnist = script.load_mnist(cfg)
    shard = data.shard(mnist.train, role.index, workers, seed=cfg.seed + role.index)
    cluster = Placement(role, cfg)
    model = script.build_graph(cfg, cluster)
    with model.graph.as_default(), tf1.device(cluster.device):
        # Shared on the ps, yet a local variable: no checkpoint holds it, and the model is ready without it.
        stop_flag = tf1.Variable(False, trainable=False, name="cluster_stop",
                                 collections=[tf1.GraphKeys.LOCAL_VARIABLES])
        hooks = [tf1.train.StopAtStepHook(last_step=settings.last_step(cfg)),
                 StopHook(stop_flag, is_chief)]
        if cfg.sync_replicas:
            hooks.append(cluster.sync_optimizer.make_session_run_hook(is_chief))
    wait_for_ps(role, cfg.cluster_timeout)
    if not is_chief:
        wait_for_the_chief(server, model, role, cfg.cluster_timeout)
    run_dir = chief_run_dir(cfg, resume, role.cluster) if is_chief else None
    STOPS.defer(run_folder.STEP_NOTICE if is_chief else "stopping after this step")
    with model.graph.as_default(), tf1.train.MonitoredTrainingSession(
            master=server.target, is_chief=is_chief, checkpoint_dir=run_dir, hooks=hooks,
            scaffold=tf1.train.Scaffold(saver=model.checkpoints.saver), save_checkpoint_steps=cfg.checkpoint_every,
            save_summaries_steps=None, save_summaries_secs=None, log_step_count_steps=None,
            stop_grace_period_secs=2, save_graph_def=False, config=session_config(role.cluster, role.index)) as sess:
        done = sess.run(model.global_step)  # after a restore, where the run stands
        log = run_folder.RunLog(run_dir, model.graph, done, cfg) if is_chief else None
        train_steps(sess, model, shard, cfg, role, log, done)
    STOPS.now("after training: the checkpoints are in the chief's run folder")
    if is_chief:
        log.close()
        score(server, model, mnist, cfg, role, run_dir, script)
    tell_the_ps_done(server, role.cluster)
    if STOPS.requested:
        where = f": checkpoint saved in {run_dir}\nResume with: {resume_command(run_dir)}" if is_chief else ""
        raise Interrupted(STOPS.requested, f"as worker {role.index}{where}")


def quiet_queue_runners_at_close():
    """SyncReplicasOptimizer's token queue runner is cancelled when the session closes, and its
    thread prints that as a traceback; it is the normal end, not an error."""
    previous = threading.excepthook

    def hook(args):
        if not (isinstance(args.exc_value, tf.errors.CancelledError) and args.thread.name.startswith("QueueRunner")):
            previous(args)
    threading.excepthook = hook


def chief_run_dir(cfg, resume, cluster):
    run_dir = checkpoints.find_checkpoint(resume)[1] if resume else run_folder.create_run_dir(cfg.out_dir)
    run_folder.save_settings(run_dir, cfg, cluster)
    return run_dir


def train_steps(sess, model, shard, cfg, role, log, done):
    """The tutorial's loop on this worker's shard, from global step `done` until the last."""
    logged = done
    local_step = 0
    while not sess.should_stop():
        batch_x, batch_y = shard.next_batch(cfg.batch_size)
        feed = {model.x: batch_x.reshape((cfg.batch_size, cfg.n_steps, cfg.n_input)), model.y: batch_y}
        _, step = sess.run([model.optimizer, model.global_step], feed_dict=feed)
        local_step += 1
        due = step // cfg.display_step > logged // cfg.display_step if log else local_step % cfg.display_step == 0
        if due and not sess.should_stop():
            acc, loss = sess.run([model.accuracy, model.cost], feed_dict=feed)
            if log:  # the chief prints the tutorial's line, at the global step
                print(f"Iter {step * cfg.batch_size}, Minibatch Loss= {loss:.6f}, Training Accuracy= {acc:.5f}")
                log.write(step, loss, acc)
                logged = step
            else:
                print(f"[worker {role.index}] step {local_step} (global step {step}): minibatch loss {loss:.6f}, "
                      f"accuracy {acc:.5f}")


def score(server, model, mnist, cfg, role, run_dir, script):
    """The tutorial's test line and the whole test set, with the trained variables on the ps tasks."""
    print("Optimization Finished!")
    with tf1.Session(server.target, graph=model.graph, config=session_config(role.cluster, role.index)) as sess:
        script.score_test_images(sess, model, mnist, cfg)
        scoring.score_full_test_set(sess, model, mnist, cfg)
    print(f"Run folder: {run_dir}")


def resume_command(run_dir):
    return f"the same commands with --resume={shlex.quote(run_dir)} for the chief"


# ------------------------------------------------------------ a local cluster

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
