"""Beyond one machine: the same graph, data-parallel on TensorFlow's own distributed runtime.

TF1's between-graph replication with parameter servers, as in TensorFlow's
tools/dist_test/python/mnist_replica.py: every worker builds the tutorial's
graph with its variables placed on the ps tasks (replica_device_setter) and
runs the script's own loop (train_lstm_mnist.train) through a MonitoredSession;
task 0 is the chief, which initializes the variables or restores the checkpoint
given, and keeps the run folder (checkpoints, metrics, validation, the test set,
plots) as a single process does. Each worker reads its own shard of the
training data (examples i, i + W, i + 2W, ... for worker i of W), so that
together they go through each example once per epoch, as one process would.
Updates are asynchronous unless sync_replicas is set (SyncReplicasOptimizer:
one update per step from all workers' gradients).

    python train_lstm_mnist.py --job_name=ps --task_index=0 --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222
    python train_lstm_mnist.py --job_name=worker --task_index=0 --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222
    python train_lstm_mnist.py --local_cluster=1,2    # 1 ps + 2 workers on 127.0.0.1 (launch.py)

TF's gRPC servers listen without authentication: run them on a trusted network only.
"""
import collections
import contextlib
import json
import os
import re
import shlex
import socket
import sys
import time

import data
from lstm_mnist import checkpoints, errors
from lstm_mnist.errors import ConfigError, Interrupted, TrainingError
from lstm_mnist.part import Part
from lstm_mnist.tf_setup import session_config, tf, tf1

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
    """A queue on ps `ps_index`: every worker puts its index in it when it is done, and the ps
    exits once it has one from each (a ps's server.join() would never return)."""
    with tf1.device(f"/job:ps/task:{ps_index}"):
        return tf1.FIFOQueue(workers, tf.int32, shared_name=f"done_queue{ps_index}")


def tell_the_ps_done(server, role, cfg):
    """Put this worker's index in every ps's done queue. Best effort, bounded by cluster_timeout:
    a ps that is gone has nothing left to wait for."""
    cluster = role.cluster
    with tf.Graph().as_default():
        enqueues = [done_queue(i, len(cluster["worker"])).enqueue(role.index) for i in range(len(cluster["ps"]))]
        with tf1.Session(server.target, config=worker_session_config(role, cfg)) as sess:
            try:
                sess.run(enqueues, options=deadline(cfg.cluster_timeout))
            except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError):
                print(f"worker {role.index}: could not tell the parameter servers that it is done; they stop by "
                      f"themselves after {cfg.cluster_timeout} s without workers", file=sys.stderr)


def deadline(seconds):
    """RunOptions that end a session run with DeadlineExceededError after `seconds`."""
    return tf1.RunOptions(timeout_in_ms=int(seconds * 1000))


def worker_session_config(role, cfg):
    """A worker's sessions see the ps tasks and this worker only, so one never waits for another."""
    return session_config(cfg, device_filters=["/job:ps", f"/job:worker/task:{role.index}"])


# --------------------------------------------------------------------- ps

def run_ps(role, timeout, stops):
    """Hold the variables until every worker says it is done, or until no worker that is not
    done has accepted a connection for `timeout` seconds (they died without saying so), or a
    signal (`stops`, the entry point's errors.StopRequests) ends it."""
    write_whole_lines(role)
    server = start_server(role)
    workers = role.cluster["worker"]
    print(f"ps {role.index}: holding the variables at {role.cluster['ps'][role.index]} "
          f"until the {len(workers)} workers are done")
    stops.defer()  # honoured between the waits below
    with tf.Graph().as_default():
        dequeue = done_queue(role.index, len(workers)).dequeue()
        # Short waits, so that a signal is seen between them (Python cannot act while TF blocks).
        poll = deadline(0.5)
        with tf1.Session(server.target) as sess:
            done, last_seen = set(), dict.fromkeys(range(len(workers)), time.monotonic())
            while len(done) < len(workers):
                if stops.requested:
                    raise Interrupted(stops.requested, f"as ps {role.index}: the workers lose their variables; "
                                                       f"the chief's checkpoints are in its run folder")
                try:
                    done.add(int(sess.run(dequeue, options=poll)))
                except tf.errors.DeadlineExceededError:
                    pass
                now, left = time.monotonic(), [index for index in range(len(workers)) if index not in done]
                last_seen.update({index: now for index in left if connection_refused(workers[index]) is None})
                if left and all(now - last_seen[index] > timeout for index in left):
                    raise TrainingError(f"ps {role.index}: no answer from worker {', '.join(map(str, left))} "
                                        f"({', '.join(workers[i] for i in left)}) for {timeout} s (cluster_timeout), "
                                        f"and it has not said it is done: it has stopped; the chief's checkpoints "
                                        f"are in its run folder")
    print(f"ps {role.index}: all workers are done")


# ----------------------------------------------------------------- workers

class Cluster:
    """This process as a worker of a TF1 cluster: its server, where its graph's variables go
    (build_graph's `cluster`), its part of the data, its session and its part of the run.

    Every worker runs the script's own loop (train_lstm_mnist.train) on its shard
    of the training data and counts its own steps, from the global step at which
    it joined; the run ends for all when the global step reaches the last step,
    or when the chief sets the cluster's stop flag (on a signal).
    """

    def __init__(self, role, cfg, stops):
        # SyncReplicasOptimizer's token queue runner is cancelled when the session closes: the normal end.
        errors.quiet_thread_ends("QueueRunner", tf.errors.CancelledError)
        self.role, self.cfg = role, cfg
        self.stops = stops  # the entry point's errors.StopRequests: a signal stops the waits for the others
        self.is_chief = role.index == 0
        self.workers = len(role.cluster["worker"])
        self.sync = cfg.sync_replicas
        self.server = start_server(role)
        self.device = tf1.train.replica_device_setter(worker_device=f"/job:worker/task:{role.index}",
                                                      cluster=tf1.train.ClusterSpec(role.cluster))
        self.sync_optimizer = None  # made by replicated(), for the session's hook
        self.hook = None  # the session's ClusterHook, made with it by session()
        write_whole_lines(role)

    def replicated(self, optimizer):
        """`optimizer` wrapped in SyncReplicasOptimizer for synchronous updates (one update per
        step, from every worker's gradient), as it is for asynchronous ones."""
        if self.sync:
            self.sync_optimizer = tf1.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=self.workers,
                                                                  total_num_replicas=self.workers)
        return self.sync_optimizer or optimizer

    def own_part(self, mnist):
        """`mnist` with this worker's shard as its training set: examples i, i + W, ... of worker i
        of W, shuffled with seed + i, so that together the workers read each example once an epoch."""
        shard = data.shard(mnist.train, self.role.index, self.workers, seed=self.cfg.seed + self.role.index)
        return mnist._replace(train=shard)

    @contextlib.contextmanager
    def session(self, model, resume=None):
        """A MonitoredSession on the cluster: the chief initializes the variables or restores the
        checkpoint `resume` names (that very checkpoint); the others wait until it has. Every run
        in it has a deadline of cluster_timeout, and a run that fails for want of another process
        ends in one line that says which."""
        cfg, role = self.cfg, self.role
        with model.graph.as_default(), tf1.device(self.device):
            # Shared on the ps, yet a local variable: no checkpoint holds it, and the model is ready without it.
            stop_flag = tf1.Variable(False, trainable=False, name="cluster_stop",
                                     collections=[tf1.GraphKeys.LOCAL_VARIABLES])
            self.hook = ClusterHook(model.global_step, stop_flag, model.optimizer, cfg.cluster_timeout)
            hooks = [self.hook] + ([self.sync_optimizer.make_session_run_hook(self.is_chief)] if self.sync else [])
        checkpoint = checkpoints.find_checkpoint(resume)[0] if resume and self.is_chief else None
        if checkpoint:
            checkpoints.check_shapes(model, checkpoint)
        wait_for_ps(role, cfg.cluster_timeout, self.stops)
        if not self.is_chief:
            wait_for_the_chief(self.server, model, role, cfg, self.stops)
        creator = tf1.train.ChiefSessionCreator if self.is_chief else tf1.train.WorkerSessionCreator
        options = {"checkpoint_filename_with_path": checkpoint} if self.is_chief else {}
        with model.graph.as_default(), tf1.train.MonitoredSession(
                session_creator=creator(scaffold=tf1.train.Scaffold(saver=model.saving.saver),
                                        master=self.server.target, config=worker_session_config(role, cfg),
                                        **options),
                hooks=hooks, stop_grace_period_secs=2) as sess:
            try:
                yield sess
            except tf.errors.DeadlineExceededError:
                raise ClusterStalled(stalled_line(role, cfg)) from None
            except (tf.errors.OutOfRangeError, tf.errors.CancelledError):  # MonitoredSession would swallow these
                raise ClusterStalled(f"worker {role.index}: the cluster's queues were closed during a step: "
                                     f"the chief has ended or stopped before this worker") from None

    def tell_the_ps_done(self):
        tell_the_ps_done(self.server, self.role, self.cfg)


def stalled_line(role, cfg):
    """Why a run got no answer within cluster_timeout: the processes that refuse connections."""
    gone = [f"{name} at {host}" for name, host in other_processes(role) if connection_refused(host) is not None]
    waited = "gradients from every worker and the chief's update" if cfg.sync_replicas else "the parameter servers"
    return (f"worker {role.index}: a step got no answer for {cfg.cluster_timeout} s (cluster_timeout); "
            f"it waits for {waited}: "
            + (f"{' and '.join(gone)} {'does' if len(gone) == 1 else 'do'} not answer: stopped?" if gone else
               "every process answers, so they are slower than that: raise cluster_timeout"))


def other_processes(role):
    """(name, HOST:PORT) of every other process of the cluster."""
    return [(f"{job} {index}", host)
            for job in ("ps", "worker") for index, host in enumerate(role.cluster[job])
            if (job, index) != (role.job, role.index)]


class ClusterStalled(TrainingError):
    """A run on the cluster got no answer in time, or its queues were closed under it."""


class ClusterHook(tf1.train.SessionRunHook):
    """With every run of the loop's session: a deadline of `timeout_s`, and the global step and
    the stop flag, read for `going` (no extra round trip to the ps, and no request_stop, after
    which the session would refuse to score the test set).

    After a training step the global step is read once the step's update is done, as
    StopAtStepHook re-reads it: a read beside the step, unordered, can see the step from
    before, and in sync mode a step waits for its update's token.
    """

    def __init__(self, global_step, stop_flag, train_op, timeout_s):
        with tf1.control_dependencies([train_op]):
            after_the_step = global_step.read_value()
        self.train_op = train_op
        self.fetches, self.fetches_after_a_step = [global_step, stop_flag], [after_the_step, stop_flag]
        self.raise_flag = stop_flag.assign(True)
        self.options = deadline(timeout_s)
        self.global_step, self.stopped = 0, False

    def after_create_session(self, session, coord):
        self.global_step, self.stopped = session.run(self.fetches, options=self.options)

    def before_run(self, run_context):
        training = run_context.original_args.fetches is self.train_op
        return tf1.train.SessionRunArgs(self.fetches_after_a_step if training else self.fetches, options=self.options)

    def after_run(self, run_context, run_values):
        self.global_step, self.stopped = run_values.results


def replicated(optimizer, cluster):
    """The optimizer as the cluster needs it (Cluster.replicated), or as it is on one machine."""
    return cluster.replicated(optimizer) if cluster else optimizer


def wait_until(not_ready, timeout, waiting_line, give_up, stops):
    """Poll `not_ready()` (None once ready, else why not) every 0.2 s, printing `waiting_line`
    every few seconds; after `timeout` seconds, TrainingError(give_up(why)); a signal (`stops`)
    stops it between polls."""
    started = last_said = time.monotonic()
    while (why := not_ready()) is not None:
        stops.check()
        now = time.monotonic()
        if now - started > timeout:
            raise TrainingError(give_up(why))
        if now - last_said >= WAIT_LINE_EVERY_S:
            print(waiting_line(why), file=sys.stderr)
            last_said = now
        time.sleep(0.2)


def wait_for_ps(role, timeout, stops):
    """Wait until every ps accepts connections; give up after `timeout` seconds."""
    for host in role.cluster["ps"]:
        wait_until(lambda host=host: connection_refused(host), timeout,
                   lambda why, host=host: f"worker {role.index}: waiting for the parameter server at {host}",
                   lambda why, host=host: f"worker {role.index}: no parameter server at {host} after {timeout} s "
                                          f"({why}); start it, or raise cluster_timeout", stops)


def connection_refused(host):
    """None if HOST:PORT accepts a connection, else why not."""
    name, port = host.rsplit(":", 1)
    try:
        socket.create_connection((name, int(port)), timeout=2).close()
        return None
    except OSError as e:
        return e.strerror or str(e)


def wait_for_the_chief(server, model, role, cfg, stops):
    """A non-chief worker waits here, polling often, until the chief has initialized (or
    restored) the variables: MonitoredTrainingSession alone would poll every 30 s."""
    with model.graph.as_default():
        uninitialized = tf1.report_uninitialized_variables(tf1.global_variables())  # local ones are this worker's
    timeout = cfg.cluster_timeout
    with tf1.Session(server.target, graph=model.graph, config=worker_session_config(role, cfg)) as sess:
        wait_until(lambda: [name.decode() for name in sess.run(uninitialized)] or None, timeout,
                   lambda names: f"worker {role.index}: waiting for the chief to initialize the variables "
                                 f"({len(names)} not yet, {names[0]} among them)",
                   lambda names: f"worker {role.index}: the chief has not initialized the variables after "
                                 f"{timeout} s; is worker 0 running?", stops)


def write_whole_lines(role):
    """This process's output in whole lines, so that the lines of a cluster's processes, in one
    terminal or pipe (--local_cluster), never interleave mid-line; a non-chief worker's stdout
    lines begin with its tag ("[worker 1] Iter 1000, ..."), to say whose they are."""
    tag = f"[worker {role.index}] " if role.job == "worker" and role.index else ""
    sys.stdout, sys.stderr = WholeLines(sys.stdout, tag), WholeLines(sys.stderr)


class WholeLines:
    """A stream that writes whole lines only, each begun with `tag`. print() writes a line's pieces
    and its newline apart, and written so, the lines of processes that share a pipe interleaved
    mid-line ("Testing Accuracy:[worker 1] Testing Accuracy: 0.60" in 2 of 40 runs)."""

    def __init__(self, stream, tag=""):
        self.stream, self.tag = stream, tag
        self.partial, self.line_begun = "", False  # the line so far, and whether its tag went out (flush)

    def write(self, text):
        *lines, self.partial = (self.partial + text).split("\n")
        if lines:
            tagged = [("" if k == 0 and self.line_begun else self.tag) + line for k, line in enumerate(lines)]
            self.stream.write("".join(line + "\n" for line in tagged))
            self.line_begun = False
        return len(text)

    def flush(self):
        if self.partial:  # asked for: the line so far goes out now, and its rest later, untagged
            self.stream.write(("" if self.line_begun else self.tag) + self.partial)
            self.partial, self.line_begun = "", True
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


# ------------------------------------------------------- the worker's part

class ChiefDuties(Part):
    """The chief's part of the run: the session restored the checkpoint; checkpoints, named by the
    global step, are saved through a plain session of the cluster (`save`, for the run's
    Checkpoints: a Saver cannot save through a MonitoredSession); a signal also stops the other
    workers; the run ends when the global step does; the ps is told when it is over, and a
    stalled cluster ends in one line with the last checkpoint and how to resume."""

    def __init__(self, cluster, model, folder):
        self.cluster, self.model, self.folder = cluster, model, folder  # folder: a run_folder.RunFolder
        self.saving = tf1.Session(cluster.server.target, graph=model.graph,
                                  config=worker_session_config(cluster.role, cluster.cfg))
        self.resume_command = f"the same commands with --resume={shlex.quote(folder.run_dir)} for the chief"

    def restore(self, run, sess):
        if self.folder.checkpoint:
            print(f"Resuming {self.folder.run_dir} from {self.folder.checkpoint} "
                  f"(global step {self.cluster.hook.global_step})")
        return self.cluster.hook.global_step

    def going(self, run, more_steps):
        return cluster_going(self.cluster, run.last_step)

    def after_step(self, run, sess, step):
        if step.stopping:
            self.saving.run(self.cluster.hook.raise_flag)

    def save(self, sess, step):
        """A checkpoint named by the global step (`step` is the chief's own count)."""
        return checkpoints.save(self.saving, self.model, self.folder.run_dir, self.cluster.hook.global_step)

    def close(self, run, error):
        try:
            self.saving.close()
        finally:
            if run.started:  # the ps is there to tell
                self.cluster.tell_the_ps_done()
        if isinstance(error, ClusterStalled):
            last = checkpoints.latest_checkpoint(self.folder.run_dir) or "none was saved yet"
            raise TrainingError(f"{error}; last checkpoint: {last}; resume with {self.resume_command}") from None


class WorkerDuties(Part):
    """A non-chief worker's part of the run: it trains and prints its own lines until the global
    step ends the run; the chief keeps the run folder."""

    def __init__(self, cluster):
        self.cluster = cluster

    def restore(self, run, sess):
        return self.cluster.hook.global_step

    def going(self, run, more_steps):
        return cluster_going(self.cluster, run.last_step)

    def close(self, run, error):
        if run.started:  # the ps is there to tell
            self.cluster.tell_the_ps_done()


def worker_stop_lines(cluster):
    """What a signal does on a non-chief worker (errors.StopOnSignal's three texts)."""
    return ("stopping after this step",
            lambda run, step: f"as worker {cluster.role.index} after its step {step.number}: the others go on; "
                              f"the chief's checkpoints are in its run folder",
            "after training: the checkpoints are in the chief's run folder")


def cluster_going(cluster, last_step):
    """Whether a worker may run another step: the global step is short of the last and the
    chief has not stopped the cluster. The worker's own count of steps does not decide: with
    synchronous replicas it drifts from the global step (stale gradients are dropped, one worker
    may give both of an update's), and a worker that left early would starve the others."""
    return cluster.hook.global_step < last_step and not cluster.hook.stopped
