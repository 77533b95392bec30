"""A run's metrics log: metrics.csv and the TensorBoard events, one row per logged step."""
import contextlib
import csv
import io
import os
import sys
import time

from lstm_mnist import context
from lstm_mnist.errors import cannot_write
from lstm_mnist.files import write_atomically
from lstm_mnist.part import Part
from lstm_mnist.tf_setup import tf, tf1

METRIC_FIELDS = ["step", "examples", "minibatch_loss", "minibatch_accuracy", "validation_accuracy", "seconds"]
OLDER_FIELDS = METRIC_FIELDS[:-1]  # metrics.csv before its seconds (training time so far): still read


class RunLog:
    """metrics.csv and TensorBoard events of a run folder, appended as training goes.

    Opening at `step` after a resume drops what was logged beyond that step by a
    run that stopped without a checkpoint there, so the logs match the model.
    """

    def __init__(self, run_dir, graph, step, batch_size):
        self.path = os.path.join(run_dir, "metrics.csv")
        self.batch_size = batch_size
        rows = [row for row in read_metrics(self.path) if int(row["step"]) <= step]
        # training seconds before this run: the last row's (a run folder of an older version has none)
        self.seconds_before = next((float(row["seconds"]) for row in reversed(rows) if row["seconds"]), 0.0)
        self.started = time.perf_counter()
        kept = io.StringIO()
        metrics_writer(kept).writeheader()
        metrics_writer(kept).writerows(rows)
        try:
            write_atomically(self.path, kept.getvalue())
        except OSError as e:
            raise cannot_write(self.path, e) from e
        self.file = open(self.path, "a", newline="", encoding="utf-8")
        self.csv = metrics_writer(self.file)
        self.events = tf1.summary.FileWriter(run_dir, graph=graph if step == 0 else None)
        if step:
            # Tells TensorBoard to discard events logged beyond this step before.
            self.events.add_session_log(tf1.SessionLog(status=tf1.SessionLog.START), global_step=step * batch_size)

    def write(self, step, loss=None, accuracy=None, validation_accuracy=None):
        examples = step * self.batch_size
        seconds = self.seconds_before + time.perf_counter() - self.started
        try:
            self.csv.writerow({"step": step, "examples": examples,
                               "minibatch_loss": "" if loss is None else f"{loss:.6f}",
                               "minibatch_accuracy": "" if accuracy is None else f"{accuracy:.5f}",
                               "validation_accuracy": "" if validation_accuracy is None else
                               f"{validation_accuracy:.5f}", "seconds": f"{seconds:.1f}"})
            self.file.flush()
        except OSError as e:
            raise cannot_write(self.path, e) from e
        scalars = {"minibatch/loss": loss, "minibatch/accuracy": accuracy, "validation/accuracy": validation_accuracy}
        values = [tf1.Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items() if v is not None]
        with events_written(self.events):
            self.events.add_summary(tf1.Summary(value=values), global_step=examples)
            self.events.flush()

    def close(self):
        # A failure here was reported by write(), which flushes both at every row: closing adds nothing to say.
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(*events_errors()):
            self.events.close()


class MetricsLog(Part):
    """A run's part: the metrics log (RunLog) of every displayed or validated step."""

    def __init__(self, run_dir, batch_size):
        self.run_dir, self.batch_size, self.log = run_dir, batch_size, None

    def after_create_session(self, run, session):
        context.quiet_thread_ends("EventLoggerThread", events_errors)  # write() reports them
        self.log = RunLog(self.run_dir, run.model.graph, run.done, self.batch_size)

    def after_run(self, run, session, step):
        if step.displayed or step.validation_accuracy is not None:
            self.log.write(step.number, step.loss if step.displayed else None, step.acc if step.displayed else None,
                           step.validation_accuracy)

    def end(self, run, session):
        self.close(run, None)

    def close(self, run, error):
        if self.log:
            self.log.close()
            self.log = None


def events_errors():
    """What TensorFlow's events writer raises when it cannot write (a full disk): from its writer thread,
    a RuntimeError naming the file; the file system's own errors come as OSError or OpError."""
    return OSError, RuntimeError, tf.errors.OpError


@contextlib.contextmanager
def events_written(writer):
    """Turn a failure to write the TensorBoard events into the run's own 'cannot write' error."""
    try:
        yield
    except events_errors() as e:
        raise cannot_write(f"the TensorBoard events in {writer.get_logdir()}", str(e).splitlines()[0]) from e


def metrics_writer(file):
    return csv.DictWriter(file, METRIC_FIELDS, lineterminator="\n")


def read_metrics(path):
    """metrics.csv's rows (dicts of strings). Rows that are damaged (not numbers where numbers
    belong, a binary mess, bytes the csv module itself rejects) are dropped with one warning
    line: they never fail a run."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        lines = f.read().replace("\0", "").splitlines()
    # Parsed line by line: a stray quote or carriage return in one line would otherwise make the
    # csv module read on into the next lines, or raise (`new-line character seen in unquoted field`).
    header, rows = parsed_line(lines[0]) if lines else None, [parsed_line(line) for line in lines[1:]]
    intact = [dict(zip(METRIC_FIELDS, row + [""] * (len(METRIC_FIELDS) - len(row)), strict=True))
              for row in rows if intact_row(row)]
    if len(intact) < len(rows) or (lines and header not in (METRIC_FIELDS, OLDER_FIELDS)):
        print(f"warning: {path} is damaged: kept its {len(intact)} intact rows, dropped the rest", file=sys.stderr)
    return intact


def parsed_line(line):
    """One line of metrics.csv as a list of fields, or None where the csv module rejects it."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def intact_row(fields):
    """Whether a line's fields are a row of METRIC_FIELDS (or OLDER_FIELDS): whole step and examples, numbers or
    blanks after."""
    if fields is None or len(fields) not in (len(METRIC_FIELDS), len(OLDER_FIELDS)):
        return False
    try:
        int(fields[0]), int(fields[1])
        for value in fields[2:]:
            if value != "":
                float(value)
        return True
    except ValueError:
        return False


def time_to_accuracy(rows, thresholds):
    """{threshold: the first metrics.csv row (read_metrics) whose validation accuracy reaches it, or None}:
    when a run first got there, in steps, examples seen and training seconds (sequential MNIST's speed
    figure: the papers draw validation curves against epochs)."""
    validated = [row for row in rows if row["validation_accuracy"]]
    return {threshold: next((row for row in validated if float(row["validation_accuracy"]) >= threshold), None)
            for threshold in thresholds}
