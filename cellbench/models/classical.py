"""Classical models: scikit-learn pipelines that impute, scale and classify."""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cellbench.config import RandomForestModel


def build_random_forest(params: RandomForestModel, seed: int, n_jobs: int = 1) -> Pipeline:
    """A random forest behind median imputation (NaN features) and standard scaling."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            (
                "classify",
                RandomForestClassifier(
                    n_estimators=params.n_estimators,
                    max_depth=params.max_depth,
                    min_samples_leaf=params.min_samples_leaf,
                    class_weight=params.class_weight,
                    random_state=seed,
                    n_jobs=n_jobs,
                ),
            ),
        ]
    )
