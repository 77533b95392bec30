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
