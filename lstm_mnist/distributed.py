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

No process outlives the cluster: each one started by the launcher ends when the launcher
does, and a worker ends within cluster_timeout once a parameter server is gone (Watchdog).
Every worker checks that its settings are the chief's before it trains.
TF's gRPC servers listen without authentication: run them on a trusted network only.
"""
import contextlib
import json
import os
import shlex
import signal
import socket
import sys
import threading
import time

from lstm_mnist import checkpoints, context, runs
from lstm_mnist.errors import ConfigError, Interrupted, TrainingError
from lstm_mnist.launch import LAUNCHER
from lstm_mnist.part import Part
from lstm_mnist.tf_setup import session_config, tf, tf1

WAIT_LINE_EVERY_S = 5  # a waiting worker says so this often
# What every process of a cluster must share: the variables' shapes, the math and the schedule.
AGREED = ("n_input", "n_steps", "n_hidden", "n_classes", "num_layers", "task", "permutation_seed", "cell",
          "forget_bias", "optimizer", "learning_rate", "rmsprop_decay", "rmsprop_momentum", "clip_norm", "batch_size",
          "training_iters", "sync_replicas")


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


def settings_variable():
    """The chief's agreed settings (AGREED, as JSON), on ps 0 where every worker reads them. Made in a
    graph of its own, outside the model's and its checkpoints."""
    with tf1.device("/job:ps/task:0"):
        return tf1.Variable("", trainable=False, name="cluster_settings", collections=[])


def agreed(cfg):
    return json.dumps({name: getattr(cfg, name) for name in AGREED}, sort_keys=True)


def publish_settings(target, role, cfg):
    """The chief's agreed settings, on ps 0 for the other workers to check theirs against."""
    with tf.Graph().as_default():
        publish = settings_variable().assign(agreed(cfg))
        with tf1.Session(target, config=worker_session_config(role, cfg)) as sess:
            sess.run(publish, options=deadline(cfg.cluster_timeout))


def check_settings(target, role, cfg):
    """Wait (up to cluster_timeout) for the chief's agreed settings, and refuse in one line where this
    worker's differ: half the gradients would come from another model or another pixel order."""
    with tf.Graph().as_default():
        variable = settings_variable()
        published = tf1.is_variable_initialized(variable)
        with tf1.Session(target, config=worker_session_config(role, cfg)) as sess:
            wait_until(lambda: None if sess.run(published) else "not yet", cfg.cluster_timeout,
                       lambda why: f"worker {role.index}: waiting for the chief's settings",
                       lambda why: f"worker {role.index}: the chief has not said its settings after "
                                   f"{cfg.cluster_timeout} s; is worker 0 running?")
            chief = json.loads(sess.run(variable).decode())
    mine = json.loads(agreed(cfg))
    differ = [f"{name} = {mine[name]} here, {chief[name]} in the chief's" for name in AGREED
              if mine[name] != chief[name]]
    if differ:
        raise ConfigError(f"worker {role.index}: its settings differ from the chief's: {'; '.join(differ)}; "
                          f"start every process of a cluster with the same settings")


def deadline(seconds):
    """RunOptions that end a session run with DeadlineExceededError after `seconds`."""
    return tf1.RunOptions(timeout_in_ms=int(seconds * 1000))


def worker_session_config(role, cfg):
    """A worker's sessions see the ps tasks and this worker only, so one never waits for another."""
    return session_config(cfg, device_filters=["/job:ps", f"/job:worker/task:{role.index}"])


def name_of(role):
    return f"{role.job} {role.index}"


# --------------------------------------------------------------- watching

class Watchdog:
    """A thread that ends this process when the cluster around it is gone, so that no process of a
    cluster outlives it:
    - the launcher that started it (launch.py) has ended, however (a second Ctrl-C, SIGHUP, SIGKILL):
      a worker is sent SIGTERM, which stops it at its next safe point (a chief saves a checkpoint
      after its step), a ps waits for the workers to be done; each exits cluster_timeout later if it
      has not ended by then;
    - for a worker, a parameter server it has reached has refused connections for half of
      cluster_timeout: the variables are gone with it, and the main thread may sit in a call that no
      signal ends (Session.close, in MonitoredSession's recovery), so the process says so and exits
      at once (exit code 1), within cluster_timeout of the loss. A worker that has told the parameter
      servers that it is done (`done`) no longer watches them."""

    POLL_S = 0.5

    def __init__(self, role, cluster_timeout, watch_ps):
        self.role, self.timeout = role, cluster_timeout
        launcher = os.environ.get(LAUNCHER)
        self.launcher = int(launcher) if launcher and launcher.isdigit() and int(launcher) == os.getppid() else None
        self.ps = list(role.cluster["ps"]) if watch_ps else []
        self.thread = threading.Thread(target=self.watch, name="cluster-watchdog", daemon=True)
        if self.launcher or self.ps:
            self.thread.start()

    def done(self):
        self.ps = []

    def launcher_ended(self):
        """A worker stops as on SIGTERM (the chief saves a checkpoint after its step); a ps keeps the
        variables for them meanwhile, and ends once they are done (ParameterServer.serve). Whatever
        has not ended cluster_timeout later exits then."""
        worker = self.role.job == "worker"
        print(f"{name_of(self.role)}: its launcher (pid {self.launcher}) has ended: "
              f"{'stopping' if worker else 'ending once the workers are'}", file=sys.stderr, flush=True)
        if worker:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(self.timeout)
        os._exit(128 + signal.SIGTERM)

    def watch(self):
        seen, refused_since = set(), {}  # a ps that has not answered yet is wait_for_ps's to wait for
        while True:
            time.sleep(self.POLL_S)
            if self.launcher and os.getppid() != self.launcher:
                self.launcher_ended()
            now = time.monotonic()
            for index, host in enumerate(self.ps):
                if connection_refused(host) is None:
                    seen.add(index)
                    refused_since.pop(index, None)
                elif index in seen and now - refused_since.setdefault(index, now) > self.timeout / 2:
                    print(f"error: {name_of(self.role)}: the parameter server ps {index} at {host} has refused "
                          f"connections for {self.timeout / 2:g} s: it has ended, and the variables with it; the "
                          f"chief's checkpoints are in its run folder", file=sys.stderr, flush=True)
                    os._exit(1)


def connection_refused(host):
    """None if HOST:PORT accepts a connection, else why not."""
    name, port = host.rsplit(":", 1)
    try:
        socket.create_connection((name, int(port)), timeout=2).close()
        return None
    except OSError as e:
        return e.strerror or str(e)


# --------------------------------------------------------------------- ps

class ParameterServer:
    """A ps task: it holds the variables and trains nothing (`trains` is False): the entry point
    calls `serve` instead of training."""

    trains = False

    def __init__(self, role, cfg):
        self.role, self.timeout = role, cfg.cluster_timeout
        context.tag_lines("")
        self.server = start_server(role)
        self.watchdog = Watchdog(role, cfg.cluster_timeout, watch_ps=False)

    def serve(self):
        """Hold the variables until every worker says it is done, or until no worker that is not
        done has accepted a connection for cluster_timeout seconds (they died without saying so),
        or a signal ends it."""
        role, workers = self.role, self.role.cluster["worker"]
        print(f"ps {role.index}: holding the variables at {role.cluster['ps'][role.index]} "
              f"until the {len(workers)} workers are done")
        context.defer()  # honoured between the waits below
        with tf.Graph().as_default() as graph:
            dequeue = done_queue(role.index, len(workers)).dequeue()
            # Short waits, so that a signal is seen between them (Python cannot act while TF blocks).
            poll = deadline(0.5)
            # This ps alone: a session that ran anything on a worker that has ended waits on it, past any deadline.
            mine = tf1.ConfigProto(device_filters=[f"/job:ps/task:{role.index}"])
            with tf1.Session(self.server.target, graph=graph, config=mine) as sess:
                done, last_seen = set(), dict.fromkeys(range(len(workers)), time.monotonic())
                while len(done) < len(workers):
                    if context.requested():
                        raise Interrupted(context.requested(), f"as ps {role.index}: the workers lose their "
                                                               f"variables; the chief's checkpoints are in its run "
                                                               f"folder")
                    try:
                        done.add(int(sess.run(dequeue, options=poll)))
                    except tf.errors.DeadlineExceededError:
                        pass
                    now, left = time.monotonic(), [index for index in range(len(workers)) if index not in done]
                    last_seen.update({index: now for index in left if connection_refused(workers[index]) is None})
                    if left and all(now - last_seen[index] > self.timeout for index in left):
                        raise TrainingError(f"ps {role.index}: no answer from worker {', '.join(map(str, left))} "
                                            f"({', '.join(workers[i] for i in left)}) for {self.timeout} s "
                                            f"(cluster_timeout), and it has not said it is done: it has stopped; "
                                            f"the chief's checkpoints are in its run folder")
        print(f"ps {role.index}: all workers are done")


# ----------------------------------------------------------------- workers

class Worker:
    """This process as a worker of a TF1 cluster (placement.py): its server, where its graph's
    variables go, its part of the data, its session and its part of the run.

    Every worker runs the script's own loop (train_lstm_mnist.train) on its shard
    of the training data and counts its own steps, from the global step at which
    it joined; the run ends for all when the global step reaches the last step,
    or when the chief sets the cluster's stop flag (on a signal).
    """

    trains = True
    data_position = False  # each worker reads its own shard: no one position belongs in the shared checkpoint

    def __init__(self, role, cfg):
        if cfg.keep_best:
            raise ConfigError("keep_best = True keeps its checkpoint on one process: leave it out in a cluster (its "
                              "chief keeps the latest checkpoints)")
        # SyncReplicasOptimizer's token queue runner is cancelled when the session closes: the normal end.
        context.quiet_thread_ends("QueueRunner", lambda: (tf.errors.CancelledError,))
        context.tag_lines(f"[worker {role.index}] " if role.index else "")
        self.role, self.cfg = role, cfg
        self.is_chief = role.index == 0
        self.workers = len(role.cluster["worker"])
        self.server = start_server(role)
        self.watchdog = Watchdog(role, cfg.cluster_timeout, watch_ps=True)
        self.sync_optimizer = None  # made by optimizer(), for the session's hook
        self.hook = None  # the session's ClusterHook, made with it by session()

    @property
    def keeps_run_folder(self):
        return self.is_chief

    @property
    def record(self):
        """What config.json says of the cluster."""
        return self.role.cluster

    def device(self):
        """Where the graph built in this block places its ops: variables on the ps tasks."""
        return tf1.device(tf1.train.replica_device_setter(worker_device=f"/job:worker/task:{self.role.index}",
                                                          cluster=tf1.train.ClusterSpec(self.role.cluster)))

    def optimizer(self, optimizer):
        """`optimizer` wrapped in SyncReplicasOptimizer for synchronous updates (one update per
        step, from every worker's gradient), as it is for asynchronous ones."""
        if self.cfg.sync_replicas:
            self.sync_optimizer = tf1.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=self.workers,
                                                                  total_num_replicas=self.workers)
        return self.sync_optimizer or optimizer

    def own_part(self, mnist):
        """`mnist` with this worker's shard as its training set: examples i, i + W, ... of worker i
        of W, shuffled with seed + i, so that together the workers read each example once an epoch."""
        shard = mnist.train.shard(self.role.index, self.workers, seed=self.cfg.seed + self.role.index)
        return mnist._replace(train=shard)

    def checkpoints(self, model, folder, train_data):
        return ChiefCheckpoints(self, model, folder, train_data)

    def parts(self):
        """A non-chief worker's run: it trains and prints its own lines until the global step ends
        the run; the chief keeps the run folder."""
        index = self.role.index
        return [WorkerDuties(self),
                runs.StopOnSignal("stopping after this step",
                                  lambda run, step: f"as worker {index} after its step {step.number}: the others go "
                                                    f"on; the chief's checkpoints are in its run folder",
                                  "after training: the checkpoints are in the chief's run folder")]

    def resume_command(self, run_dir):
        return f"the same commands with --resume={shlex.quote(run_dir)} for the chief"

    @contextlib.contextmanager
    def session(self, model, resume=None):
        """A MonitoredSession on the cluster: the chief initializes the variables or restores the
        checkpoint `resume` names (that very checkpoint); the others wait until it has, and check
        that their settings are the chief's. Every run in it has a deadline of cluster_timeout,
        and a run that fails for want of another process ends in one line that says which."""
        cfg, role = self.cfg, self.role
        with model.graph.as_default(), self.device():
            # Shared on the ps, yet a local variable: no checkpoint holds it, and the model is ready without it.
            stop_flag = tf1.Variable(False, trainable=False, name="cluster_stop",
                                     collections=[tf1.GraphKeys.LOCAL_VARIABLES])
            self.hook = ClusterHook(model.global_step, stop_flag, model.optimizer, cfg.cluster_timeout)
            hooks = [self.hook] + ([self.sync_optimizer.make_session_run_hook(self.is_chief)]
                                   if cfg.sync_replicas else [])
        checkpoint = checkpoints.find_checkpoint(resume)[0] if resume and self.is_chief else None
        if checkpoint:
            checkpoints.check_shapes(model, checkpoint)
        wait_for_ps(role, cfg.cluster_timeout)
        if self.is_chief:
            publish_settings(self.server.target, role, cfg)
        else:
            check_settings(self.server.target, role, cfg)
            wait_for_the_chief(self.server, model, role, cfg)
        creator = tf1.train.ChiefSessionCreator if self.is_chief else tf1.train.WorkerSessionCreator
        options = {"checkpoint_filename_with_path": checkpoint} if self.is_chief else {}
        with model.graph.as_default(), tf1.train.MonitoredSession(
                session_creator=creator(scaffold=tf1.train.Scaffold(init_op=model.init, saver=model.saving.saver),
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

    def plain_session(self, graph=None):
        """A session on the cluster outside the MonitoredSession, on `graph` (the default one if None)."""
        return tf1.Session(self.server.target, graph=graph, config=worker_session_config(self.role, self.cfg))

    def tell_the_ps_done(self):
        """Put this worker's index in every ps's done queue. Best effort, bounded by cluster_timeout:
        a ps that is gone has nothing left to wait for."""
        self.watchdog.done()  # a ps that ends once the workers are done is no loss
        cluster, timeout = self.role.cluster, self.cfg.cluster_timeout
        with tf.Graph().as_default():
            enqueues = [done_queue(i, len(cluster["worker"])).enqueue(self.role.index)
                        for i in range(len(cluster["ps"]))]
            with self.plain_session() as sess:
                try:
                    sess.run(enqueues, options=deadline(timeout))
                except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError):
                    print(f"worker {self.role.index}: could not tell the parameter servers that it is done; they "
                          f"stop by themselves after {timeout} s without workers", file=sys.stderr)


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


def wait_until(not_ready, timeout, waiting_line, give_up):
    """Poll `not_ready()` (None once ready, else why not) every 0.2 s, printing `waiting_line`
    every few seconds; after `timeout` seconds, TrainingError(give_up(why)); a signal stops it
    between polls."""
    started = last_said = time.monotonic()
    while (why := not_ready()) is not None:
        context.check()
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


def wait_for_the_chief(server, model, role, cfg):
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
                                 f"{timeout} s; is worker 0 running?")


# ------------------------------------------------------- the workers' parts

class ChiefCheckpoints(checkpoints.Checkpoints):
    """The chief's checkpoints: the session restored the checkpoint; checkpoints, named by the
    global step, are saved through a plain session of the cluster (a Saver cannot save through a
    MonitoredSession); a signal also stops the other workers; the run ends when the global step
    does; the ps is told when it is over, and a stalled cluster ends in one line with the last
    checkpoint and how to resume."""

    def __init__(self, cluster, model, folder, train_data):
        super().__init__(model, folder, train_data)
        self.cluster = cluster
        self.saving = cluster.plain_session(model.graph)

    def restore(self, run, session):
        if self.folder.checkpoint:
            print(f"Resuming {self.folder.run_dir} from {self.folder.checkpoint} "
                  f"(global step {self.cluster.hook.global_step})")
        return self.cluster.hook.global_step

    def going(self, run, more_steps):
        return cluster_going(self.cluster, run.last_step)

    def after_run(self, run, session, step):
        super().after_run(run, session, step)
        if step.stopping:
            self.saving.run(self.cluster.hook.raise_flag)

    def save(self, session, step):
        """A checkpoint named by the global step (`step` is the chief's own count)."""
        self.saved_step = step
        return checkpoints.save(self.saving, self.model, self.folder.run_dir, self.cluster.hook.global_step)

    def close(self, run, error):
        try:
            self.saving.close()
        finally:
            if run.started:  # the ps is there to tell
                self.cluster.tell_the_ps_done()
        if isinstance(error, ClusterStalled):
            last = checkpoints.latest_checkpoint(self.folder.run_dir) or "none was saved yet"
            resume = self.cluster.resume_command(self.folder.run_dir)
            raise TrainingError(f"{error}; last checkpoint: {last}; resume with {resume}") from None


class WorkerDuties(Part):
    """A non-chief worker's part of the run: it trains and prints its own lines until the global
    step ends the run; the chief keeps the run folder."""

    def __init__(self, cluster):
        self.cluster = cluster

    def restore(self, run, session):
        return self.cluster.hook.global_step

    def going(self, run, more_steps):
        return cluster_going(self.cluster, run.last_step)

    def close(self, run, error):
        if run.started:  # the ps is there to tell
            self.cluster.tell_the_ps_done()


def cluster_going(cluster, last_step):
    """Whether a worker may run another step: the global step is short of the last and the
    chief has not stopped the cluster. The worker's own count of steps does not decide: with
    synchronous replicas it drifts from the global step (stale gradients are dropped, one worker
    may give both of an update's), and a worker that left early would starve the others."""
    return cluster.hook.global_step < last_step and not cluster.hook.stopped
