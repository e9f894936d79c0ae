"""Kaggle's evaluation metric names -> kit's metric names, and the lookup of a competition's metric on Kaggle.

Kaggle lists each competition's metric (`ApiCompetition.evaluation_metric` in kagglesdk) in the words of its
evaluation page ("Categorization Accuracy", "Area Under Receiver Operating Characteristic Curve") or its metric
class ("MeanFScoreBeta"). The table maps the ones kit scores; others get the task's default, said in one line.
"""

from __future__ import annotations

import re

# normalised Kaggle name (lower case, letters and digits only) -> kit.metrics name
KAGGLE_METRICS: dict[str, str] = {}
# kit.metrics name -> the name Kaggle's pages use for it (the local Kaggle sandbox lists it so)
KAGGLE_NAME: dict[str, str] = {}


def _add(kit_name: str, *names: str) -> None:
    KAGGLE_NAME.setdefault(kit_name, names[0])
    for n in names:
        KAGGLE_METRICS[normalise(n)] = kit_name


def normalise(name: str) -> str:
    """'Area Under ROC Curve' -> 'areaunderroccurve' (case, spaces, punctuation dropped)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_add("accuracy", "Categorization Accuracy", "Accuracy", "Classification Accuracy", "Accuracy Score",
     "CategorizationAccuracy")
_add("auc", "Area Under Receiver Operating Characteristic Curve", "AUC", "ROC AUC", "AUC-ROC", "AUCROC",
     "Area Under ROC Curve", "Area Under the ROC Curve", "ROC Curve", "RocAuc", "ROC AUC Score")
_add("rmse", "Root Mean Squared Error", "Root Mean Square Error", "RMSE", "RootMeanSquaredError")
_add("rmsle", "Root Mean Squared Logarithmic Error", "Root Mean Squared Log Error", "RMSLE",
     "Root Mean Square Logarithmic Error", "RootMeanSquaredLogarithmicError")
_add("logloss", "Log Loss", "LogLoss", "Multiclass Loss", "Multi Class Log Loss", "Multiclass Log Loss",
     "Binary Log Loss", "Logarithmic Loss", "Mean Column-wise Log Loss", "Cross Entropy", "Binary Cross Entropy")
_add("mae", "Mean Absolute Error", "MAE", "MeanAbsoluteError")
_add("f2_samples", "Mean F2-Score", "Mean F2 Score", "MeanFScoreBeta", "Mean FScore Beta")
_add("f1_samples", "Mean F1-Score", "Mean F1 Score", "MeanFScore", "Mean FScore")
_add("f1", "F1 Score", "F1", "F-Score", "F1-Score", "FScore")
_add("f1_macro", "Macro F1 Score", "Macro F1", "F1 Macro", "Macro-averaged F1", "Macro F1-Score")
_add("r2", "R2 Score", "R2", "R^2", "R Squared", "Coefficient of Determination")


def kit_metric(kaggle_name: str | None) -> str | None:
    """kit's name for Kaggle's metric `kaggle_name`, or None when kit does not score it."""
    if not kaggle_name:
        return None
    return KAGGLE_METRICS.get(normalise(kaggle_name))


def lookup(slug: str) -> tuple[str | None, str]:
    """Kaggle's evaluation metric for `slug` through the official client, and a note saying where it came from.

    Only when credentials are there (the client is imported only then: it authenticates at import time); no
    credentials, no answer or a competition not in the list give (None, why), never an error: the metric then
    falls back to `--metric` or the task's default.
    """
    from kit.kaggle.credentials import find_credentials
    from kit.kaggle.errors import KaggleError, NoCredentials

    try:
        find_credentials()
    except NoCredentials:
        return None, "no Kaggle credentials, so Kaggle's metric was not looked up"
    from kit.kaggle.client import Kaggle

    try:
        name = Kaggle(slug).evaluation_metric(slug)
    except KaggleError as e:
        return None, f"Kaggle's metric not looked up: {e}"
    if name is None:
        return None, f"Kaggle's competition list does not show '{slug}' or its metric"
    return name, f"Kaggle's evaluation metric for '{slug}' is {name!r}"
