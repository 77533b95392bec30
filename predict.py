"""Use a saved model: score it on the test set, or classify the digit in an image.

    python predict.py runs/RUN                  # the tutorial's test line and the whole test set
    python predict.py runs/RUN my_digit.png     # the digit in an image, with the ten probabilities
    python predict.py runs/RUN a.png b.png      # several images, each line named for its file
    python predict.py runs/RUN/model.ckpt-500 --test_len=1000

RUN is a run folder (its latest checkpoint is used) or one checkpoint; the
model is rebuilt with that run's saved settings (config.json), which
`--name=value` overrides as in train_lstm_mnist.py.
"""
import numpy as np

import train_lstm_mnist as script
from lstm_mnist import checkpoints, context, entry_point, images, saved_run, scoring


def restored_session(cfg, checkpoint):
    """(session, model) with the checkpoint's weights; close the session when done."""
    model = script.build_graph(cfg)
    sess = script.session(cfg, model)
    checkpoints.restore(sess, model, checkpoint)
    return sess, model


def score(cfg, checkpoint):
    """The tutorial's test line on test_len images, then the whole test set; returns the full Score."""
    mnist = script.load_mnist(cfg)
    context.now("while scoring the test set: nothing is written, nothing to lose")
    print(f"Model: {checkpoint}")
    sess, model = restored_session(cfg, checkpoint)
    with sess:
        script.score_test_images(sess, model, mnist, cfg)
        return scoring.score_full_test_set(sess, model, mnist)


def predict(cfg, checkpoint, image_paths):
    """Print and return the predicted digit and the ten probabilities of each image, in order:
    [(digit, probabilities), ...]. With several images, each one's lines begin with its path."""
    pixels = [images.load_digit(path) for path in image_paths]  # every image checked before the model loads
    context.now("while predicting: nothing is written, nothing to lose")
    sess, model = restored_session(cfg, checkpoint)
    with sess:
        answers = [scoring.classify(sess, model, one) for one in pixels]
    results = []
    for path, probabilities in zip(image_paths, answers, strict=True):
        digit = int(np.argmax(probabilities))
        named = f"{path}: " if len(image_paths) > 1 else ""
        print(f"{named}Predicted digit: {digit}")
        print(f"{named}Probabilities: " + " ".join(f"{d}={p:.4f}" for d, p in enumerate(probabilities)))
        results.append((digit, probabilities))
    return results


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN_DIR|CKPT", help="a run folder (its latest checkpoint) or a checkpoint")
    parser.add_argument("image", nargs="*", help="image files of digits, any size and colours "
                                                 "(without one: score the test set)")


def use_saved_model(overrides, arguments):
    cfg, checkpoint = saved_run.open_saved_run(arguments.model, overrides, script.SETTINGS)
    if not arguments.image:
        score(cfg, checkpoint)
    else:
        predict(cfg, checkpoint, arguments.image)


def main(argv=None):
    return entry_point.run(argv, __doc__, add_arguments, script.SETTINGS, use_saved_model)


if __name__ == "__main__":
    entry_point.exit_process(main())
