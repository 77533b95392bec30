"""The PNG plots a run leaves in its folder: curves, sample predictions, confusion matrix, reading.

Each figure is drawn by a function of its own (tutorial.ipynb shows them inline) and written
whole or not at all (files.py), so a crash mid-write never leaves a half-written picture.
"""
import importlib
import os
import sys
import threading

import numpy as np

from lstm_mnist import context, gates, metrics, reading
from lstm_mnist.files import replaced_atomically
from lstm_mnist.part import Part

PREDICTION_GRID = 48  # test digits shown in predictions.png
READING_DIGITS = 6  # test digits shown in reading.png
GATE_DIGITS = 3  # of reading.png's digits, the first shown in gates.png


def write_run_plots(run_dir, metrics_rows, test, predicted, step_probabilities_of, gates_of, gate_statistics,
                    order):
    """curves.png, predictions.png, confusion.png, reading.png and gates.png of a finished run.

    `test` is the test DataSet (one-hot labels), `predicted` the model's classes for it,
    `step_probabilities_of(images)` the model's class probabilities after every row,
    `gates_of(images)` its gates after every row, layer by layer (gates.gates_of), `gate_statistics`
    each layer's gate statistics over the test images of the gates line (gates.GatesLine) and
    `order` the pixel order the model reads (model.Model's order). A signal stops it between figures.
    """
    true = np.argmax(test.labels, axis=1)
    save_figure(curves_figure(metrics_rows), os.path.join(run_dir, "curves.png"))
    shown = digits_to_show(predicted, true)
    save_figure(predictions_figure(test.images[shown], predicted[shown], true[shown]),
                os.path.join(run_dir, "predictions.png"))
    save_figure(confusion_figure(predicted, true), os.path.join(run_dir, "confusion.png"))
    shown = digits_to_show(predicted, true, READING_DIGITS)
    save_figure(reading_figure(test.images[shown], step_probabilities_of(test.images[shown]), true[shown], order),
                os.path.join(run_dir, "reading.png"))
    shown = shown[:GATE_DIGITS]
    every_layer = gates_of(test.images[shown])
    for layer, (digit_gates, statistics) in enumerate(zip(every_layer, gate_statistics, strict=True), start=1):
        save_figure(gates_figure(test.images[shown], digit_gates, statistics, true[shown], layer, len(every_layer)),
                    os.path.join(run_dir, gates_file(layer)))


def gates_file(layer):
    """gates.png for the bottom layer (the only one, as a rule), gates-layerK.png for layer K above it."""
    return "gates.png" if layer == 1 else f"gates-layer{layer}.png"


def new_figure(**size):
    from matplotlib.figure import Figure  # here: importing this module costs nothing until it draws
    return Figure(**size)


def digits_to_show(predicted, true, count=PREDICTION_GRID):
    """Indices of the first test digits the model gets right, then its first mistakes
    (up to a third of the grid), so that the grid shows both."""
    wrong = np.flatnonzero(predicted != true)[:count // 3]
    return np.concatenate([np.flatnonzero(predicted == true)[:count - len(wrong)], wrong])


def save_figure(fig, path):
    context.check()
    with replaced_atomically(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


def curves_figure(rows):
    """Loss and accuracy against examples seen, from metrics.csv's rows (dicts of strings or numbers;
    "" where a row has no value)."""
    logged = [r for r in rows if r["minibatch_loss"] != ""]
    validated = [r for r in rows if r["validation_accuracy"] != ""]
    fig = new_figure(figsize=(11, 4))
    loss_ax, acc_ax = fig.subplots(1, 2, gridspec_kw={"left": 0.06, "right": 0.99, "top": 0.92, "bottom": 0.12})
    loss_ax.plot([int(r["examples"]) for r in logged], [float(r["minibatch_loss"]) for r in logged],
                 label="minibatch")
    loss_ax.set(xlabel="examples seen", ylabel="cross-entropy loss", title="Loss", yscale="log")
    acc_ax.plot([int(r["examples"]) for r in logged], [float(r["minibatch_accuracy"]) for r in logged],
                label="minibatch", alpha=0.6)
    if validated:
        acc_ax.plot([int(r["examples"]) for r in validated], [float(r["validation_accuracy"]) for r in validated],
                    "o-", label="validation")
    acc_ax.set(xlabel="examples seen", ylabel="accuracy", title="Accuracy", ylim=(0, 1))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def montage(images, columns, gap=4):
    """Images (n, 28, 28) tiled on one canvas, `columns` a row, `gap` blank pixels between them,
    and the (row, column) pixel offset of each tile: one Axes draws them all, which is
    several times faster than an Axes per image."""
    n, height, width = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    offsets = [(k // columns * (height + gap), k % columns * (width + gap)) for k in range(n)]
    for image, (top, left) in zip(images, offsets, strict=True):
        canvas[top:top + height, left:left + width] = image
    return canvas, offsets


def predictions_figure(images, predicted, true, columns=8):
    """A grid of digits labelled 'predicted (true)'; wrong ones in red."""
    canvas, offsets = montage(images.reshape(-1, 28, 28), columns, gap=12)
    rows = -(-len(images) // columns)
    fig = new_figure(figsize=(columns * 1.2, rows * 1.4))
    ax = fig.subplots(gridspec_kw={"left": 0.01, "right": 0.99, "top": 1 - 0.6 / (rows * 1.4), "bottom": 0.01})
    ax.imshow(canvas, cmap="gray_r")
    for (top, left), p, t in zip(offsets, predicted, true, strict=True):
        ax.text(left + 14, top - 1, f"{p} ({t})", ha="center", va="bottom", fontsize=10,
                color="black" if p == t else "red", fontweight="normal" if p == t else "bold")
    ax.axis("off")
    ax.set_title("Test digits: predicted (true); mistakes in red", pad=18)
    return fig


def confusion_matrix(predicted, true, n_classes=10):
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def confusion_figure(predicted, true):
    matrix = confusion_matrix(predicted, true)
    fig = new_figure(figsize=(6.5, 5.5))
    ax = fig.subplots(gridspec_kw={"left": 0.1, "right": 1.0, "top": 0.88, "bottom": 0.1})
    im = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (t, p), count in np.ndenumerate(matrix):
        if count:
            ax.text(p, t, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > matrix.max() / 2 else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title=f"Confusion matrix\n{len(true)} test images, accuracy {np.mean(predicted == true):.4f}")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    return fig


def reading_figure(images, step_probabilities, true, order=None):
    """For each digit: the image with the pixels read so far shown a quarter of the way at a time
    (rows, for the tutorial's task; `order` is the order the model reads the pixels in, by
    default theirs), and the probability of each class after every step read (the true class
    green, a wrong final answer red)."""
    n_digits, n_steps = step_probabilities.shape[:2]
    revealed = [n_steps * k // 4 for k in (1, 2, 3, 4)]
    order = np.arange(images.shape[1]) if order is None else order
    step = reading.step_name(n_steps)
    height = 1.8 * n_digits + 0.6  # inches; the margins below are fixed in inches too
    fig = new_figure(figsize=(12, height))
    grid = fig.add_gridspec(n_digits, 2, width_ratios=[4, 6], wspace=0.15, hspace=0.6, left=0.01, right=0.97,
                            top=1 - 0.75 / height, bottom=0.55 / height)
    for k, (image, probabilities, label) in enumerate(zip(images, step_probabilities, true, strict=True)):
        stages = []
        for steps in revealed:
            dimmed = 0.15 * image
            read = order[:steps * len(image) // n_steps]
            dimmed[read] = image[read]
            stages.append(dimmed.reshape(28, 28))
        canvas, offsets = montage(np.stack(stages), len(revealed))
        ax = fig.add_subplot(grid[k, 0])
        ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        if k == 0:
            for (_, left), steps in zip(offsets, revealed, strict=True):
                ax.text(left + 14, -2, f"{step}s 1-{steps}", ha="center", va="bottom", fontsize=9)
        answer = int(np.argmax(probabilities[-1]))
        ax = fig.add_subplot(grid[k, 1])
        for digit in range(probabilities.shape[1]):
            color = "tab:green" if digit == label else "tab:red" if digit == answer else None
            ax.plot(range(1, n_steps + 1), probabilities[:, digit], color=color or "0.75", lw=2.5 if color else 1)
            if color:
                ax.annotate(str(digit), (n_steps, probabilities[-1, digit]), xytext=(3, 0),
                            textcoords="offset points", fontsize=8, color=color, va="center")
        ax.set(xlim=(1, n_steps), ylim=(-0.02, 1.02), ylabel="probability")
        ax.set_title(f"true {label}, final answer {answer}", fontsize=9, color="black" if answer == label else "red")
        ax.grid(alpha=0.3)
        if k == n_digits - 1:
            ax.set_xlabel(f"{step}s read")
    fig.suptitle(f"How the LSTM reads: its answer after each {step} of the image", y=1 - 0.2 / height)
    return fig


def gates_figure(images, digit_gates, statistics, true, layer=1, num_layers=1):
    """gates.png of one layer. For each digit, the image beside heatmaps of its write, keep and read
    gates and its cell state, units (one order for all: gates.unit_order) against steps read. Below,
    for each gate, each unit's share of the time shut (below 0.1) against open (above 0.9), from
    `statistics` (model.Gates'), as in Karpathy et al.'s saturation plot; and how much the cell
    state changes at each step, on average over these digits' units."""
    n_digits, n_steps, n_units = digit_gates["write"].shape
    step = reading.step_name(n_steps)
    order = gates.unit_order(digit_gates["write"])
    height = 1.9 * n_digits + 3.0
    fig = new_figure(figsize=(14, height))
    grid = fig.add_gridspec(n_digits + 1, 5, width_ratios=[1.1, 2, 2, 2, 2], height_ratios=[1.9] * n_digits + [2.4],
                            wspace=0.25, hspace=0.45, left=0.02, right=0.95, top=1 - 0.7 / height,
                            bottom=0.55 / height)
    reach = float(np.abs(digit_gates["cell"]).max()) or 1.0
    rows, maps = (0.5, n_steps + 0.5), {"write": {}, "keep": {}, "read": {}, "cell": {"cmap": "RdBu_r"}}
    for k in range(n_digits):
        ax = fig.add_subplot(grid[k, 0])
        ax.imshow(images[k].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"true {true[k]}", fontsize=9)
        ax.axis("off")
        for column, (name, style) in enumerate(maps.items(), start=1):
            ax = fig.add_subplot(grid[k, column])
            limits = (-reach, reach) if name == "cell" else (0, 1)
            style["image"] = ax.imshow(digit_gates[name][k][:, order].T, aspect="auto", interpolation="nearest",
                                       extent=(*rows, n_units - 0.5, -0.5), vmin=limits[0], vmax=limits[1],
                                       cmap=style.get("cmap", "viridis"))
            ax.set_yticks([])
            style.setdefault("axes", []).append(ax)
            if k == 0:
                ax.set_title("cell state c" if name == "cell" else f"{name} gate", fontsize=10)
            if column == 1:
                ax.set_ylabel(f"{n_units} units", fontsize=8)
            if k < n_digits - 1:
                ax.set_xticklabels([])
    # one colour bar for the three gates (each from 0, shut, to 1, open), one for the cell state
    fig.colorbar(maps["read"]["image"], ax=[ax for name in gates.GATES for ax in maps[name]["axes"]], fraction=0.02,
                 pad=0.01, label="gate: 0 shut, 1 open")
    fig.colorbar(maps["cell"]["image"], ax=maps["cell"]["axes"], fraction=0.06, pad=0.02)
    for column, name in enumerate(gates.GATES, start=1):
        ax = fig.add_subplot(grid[n_digits, column])
        ax.plot([0, 1], [1, 0], color="0.8", lw=1)
        ax.scatter(statistics[column - 1, 0], statistics[column - 1, 1], s=8, alpha=0.7)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=f"time shut (< {gates.CLOSED})",
               title=f"{name} gate, each unit", ylabel=f"time open (> {gates.OPEN})" if column == 1 else None)
        ax.grid(alpha=0.3)
    ax = fig.add_subplot(grid[n_digits, 4])
    change = np.abs(np.diff(digit_gates["cell"], axis=1, prepend=0)).mean(axis=(0, 2))
    ax.plot(range(1, n_steps + 1), change, "o-", ms=3)
    ax.set(xlim=rows, xlabel=f"{step} read", title="cell state change |c_t - c_(t-1)|")
    ax.grid(alpha=0.3)
    which = "" if num_layers == 1 else f" (layer {layer} of {num_layers})"
    fig.suptitle(f"The gates as the LSTM{which} reads: what it writes to its cell, keeps and reads, {step} by {step}",
                 y=1 - 0.2 / height)
    return fig


class Plots(Part):
    """A run's part: its PNGs (write_run_plots) at the end. Failing to write them (a full disk)
    is a warning: the run itself is saved."""

    def __init__(self, test, run_dir):
        self.test, self.run_dir = test, run_dir

    def after_create_session(self, run, session):
        # matplotlib's import (a second) goes on beside the training, not after it
        threading.Thread(target=importlib.import_module, args=("matplotlib.figure",), daemon=True).start()

    def on_test_end(self, run, session, results):
        model = run.model
        try:
            write_run_plots(self.run_dir, metrics.read_metrics(os.path.join(self.run_dir, "metrics.csv")),
                            self.test, results.predicted,
                            lambda images: session.run(model.step_probabilities, model.feed(images)),
                            lambda images: gates.gates_of(session, model.gates, model.feed(images)),
                            results.gate_statistics, model.order)
        except OSError as e:
            print(f"warning: could not write the plots in {self.run_dir} ({e.strerror or e}); the model, "
                  f"metrics and events are saved", file=sys.stderr)
        run.clock.mark("plots")
