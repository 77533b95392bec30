"""Where a training process stands: alone (the tutorial's one process), or a task of a TF1 cluster.

Decided once (`of`), from the command line or TF_CONFIG, and handed to the graph (`device`,
`optimizer`, `data_position`), the data (`own_part`), the session (`session`) and the run
(`keeps_run_folder`, `record`, `checkpoints`, `parts`, `resume_command`) as one object: Alone
here, or a cluster's worker (distributed.Worker, its chief among them); a parameter server
runs no training (distributed.run_ps). Nothing here imports TensorFlow: a single process, and
a command line with a mistake, never load TensorFlow's distributed runtime.
"""
import collections
import contextlib
import json
import os
import re
import shlex
import sys

from lstm_mnist import checkpoints
from lstm_mnist.errors import ConfigError

Role = collections.namedtuple("Role", ["cluster", "job", "index"])  # cluster: {"ps": [...], "worker": [...]}


class Alone:
    """The tutorial's single process: its own variables, all the training data, a plain Session (the
    script's), a run folder with checkpoints that hold the data's position."""

    trains = True
    keeps_run_folder = True
    data_position = True  # checkpoints hold the training data's position
    record = None  # what config.json says of a cluster: nothing

    def device(self):
        return contextlib.nullcontext()

    def optimizer(self, optimizer):
        return optimizer

    def own_part(self, mnist):
        return mnist

    def checkpoints(self, model, folder, train_data):
        return checkpoints.Checkpoints(model, folder, train_data)

    def resume_command(self, run_dir):
        return f"python {shlex.quote(sys.argv[0])} --resume={shlex.quote(run_dir)}"


ALONE = Alone()


def of(arguments, cfg):
    """This process's place: ALONE, or (--job_name, TF_CONFIG) its place in a cluster with the settings
    `cfg`: a distributed.ParameterServer, which trains nothing, or a distributed.Worker."""
    role = role_of(arguments)
    if role is None:
        return ALONE
    from lstm_mnist import distributed  # TensorFlow's distributed runtime, for a cluster alone
    return (distributed.ParameterServer if role.job == "ps" else distributed.Worker)(role, cfg)


def add_arguments(parser):
    """The command line of a cluster's process (docs/distributed.md)."""
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
