"""Scoring a model: a whole data set in batches, or one image."""
import collections
import time

import numpy as np

from lstm_mnist import context, reading
from lstm_mnist.part import Part
from lstm_mnist.tasks import SHORT_SEQUENCE

EVAL_BATCH = 1000  # images per session run when scoring a whole set
PROGRESS_EVERY_S = 10  # a set of longer sequences than SHORT_SEQUENCE says how far along it is this often

# step_predicted: the answer after every row, (N, n_steps), where asked for (else None).
Score = collections.namedtuple("Score", ["loss", "accuracy", "predicted", "step_predicted"])


def evaluate(sess, model, dataset, every_row=False, doing="scoring"):
    """Mean loss, accuracy and predicted classes over a whole DataSet, EVAL_BATCH images per
    run; with `every_row`, also the answer after every row read. On long sequences, a line
    every PROGRESS_EVERY_S seconds says what it is `doing` and how far along it is. A signal
    stops it between batches."""
    fetches = [model.cost, model.predicted] + ([model.step_predicted] if every_row else [])
    total_loss, outputs = 0.0, []
    started = said = time.monotonic()
    for start in range(0, dataset.num_examples, EVAL_BATCH):
        context.check()
        images = dataset.images[start:start + EVAL_BATCH]
        loss, *arrays = sess.run(fetches, model.feed(images, dataset.labels[start:start + EVAL_BATCH]))
        total_loss += loss * len(images)
        outputs.append(arrays)
        done, now = start + len(images), time.monotonic()
        if model.n_steps > SHORT_SEQUENCE and now - said >= PROGRESS_EVERY_S and done < dataset.num_examples:
            print(f"  {doing}: {done} of {dataset.num_examples} images, {now - started:.0f} s")
            said = now
    predicted, *step_predicted = (np.concatenate(parts) for parts in zip(*outputs, strict=True))
    accuracy = float(np.mean(predicted == np.argmax(dataset.labels, axis=1)))
    return Score(total_loss / dataset.num_examples, accuracy, predicted, step_predicted[0] if every_row else None)


def score_full_test_set(sess, model, mnist):
    """Loss and accuracy on every test image, and the row by which the answer settles,
    each printed on a line of its own."""
    score = evaluate(sess, model, mnist.test, every_row=True, doing="scoring the test set")
    print(f"Full test set: average loss {score.loss:.4f}, accuracy {score.accuracy:.4f} "
          f"({mnist.test.num_examples} images)")
    reading.print_reading_line(score.step_predicted)
    return score


def classify(sess, model, pixels):
    """The ten class probabilities of one image row (1, 784)."""
    return sess.run(model.probabilities, model.feed(pixels))[0]


# ------------------------------------------------------------ the run's parts

class Validation(Part):
    """Accuracy on the validation set every eval_every steps, printed; a sweep's trial (judged by
    its last step) is validated `at_the_last_step` too."""

    aside = "validation"

    def __init__(self, cfg, validation, at_the_last_step=False):
        self.every, self.batch_size = cfg.eval_every, cfg.batch_size
        self.validation, self.at_the_last_step = validation, at_the_last_step

    def after_run(self, run, session, step):
        number = step.number
        due = self.every and (number % self.every == 0 or (self.at_the_last_step and number == run.last_step))
        if due and self.validation.num_examples:
            accuracy = evaluate(session, run.model, self.validation, doing="validating").accuracy
            step.validation_accuracy = accuracy
            print(f"Validation Accuracy= {accuracy:.5f} ({self.validation.num_examples} images) "
                  f"at Iter {number * self.batch_size}")


class FullTestSet(Part):
    """At the end, beyond the tutorial's 128 images: every test image (score_full_test_set). Then it
    says what a signal would stop next: the `plots`, if on (the timing lines before them take no time)."""

    def __init__(self, mnist, run_dir, plots):
        self.mnist, self.run_dir, self.plots = mnist, run_dir, plots

    def on_test_end(self, run, session, results):
        results.full_test = score_full_test_set(session, run.model, self.mnist)
        run.clock.mark("scoring")
        context.now(f"{'while writing plots' if self.plots else 'at the end'}: the model, metrics and events "
                    f"are saved in {self.run_dir}")
