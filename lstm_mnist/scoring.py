"""Scoring a model on a whole data set, and preparing a user's image for it."""
import collections
import sys
import warnings

import numpy as np

from lstm_mnist import reading
from lstm_mnist.errors import STOPS, ConfigError

EVAL_BATCH = 1000  # images per session run when scoring a whole set

# step_predicted: the answer after every row, (N, n_steps), where asked for (else None).
Score = collections.namedtuple("Score", ["loss", "accuracy", "predicted", "step_predicted"])


def evaluate(sess, model, dataset, cfg, every_row=False):
    """Mean loss, accuracy and predicted classes over a whole DataSet, EVAL_BATCH images per
    run; with `every_row`, also the answer after every row read."""
    fetches = [model.cost, model.predicted] + ([model.reading.predicted] if every_row else [])
    total_loss, outputs = 0.0, []
    for start in range(0, dataset.num_examples, EVAL_BATCH):
        STOPS.check()  # a signal stops a long scoring between batches
        images = dataset.images[start:start + EVAL_BATCH]
        feed = {model.x: images.reshape((-1, cfg.n_steps, cfg.n_input)),
                model.y: dataset.labels[start:start + EVAL_BATCH]}
        loss, *arrays = sess.run(fetches, feed)
        total_loss += loss * len(images)
        outputs.append(arrays)
    predicted, *step_predicted = (np.concatenate(parts) for parts in zip(*outputs, strict=True))
    accuracy = float(np.mean(predicted == np.argmax(dataset.labels, axis=1)))
    return Score(total_loss / dataset.num_examples, accuracy, predicted, step_predicted[0] if every_row else None)


def score_full_test_set(sess, model, mnist, cfg):
    """Loss and accuracy on every test image, and the row by which the answer settles,
    each printed on a line of its own."""
    score = evaluate(sess, model, mnist.test, cfg, every_row=True)
    print(f"Full test set: average loss {score.loss:.4f}, accuracy {score.accuracy:.4f} "
          f"({mnist.test.num_examples} images)")
    reading.print_reading_line(score.step_predicted)
    return score


def load_digit(path):
    """An image file as one MNIST-like row (1, 784): see digit_pixels. An image with nothing
    drawn on it gets a warning: its prediction means nothing."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = digit_pixels(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ConfigError(f"{path}: too large to read safely ({e}); give a smaller image") from e
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read this image ({e})") from e
    if is_blank(pixels):
        print(f"warning: {path}: no digit in it (the image is blank); the prediction means nothing", file=sys.stderr)
    return pixels


def digit_pixels(image):
    """A PIL image of a digit as the model sees it: one row (1, 784), 28x28 grayscale in [0, 1],
    light digit on dark. The one preprocessing for predict.py and the drawing page.

    Any size and colour mode is accepted. A transparent background is filled
    with the colour that sets the strokes off (a drawing program's dark pen on
    nothing becomes dark on white); a dark-on-light image (paper, a drawing
    program) is then inverted, judged by the brightness of its border.
    """
    from PIL import Image

    gray = on_plain_background(image).convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    pixels = np.asarray(gray, dtype=np.float32) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 0.5:
        pixels = 1.0 - pixels
    return pixels.reshape(1, 784)


BLANK_CONTRAST = 0.1  # an image whose pixels differ by less than this holds no digit


def is_blank(pixels):
    return bool(pixels.max() - pixels.min() < BLANK_CONTRAST)


def on_plain_background(image):
    """The image with any transparency composited onto white (dark strokes) or black (light ones)."""
    from PIL import Image

    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    strokes = np.asarray(rgba.convert("L"))[alpha > 127]
    background = "white" if strokes.size == 0 or strokes.mean() < 128 else "black"
    return Image.alpha_composite(Image.new("RGBA", rgba.size, background), rgba)


def classify(sess, model, pixels, cfg):
    """The ten class probabilities of one image row (1, 784)."""
    return sess.run(model.probabilities, {model.x: pixels.reshape((-1, cfg.n_steps, cfg.n_input))})[0]
