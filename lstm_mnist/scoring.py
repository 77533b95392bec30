"""Scoring a model: a whole data set in batches, or one image."""
import collections

import numpy as np

from lstm_mnist import reading
from lstm_mnist.errors import STOPS

EVAL_BATCH = 1000  # images per session run when scoring a whole set

# step_predicted: the answer after every row, (N, n_steps), where asked for (else None).
Score = collections.namedtuple("Score", ["loss", "accuracy", "predicted", "step_predicted"])


def evaluate(sess, model, dataset, every_row=False):
    """Mean loss, accuracy and predicted classes over a whole DataSet, EVAL_BATCH images per
    run; with `every_row`, also the answer after every row read."""
    fetches = [model.cost, model.predicted] + ([model.reading.predicted] if every_row else [])
    total_loss, outputs = 0.0, []
    for start in range(0, dataset.num_examples, EVAL_BATCH):
        STOPS.check()  # a signal stops a long scoring between batches
        images = dataset.images[start:start + EVAL_BATCH]
        loss, *arrays = sess.run(fetches, model.feed(images, dataset.labels[start:start + EVAL_BATCH]))
        total_loss += loss * len(images)
        outputs.append(arrays)
    predicted, *step_predicted = (np.concatenate(parts) for parts in zip(*outputs, strict=True))
    accuracy = float(np.mean(predicted == np.argmax(dataset.labels, axis=1)))
    return Score(total_loss / dataset.num_examples, accuracy, predicted, step_predicted[0] if every_row else None)


def score_full_test_set(sess, model, mnist):
    """Loss and accuracy on every test image, and the row by which the answer settles,
    each printed on a line of its own."""
    score = evaluate(sess, model, mnist.test, every_row=True)
    print(f"Full test set: average loss {score.loss:.4f}, accuracy {score.accuracy:.4f} "
          f"({mnist.test.num_examples} images)")
    reading.print_reading_line(score.step_predicted)
    return score


def classify(sess, model, pixels):
    """The ten class probabilities of one image row (1, 784)."""
    return sess.run(model.probabilities, model.feed(pixels))[0]
