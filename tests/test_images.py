"""A user's image prepared as the model sees it."""

import numpy as np
import pytest
from conftest import write_digit_png
from PIL import Image

from lstm_mnist import images


def test_load_digit_inverts_dark_on_light_only(tmp_path, mnist):
    image = mnist.test.images[0]
    write_digit_png(tmp_path / "paper.png", image, size=28)
    Image.fromarray((image.reshape(28, 28) * 255).astype(np.uint8)).save(tmp_path / "mnist.png")
    paper, screen = images.load_digit(str(tmp_path / "paper.png")), images.load_digit(str(tmp_path / "mnist.png"))
    assert np.abs(paper - image).max() < 0.02 and np.abs(screen - image).max() < 0.02


@pytest.mark.parametrize("pen", [0, 255], ids=["dark-pen", "light-pen"])
def test_a_drawing_on_a_transparent_background_reads_like_the_digit(tmp_path, mnist, pen):
    image = mnist.test.images[0].reshape(28, 28)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = pen
    rgba[..., 3] = np.rint(image * 255)  # the stroke is in the alpha channel alone
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawing.png")
    assert np.abs(images.load_digit(str(tmp_path / "drawing.png")) - image.reshape(1, 784)).max() < 0.02
