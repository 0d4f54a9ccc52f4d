"""Rebuild ``profanity_svm.npz``, the learned layer's weights, from ``alt-profanity-check``.

    .venv/bin/pip install alt-profanity-check && .venv/bin/python -m archivist_safety.build_model

The package ships a scikit-learn pipeline (TF-IDF + LinearSVC, five sigmoid-calibrated
folds). Loading it needs scikit-learn and ~2-4 s; at run time we only need, per word,
its IDF and the five fold weights, plus each fold's intercept and sigmoid. Those are
written here as float32 arrays (~0.4 MB), loaded by :mod:`archivist_safety.toxicity` in
milliseconds with numpy alone. No data set is involved: the weights are the package's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TARGET = Path(__file__).with_name("profanity_svm.npz")


def build(target: Path = TARGET) -> Path:
    from importlib import resources

    import joblib

    data = resources.files("profanity_check") / "data"
    vectorizer = joblib.load(data / "vectorizer.joblib")
    model = joblib.load(data / "model.joblib")
    folds = model.calibrated_classifiers_
    words = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    index = np.array([vectorizer.vocabulary_[w] for w in words])
    coefs = np.stack([f.estimator.coef_.ravel()[index] for f in folds], axis=1)
    np.savez_compressed(
        target,
        words=np.array("\n".join(words)),
        idf=vectorizer.idf_[index].astype(np.float32),
        coefs=coefs.astype(np.float32),
        intercepts=np.array([f.estimator.intercept_[0] for f in folds], dtype=np.float64),
        sigmoids=np.array([(f.calibrators[0].a_, f.calibrators[0].b_) for f in folds], dtype=np.float64),
        stop_words=np.array("\n".join(sorted(vectorizer.get_stop_words() or ()))),
    )
    return target


if __name__ == "__main__":
    print(build())
