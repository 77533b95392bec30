"""A run as the loop sees it: its parts' hooks, in the order of the list, on one part each."""
import signal
import types

import pytest
from helpers import tiny_config

import train_lstm_mnist as script
from lstm_mnist import context, errors, placement, runs, tuning
from lstm_mnist.errors import TrainingError
from lstm_mnist.part import Part


class Recorder(Part):
    """A part that writes down each hook it is called with, and what it saw."""

    def __init__(self, name, calls, going=None, done=None):
        self.name, self.calls, self.says_going, self.done = name, calls, going, done

    def restore(self, run, session):
        self.calls.append((self.name, "restore"))
        return self.done

    def after_create_session(self, run, session):
        self.calls.append((self.name, "after_create_session", run.done))

    def going(self, run, more_steps):
        self.calls.append((self.name, "going", more_steps))
        return more_steps if self.says_going is None else self.says_going

    def after_run(self, run, session, step):
        self.calls.append((self.name, "after_run", step.number, step.displayed, step.checkpoint_due))
        step.validation_accuracy = step.number / 10  # what the parts after it see

    def end(self, run, session):
        self.calls.append((self.name, "end", run.steps))

    def on_test_end(self, run, session, results):
        self.calls.append((self.name, "on_test_end", results.gate_statistics))
        results.gate_statistics = (results.gate_statistics or []) + [self.name]

    def close(self, run, error):
        self.calls.append((self.name, "close", type(error).__name__ if error else None))


class Restorer(Part):
    def __init__(self, done):
        self.done = done

    def restore(self, run, session):
        return self.done


def a_run(tmp_path, parts, done=5, **overrides):
    """A run whose first part says `done` steps were done before."""
    cfg = tiny_config(tmp_path, training_iters=900, display_step=2, checkpoint_every=3, **overrides)
    return runs.Run(cfg, None, [Restorer(done), *parts])


def test_every_hook_reaches_every_part_in_the_lists_order_and_close_goes_last_first(tmp_path):
    calls = []
    with a_run(tmp_path, [Recorder("a", calls, done=3), Recorder("b", calls, going=False)]) as run:
        assert run.start(None) == 5  # the first part that knows the steps done says (the restorer)
        assert run.going(True) is False  # each part says on what the parts before it said
        run.after_step(None, 6, {})
        run.end_training(None, 7)
        results = run.finish(None, 0.5)
    assert calls == [("a", "after_create_session", 5), ("b", "after_create_session", 5),
                     ("a", "going", True), ("b", "going", True),
                     ("a", "after_run", 6, True, True), ("b", "after_run", 6, True, True),
                     ("a", "end", 6), ("b", "end", 6),
                     ("a", "on_test_end", None), ("b", "on_test_end", ["a"]),
                     ("b", "close", None), ("a", "close", None)]
    assert results.test_accuracy == 0.5 and results.steps == 6 and results.gate_statistics == ["a", "b"]
    assert set(run.clock.seconds) >= {"session", "training"}


def test_a_step_is_displayed_and_checkpointed_on_the_settings_schedule(tmp_path):
    calls = []
    with a_run(tmp_path, [Recorder("a", calls)], done=0) as run:  # display_step 2, checkpoint_every 3, last step 8
        run.start(None)
        for number in range(1, 9):
            run.after_step(None, number, {})
    assert [call[2:] for call in calls if call[1] == "after_run"] == [
        (1, False, False), (2, True, False), (3, False, True), (4, True, False),
        (5, False, False), (6, True, True), (7, False, False), (8, True, True)]


def test_a_part_sees_what_the_parts_before_it_found_out_in_the_step(tmp_path):
    seen = []

    class Reader(Part):
        def after_run(self, run, session, step):
            seen.append(step.validation_accuracy)
    with a_run(tmp_path, [Reader(), Recorder("a", []), Reader()]) as run:
        run.start(None)
        run.after_step(None, 6, {})
    assert seen == [None, 0.6]


def test_an_error_ends_the_run_and_every_part_closes_with_it_even_when_one_raises_another(tmp_path):
    calls = []

    class Translator(Recorder):
        def close(self, run, error):
            super().close(run, error)
            raise TrainingError(f"said in one line: {error}")
    with pytest.raises(TrainingError, match="said in one line: step 3 failed"):
        with a_run(tmp_path, [Recorder("a", calls), Translator("t", calls), Recorder("b", calls)]) as run:
            run.start(None)
            raise RuntimeError("step 3 failed")
    assert calls[-3:] == [("b", "close", "RuntimeError"), ("t", "close", "RuntimeError"),
                          ("a", "close", "TrainingError")]
    assert run.started  # the error came after the start: the parts can tell (a new run folder is kept)


def test_a_stop_noted_in_the_commands_context_ends_the_run_after_the_parts_did_the_step(tmp_path):
    calls = []
    stop = runs.StopOnSignal("noted", lambda run, step: f"after step {step.number}", "after training")
    with context.opened() as opened, a_run(tmp_path, [Recorder("a", calls), stop]) as run:
        run.start(None)
        assert opened.signals.deferred and opened.signals.notice == "noted"
        opened.signals.requested = signal.SIGTERM  # what its handler notes while steps run
        with pytest.raises(errors.Interrupted, match="^Interrupted by SIGTERM after step 4$"):
            run.after_step(None, 4, {})
    assert calls[-2] == ("a", "after_run", 4, True, True)  # the step's parts ran, with a checkpoint due


def test_a_parts_step_time_counts_as_its_aside_and_not_as_training(tmp_path):
    import time

    class Slow(Part):
        aside = "validation"

        def after_run(self, run, session, step):
            end = time.perf_counter() + 0.05
            while time.perf_counter() < end:
                pass
    with a_run(tmp_path, [Slow()], done=0) as run:
        run.start(None)
        run.after_step(None, 1, {})
        run.after_step(None, 2, {})  # the first step's aside is left out with the first step
    assert 0.05 <= run.times.aside["validation"] < 0.5 and list(run.times.aside) == ["validation"]


def test_each_kind_of_run_has_its_list_of_parts(tmp_path, mnist):
    def parts_of(cfg, trial=None):
        with runs.new_run(cfg, model, mnist, None, placement.ALONE, trial=trial) as run:
            return [type(part).__name__ for part in run.parts], run.parts[0].run_dir
    cfg = tiny_config(tmp_path, plots=True)
    model = script.build_graph(cfg)
    single = ["RunFolder", "DivergenceStop", "Validation", "MetricsLog", "Checkpoints", "Progress", "FullTestSet",
              "GatesLine", "TrainingSpeed", "Plots", "ClosingLines", "StopOnSignal"]
    assert parts_of(cfg)[0] == single
    with_best = parts_of(tiny_config(tmp_path, plots=True, keep_best=True))[0]
    assert with_best == single[:7] + ["BestCheckpoint"] + single[7:]
    assert parts_of(tiny_config(tmp_path, plots=False))[0] == [name for name in single if name not in ("GatesLine",
                                                                                                        "Plots")]
    names, run_dir = parts_of(cfg, tuning.TrialReport(types.SimpleNamespace(number=3)))
    # a trial is judged on validation alone: the sweep scores the test set of its best trial only
    assert names == single[:4] + ["TrialReport"] + [name for name in single[4:] if name not in ("FullTestSet", "Plots")]
    assert run_dir.endswith("trial-0003")
