"""metrics.csv and the TensorBoard events."""
import csv
import glob
import os

import numpy as np
import pytest
from helpers import fill, fresh_copy, tiny_config

import train_lstm_mnist as script
from lstm_mnist import settings
from lstm_mnist.errors import TrainingError
from lstm_mnist.metrics import RunLog, read_metrics
from lstm_mnist.tf_setup import tf1


def test_metrics_csv_rows_match_the_log(tiny_run):
    cfg, metrics, lines = tiny_run
    with open(os.path.join(metrics.run_dir, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    iter_lines = [line for line in lines if line.startswith("Iter ")]
    assert [f"Iter {r['examples']}, Minibatch Loss= {r['minibatch_loss']}, Training Accuracy= "
            f"{r['minibatch_accuracy']}" for r in rows] == iter_lines
    validation = [line for line in lines if line.startswith("Validation Accuracy= ")]
    assert [f"Validation Accuracy= {r['validation_accuracy']} (5000 images) at Iter {r['examples']}"
            for r in rows] == validation
    assert [r["step"] for r in rows] == ["10", "20"]


def test_event_file_holds_the_scalars_and_graph(tiny_run):
    _, metrics, _ = tiny_run
    (events_file,) = glob.glob(os.path.join(metrics.run_dir, "events.out.tfevents.*"))
    tags, has_graph = {}, False
    for event in tf1.train.summary_iterator(events_file):
        has_graph |= bool(event.graph_def)
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert has_graph
    assert [step for step, _ in tags["minibatch/loss"]] == [1000, 2000]
    assert set(tags) == {"minibatch/loss", "minibatch/accuracy", "validation/accuracy"}


def test_damaged_metrics_rows_are_dropped_with_one_warning(loaded_mnist, tiny_run_copy, tmp_path, capsys):
    path = os.path.join(tiny_run_copy, "metrics.csv")
    rows = open(path).read().splitlines()
    open(path, "w").write("\n".join([rows[0], rows[1], "20,2000,not-a-number,0.5,", "\x00\x01binary", rows[2]]) + "\n")
    cfg = tiny_config(tmp_path, training_iters=4000, eval_every=10, plots=True)
    results = script.train(cfg, fresh_copy(loaded_mnist), resume=tiny_run_copy)
    assert results.steps == settings.last_step(cfg)
    assert capsys.readouterr().err == f"warning: {path} is damaged: kept its 2 intact rows, dropped the rest\n"
    assert [row.split(",")[0] for row in open(path).read().splitlines()] == ["step", "10", "20", "30"]


@pytest.mark.parametrize("damage", [
    bytes(np.random.RandomState(0).randint(0, 256, 4096, dtype=np.uint8)),  # a bad copy: random bytes
    b'step,examples\n10,"1000\r\n20\r,x',  # what made csv raise "new-line character seen in unquoted field"
    b"",
], ids=["random-bytes", "stray-carriage-return", "empty"])
def test_a_metrics_csv_of_any_bytes_never_fails_a_resume(loaded_mnist, tiny_run_copy, tmp_path, capsys, damage):
    path = os.path.join(tiny_run_copy, "metrics.csv")
    open(path, "wb").write(damage)
    assert read_metrics(path) == []
    warned = capsys.readouterr().err
    assert warned in ("", f"warning: {path} is damaged: kept its 0 intact rows, dropped the rest\n")
    assert bool(warned) == bool(damage)
    cfg = tiny_config(tmp_path, training_iters=4000, checkpoint_every=10)
    script.train(cfg, fresh_copy(loaded_mnist), resume=tiny_run_copy)
    assert [row.split(",")[0] for row in open(path).read().splitlines()] == ["step", "30"]


def test_a_disk_that_fills_between_checkpoints_stops_the_log_in_one_error(small_disk):
    """The events file is flushed at every logged step: a full disk there (a RuntimeError from
    TensorFlow's writer thread, or an OSError) is the run's own 'cannot write' error."""
    log = RunLog(str(small_disk), tf1.Graph(), 0, 100)
    log.events.flush()  # its writer thread has written the graph: the filler takes what is left, not more
    fill(small_disk)
    with pytest.raises(TrainingError, match=r"^cannot write .*No space left on device.*; free some space"):
        for step in range(1, 10000):
            log.write(step, 0.5, 0.5, 0.5)
    log.close()  # what was written stays readable, and closing says nothing more
    assert read_metrics(os.path.join(small_disk, "metrics.csv"))
