"""The PNG plots a run leaves in its folder: curves, sample predictions, confusion matrix.

Each is written to a temporary name and renamed into place, so a crash mid-write
never leaves a half-written picture.
"""
import os

import matplotlib.pyplot as plt
import numpy as np

plt.switch_backend("Agg")  # files only: no display needed

PREDICTION_GRID = 48  # test digits shown in predictions.png


def write_run_plots(run_dir, metrics_rows, test, predicted):
    """curves.png, predictions.png and confusion.png of a finished run.

    `test` is the test DataSet (one-hot labels), `predicted` the model's classes for it.
    """
    true = np.argmax(test.labels, axis=1)
    plot_curves(metrics_rows, os.path.join(run_dir, "curves.png"))
    shown = digits_to_show(predicted, true)
    plot_predictions(test.images[shown], predicted[shown], true[shown], os.path.join(run_dir, "predictions.png"))
    plot_confusion(predicted, true, os.path.join(run_dir, "confusion.png"))


def digits_to_show(predicted, true, count=PREDICTION_GRID):
    """Indices of the first test digits the model gets right, then its first mistakes
    (up to a third of the grid), so that the grid shows both."""
    wrong = np.flatnonzero(predicted != true)[:count // 3]
    return np.concatenate([np.flatnonzero(predicted == true)[:count - len(wrong)], wrong])


def save_figure(fig, path):
    tmp = path + ".tmp"
    try:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def plot_curves(rows, path):
    """Loss and accuracy against examples seen, from metrics.csv's rows (dicts)."""
    logged = [r for r in rows if r["minibatch_loss"] != ""]
    validated = [r for r in rows if r["validation_accuracy"] != ""]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
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
    save_figure(fig, path)


def plot_predictions(images, predicted, true, path, columns=8):
    """A grid of digits titled 'predicted (true)'; wrong ones in red."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.4))
    for ax, image, p, t in zip(axes.flat, images, predicted, true, strict=False):
        ax.imshow(image.reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{p} ({t})", color="black" if p == t else "red", fontsize=10,
                     fontweight="normal" if p == t else "bold")
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Test digits: predicted (true); mistakes in red")
    save_figure(fig, path)


def confusion_matrix(predicted, true, n_classes=10):
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def plot_confusion(predicted, true, path):
    matrix = confusion_matrix(predicted, true)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (t, p), count in np.ndenumerate(matrix):
        if count:
            ax.text(p, t, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > matrix.max() / 2 else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title=f"Confusion matrix\n{len(true)} test images, accuracy {np.mean(predicted == true):.4f}")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    save_figure(fig, path)
