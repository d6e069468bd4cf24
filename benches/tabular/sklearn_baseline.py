#!/usr/bin/env python3
"""Export seven small public tabular data sets to CSV and score scikit-learn's MLP on them.

The baseline that `examples/tabular_bench.rs` is compared with (docs/training.md, "Defaults,
measured"). The data sets ship inside PyPI packages, so nothing but pip touches the network:

    python3 -m venv /tmp/nn-tabular-venv
    /tmp/nn-tabular-venv/bin/pip install scikit-learn palmerpenguins
    /tmp/nn-tabular-venv/bin/python benches/tabular/sklearn_baseline.py OUT_DIR [--no-fit]

Measured with scikit-learn 1.9.1, palmerpenguins 0.1.6, Python 3.11.

For every data set it writes `OUT_DIR/<name>_train.csv` and `OUT_DIR/<name>_test.csv`: a
header, the features, then the target in the last column (a class index from 0, or a value).
The split is 80/20 with `random_state=0`, stratified for classification. Then (unless
`--no-fit`) it trains `MLPClassifier` / `MLPRegressor` with scikit-learn's defaults (Adam
1e-3, batch min(200, n), up to 200 epochs, stopping when the training loss has not improved
by 1e-4 for 10 epochs, L2 alpha 1e-4) and one hidden layer of H = 100 relu units (sklearn's
default width, the Rust side's too), on features standardized by a `StandardScaler` fitted on
the training rows, for seeds 0..4, and prints the test accuracy (classification) or R²
(regression) per seed and the median. For regression the target is standardized as well
(`TransformedTargetRegressor` with a `StandardScaler`), as the Rust side does with
`Preprocessing`: sklearn's `MLPRegressor` on raw targets (diabetes: 25 to 346) reaches
R² < 0 in 200 epochs, which would be no fair baseline.

The data sets (n = all rows, before the split):
- iris (150, 4 features, 3 classes), wine (178, 13, 3), breast_cancer (569, 30, 2),
  digits (1797, 64 pixels 0..16, 10): scikit-learn's bundled copies;
- diabetes (442, 10, regression of disease progression): sklearn's, `scaled=False` (raw
  age, sex 1/2, bmi, blood pressure and six serum measurements);
- penguins (333, 4, 3 classes): palmerpenguins' `load_penguins()`, rows with a missing
  value dropped; the species from the bill length and depth, flipper length and body mass
  (the categorical columns island and sex are dropped);
- penguins_mass (333, 7, regression): the same rows; the body mass in grams from the bill
  length and depth, the flipper length, the species one-hot (3 columns) and sex (1 = male).

Every file but digits' (about 250 KB) is committed under benches/tabular/data/ (about 170 KB),
for the `--quick` run in CI.
"""

import csv
import os
import statistics
import sys
import warnings

import numpy as np
from sklearn import datasets
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HIDDEN = 100
SEEDS = range(5)


def penguins():
    from palmerpenguins import load_penguins

    df = load_penguins().dropna().reset_index(drop=True)
    species = sorted(df["species"].unique())
    cls_cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    x_cls = df[cls_cols].to_numpy(float)
    y_cls = df["species"].map({s: i for i, s in enumerate(species)}).to_numpy()
    onehot = [f"species_{s.lower()}" for s in species]
    x_reg = np.column_stack(
        [df[["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]].to_numpy(float)]
        + [(df["species"] == s).to_numpy(float) for s in species]
        + [(df["sex"] == "male").to_numpy(float)]
    )
    reg_cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"] + onehot + ["male"]
    y_reg = df["body_mass_g"].to_numpy(float)
    return (
        ("penguins", "classification", x_cls, y_cls, cls_cols, "species"),
        ("penguins_mass", "regression", x_reg, y_reg, reg_cols, "body_mass_g"),
    )


def sets():
    for name, loader in [
        ("iris", datasets.load_iris),
        ("wine", datasets.load_wine),
        ("breast_cancer", datasets.load_breast_cancer),
        ("digits", datasets.load_digits),
    ]:
        d = loader()
        cols = [f"f{i}" for i in range(d.data.shape[1])] if name == "digits" else d.feature_names
        yield name, "classification", d.data, d.target, cols, "class"
    d = datasets.load_diabetes(scaled=False)
    yield "diabetes", "regression", d.data, d.target, d.feature_names, "progression"
    yield from penguins()


def fmt(v):
    """Integers as integers, other values with 6 significant digits (the sources have fewer)."""
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.6g}"


def write(path, x, y, cols, target):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([c.replace(" ", "_").replace(",", "") for c in cols] + [target])
        for row, t in zip(x, y):
            w.writerow([fmt(v) for v in row] + [fmt(t)])


def score(task, x_tr, y_tr, x_te, y_te, seed):
    if task == "classification":
        model = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(HIDDEN,), random_state=seed)
        )
    else:
        model = TransformedTargetRegressor(
            regressor=make_pipeline(
                StandardScaler(), MLPRegressor(hidden_layer_sizes=(HIDDEN,), random_state=seed)
            ),
            transformer=StandardScaler(),
        )
    with warnings.catch_warnings():
        # 200 epochs often end before sklearn's own tolerance is met; that is its default.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_tr, y_tr)
    return model.score(x_te, y_te)  # accuracy, or R²


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    os.makedirs(out, exist_ok=True)
    print(f"{'data set':<14} {'n':>5} {'task':<14} {'metric':<8} per seed 0..4 -> median")
    for name, task, x, y, cols, target in sets():
        strat = y if task == "classification" else None
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=0.2, random_state=0, stratify=strat
        )
        write(os.path.join(out, f"{name}_train.csv"), x_tr, y_tr, cols, target)
        write(os.path.join(out, f"{name}_test.csv"), x_te, y_te, cols, target)
        if "--no-fit" in sys.argv:
            continue
        # Read back what was written, so both sides train on the very same numbers.
        x_tr, y_tr = read(os.path.join(out, f"{name}_train.csv"))
        x_te, y_te = read(os.path.join(out, f"{name}_test.csv"))
        if task == "classification":
            y_tr, y_te = y_tr.astype(int), y_te.astype(int)
        scores = [score(task, x_tr, y_tr, x_te, y_te, s) for s in SEEDS]
        metric = "accuracy" if task == "classification" else "r2"
        per_seed = " ".join(f"{s:.4f}" for s in scores)
        print(
            f"{name:<14} {len(x):>5} {task:<14} {metric:<8} {per_seed} -> "
            f"{statistics.median(scores):.4f}",
            flush=True,
        )


def read(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1]


if __name__ == "__main__":
    main()
