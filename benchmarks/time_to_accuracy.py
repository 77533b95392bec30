"""When a run's validation accuracy first reached each threshold: steps, examples seen, epochs, training time.

    python benchmarks/time_to_accuracy.py models/pixels                      # 50%, 90%, 95%, 98%
    python benchmarks/time_to_accuracy.py runs/RUN --thresholds=0.8,0.88

Read from the run folder's metrics.csv (its `seconds` column is the training time so far, validation and
checkpoints included, summed over the sessions of a resumed run). An epoch is the training images of the
run's config.json (MNIST's 60,000 less its validation_size).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lstm_mnist import metrics  # noqa: E402 (the project's package, from the checkout)

MNIST_TRAINING_IMAGES = 60_000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder (with metrics.csv and config.json)")
    parser.add_argument("--thresholds", default="0.5,0.9,0.95,0.98", help="validation accuracies, comma-separated")
    arguments = parser.parse_args()
    try:
        thresholds = [float(value) for value in arguments.thresholds.split(",")]
        with open(os.path.join(arguments.run, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)["config"]
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {arguments.run}: {e}", file=sys.stderr)
        return 2
    epoch = MNIST_TRAINING_IMAGES - cfg["validation_size"]
    rows = metrics.read_metrics(os.path.join(arguments.run, "metrics.csv"))
    print("| validation accuracy | step | examples | epochs | training time |")
    print("|---|---|---|---|---|")
    for threshold, row in metrics.time_to_accuracy(rows, thresholds).items():
        if row is None:
            print(f"| {threshold:.0%} | not reached | | | |")
            continue
        examples, seconds = int(row["examples"]), float(row["seconds"] or "nan")
        print(f"| {threshold:.0%} (first {float(row['validation_accuracy']):.4f}) | {row['step']} | {examples:,} | "
              f"{examples / epoch:.1f} | {seconds / 3600:.2f} h |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
