"""A user's image of a digit, prepared as the model sees it: the one preprocessing for
predict.py and the drawing page (serve.py)."""
import sys
import warnings

import numpy as np

from lstm_mnist.errors import ConfigError


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

    Prepared as MNIST's own digits were: any size and colour mode; a transparent
    background filled with the colour that sets the strokes off; the background
    taken to 0 and the strokes to full intensity, whatever the paper's grey and
    however uneven its light (a dark-on-light image is inverted first, judged by
    which side of the background the strokes lie); then the digit's bounding box
    scaled to fit 20x20, keeping its aspect, and centred by its centre of mass in
    28x28.
    """
    from PIL import Image

    gray = on_plain_background(image).convert("L")
    gray.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.LANCZOS)  # photos can be huge; keeps the aspect
    strokes = strokes_on_black(np.asarray(gray, dtype=np.float32) / 255.0)
    return centred_like_mnist(strokes).reshape(1, 784)


WORKING_SIDE = 196  # pixels of the longer side the image is prepared at (7 x 28)
MNIST_CENTRE = 14.0  # row and column of MNIST's centres of mass (pixel indices; measured over its test set)
PAPER_FITS = 3  # fits of the paper's surface, each without the pixels the last one found above it
NOISE_FLOORS = (0.02, 0.35)  # between these (of the strokes' intensity) is taken for the paper's grain and cut off


def strokes_on_black(pixels):
    """Light strokes of intensity up to 1 on a background of 0, from grayscale pixels in [0, 1]."""
    background = np.median(pixels)
    if background - np.percentile(pixels, 1) > np.percentile(pixels, 99) - background:
        pixels = 1.0 - pixels  # dark strokes on light paper
    strokes = np.clip(pixels - paper_surface(pixels), 0, None)
    top = np.percentile(strokes[strokes > 0], 99) if np.any(strokes > 0) else 0.0
    if top < BLANK_CONTRAST:
        return np.zeros_like(pixels)
    strokes = strokes / top
    # The paper's grain is left where most pixels are: a clean image (a drawing, MNIST's own) has none
    # and keeps its faint edges; a photo's is cut off, between the two floors.
    floor = np.clip(6 * np.percentile(strokes, 75), *NOISE_FLOORS)
    return np.clip((strokes - floor) / (1 - floor), 0, 1)


def paper_surface(pixels):
    """The paper's brightness at each pixel, strokes left out: a smooth surface (a quadratic in x
    and y) fitted to the pixels, then again to those below it, where the light strokes are not.
    It follows a sheet's grey and the slow change of the light across it."""
    height, width = pixels.shape
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    values, paper = pixels.reshape(-1), np.ones(pixels.size, dtype=bool)
    for _ in range(PAPER_FITS):
        coefficients = np.linalg.lstsq(terms[paper], values[paper], rcond=None)[0]
        residual = values - terms @ coefficients
        paper = residual <= np.percentile(residual, 60)  # strokes are the bright few: leave them out
    return (terms @ coefficients).reshape(height, width)


def centred_like_mnist(strokes):
    """The strokes' bounding box scaled to fit 20x20 (keeping its aspect) and placed in 28x28 with
    its centre of mass at the centre, as MNIST's digits were; all zeros stay all zeros."""
    from PIL import Image

    rows, columns = np.nonzero(strokes)
    canvas = np.zeros((28, 28), dtype=np.float32)
    if rows.size == 0:
        return canvas
    box = strokes[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    scale = 20.0 / max(box.shape)
    height, width = max(1, round(box.shape[0] * scale)), max(1, round(box.shape[1] * scale))
    digit = np.asarray(Image.fromarray(box).resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
    if digit.max() <= 0:
        return canvas
    digit = np.clip(digit / digit.max(), 0, 1)  # a thin stroke shrunk keeps full intensity at its core
    total = digit.sum()
    centre_row = (digit.sum(axis=1) * np.arange(height)).sum() / total
    centre_column = (digit.sum(axis=0) * np.arange(width)).sum() / total
    top = int(np.clip(round(MNIST_CENTRE - centre_row), 0, 28 - height))
    left = int(np.clip(round(MNIST_CENTRE - centre_column), 0, 28 - width))
    canvas[top:top + height, left:left + width] = digit
    return canvas


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
