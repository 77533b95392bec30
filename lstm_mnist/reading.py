"""Watching the LSTM read: what the model would answer after each row of the image.

The network reads an image as a sequence, one row per time step; the
tutorial's readout only looks at the last step's output. Put through the same
readout, every step's output says which digit the model would answer had the
image ended there (model.Model's step_probabilities). That is what reading.png,
the log's reading line and the drawing page (serve.py) show.
"""
import numpy as np

from lstm_mnist.tasks import SHORT_SEQUENCE


def row_of_final_answer(step_predicted):
    """For each image (rows of step_predicted, (N, n_steps)), the row (1-based) after which the
    model's answer is its final one and stays so to the end."""
    final = step_predicted[:, -1:]
    changed = step_predicted != final
    # The last row whose answer differs from the final one; the answer settles on the row after.
    last_change = np.where(changed.any(axis=1), step_predicted.shape[1] - np.argmax(changed[:, ::-1], axis=1), 0)
    return last_change + 1


def step_name(n_steps):
    """What one step reads, for the log and the plots: a row, or (the pixel tasks' 784 steps) a pixel."""
    return "row" if n_steps <= SHORT_SEQUENCE else "pixel"


def print_reading_line(step_predicted):
    rows = row_of_final_answer(step_predicted)
    print(f"Reading: the final answer is reached, and kept, after {step_name(step_predicted.shape[1])} "
          f"{rows.mean():.1f} of {step_predicted.shape[1]} on average ({len(rows)} test images)")
    return float(rows.mean())
