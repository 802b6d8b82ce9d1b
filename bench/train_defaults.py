"""Train the text and cnn-small runners on the real demo data with default hyperparameters.

Prints, per base model: validation accuracy, macro-F1, the accuracy target and the ratio of
the two, wall and CPU seconds, and the hyperparameters used. Exits 1 if a target is missed.

    python bench/train_defaults.py [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workers.ml.tf_env  # noqa: E402, F401  (before TensorFlow loads)

# isort: split

from saas.contract.spec import IMAGE, TEXT, TrainSpec  # noqa: E402
from workers.ml import runners  # noqa: E402
from workers.ml.resources import measure  # noqa: E402
from workers.ml.runners.image import CNN_DEFAULT_HYPERPARAMETERS  # noqa: E402
from workers.ml.runners.text import DEFAULT_HYPERPARAMETERS as TEXT_DEFAULTS  # noqa: E402

CASES = [
    # (task, base model, dataset, defaults, accuracy target)
    (TEXT, "text-embedding-bag", "data/text/sentiment_labelled_sentences.csv", TEXT_DEFAULTS, 0.78),
    (IMAGE, "cnn-small", "data/images/digits_8x8.zip", CNN_DEFAULT_HYPERPARAMETERS, 0.90),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    missed = 0
    print(
        f"{'base model':<20} {'dataset':<34} {'acc':>6} {'macroF1':>8} {'target':>7} "
        f"{'acc/target':>10} {'wall s':>7} {'cpu s':>7}"
    )
    for task, base_model, dataset, defaults, target in CASES:
        with tempfile.TemporaryDirectory() as out:
            spec = TrainSpec(
                task=task,
                dataset_path=str(ROOT / dataset),
                output_dir=out,
                base_model=base_model,
                hyperparameters={},
                seed=args.seed,
            )
            with measure() as usage:
                result = runners.train(spec)
        accuracy, macro_f1 = result.metrics["accuracy"], result.metrics["macro_f1"]
        missed += accuracy < target
        print(
            f"{base_model:<20} {os.path.basename(dataset):<34} {accuracy:>6.3f} {macro_f1:>8.3f} "
            f"{target:>7.2f} {accuracy / target:>10.3f} {usage.wall_seconds:>7.1f} "
            f"{usage.cpu_seconds:>7.1f}"
        )
        print(
            f"{'':<20} defaults: {defaults}; train/val {result.num_train}/{result.num_validation}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
