"""Preprocessing fitted on training rows only.

Numeric features: non-finite values become missing; missing values are imputed
with the training median and get a 0/1 indicator column when the training rows
had any; columns constant in the training rows are dropped (and named in the
report); the rest are standardized or mapped to a normal distribution through
training quantiles. Categorical features are one-hot encoded with the training
categories (a missing value is a category of its own; unseen categories encode
as all zeros). The target is standardized with the training mean and standard
deviation, and `Preprocessor.inverse_target` maps predictions back to the
target's original units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl
from sklearn.preprocessing import QuantileTransformer

logger = logging.getLogger(__name__)

NumericTransform = Literal["quantile-normal", "standard", "none"]
MISSING_CATEGORY = "<missing>"
QUANTILE_NOISE = 1e-3


@dataclass
class Preprocessed:
    """Model-ready arrays for one split part.

    Attributes:
        x_num: Numeric features, float32, shape (n_rows, n_numeric); these are
            what the encoders see.
        x_cat: One-hot categories and missing indicators, float32, shape
            (n_rows, n_extra); passed to the backbone as they are.
        y: Standardized target, float32, shape (n_rows,).
    """

    x_num: np.ndarray
    x_cat: np.ndarray
    y: np.ndarray


@dataclass
class PreprocessReport:
    """Findings of fitting on the training rows, for the run's record."""

    dropped_constant: list[str] = field(default_factory=list)
    missing_counts: dict[str, int] = field(default_factory=dict)
    nonfinite_counts: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)


class Preprocessor:
    """Fit on training rows, then transform any rows of the same table."""

    def __init__(
        self,
        numeric: list[str],
        categorical: list[str],
        target: str,
        numeric_transform: NumericTransform = "quantile-normal",
        seed: int = 0,
        quantile_noise: float = QUANTILE_NOISE,
    ) -> None:
        """Set up the column roles and the numeric transform.

        Args:
            quantile_noise: Standard deviation of the Gaussian noise added to
                the training values before the quantiles are fitted, as a
                fraction of each column's standard deviation (0 adds none).
        """
        if quantile_noise < 0:
            raise ValueError(
                f"quantile_noise={quantile_noise} is invalid; use 0 or more."
            )
        if numeric_transform not in ("quantile-normal", "standard", "none"):
            raise ValueError(
                f"numeric_transform={numeric_transform!r} is invalid; use "
                "'quantile-normal', 'standard' or 'none'."
            )
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.target = target
        self.numeric_transform = numeric_transform
        self.seed = seed
        self.quantile_noise = quantile_noise
        self.report = PreprocessReport()

    def fit(self, train: pl.DataFrame) -> Preprocessor:
        """Learn every statistic from the training rows ``train``.

        Fitting again replaces every statistic and the report.
        """
        self.report = PreprocessReport()
        values = self._numeric_array(train, count=True)
        self.medians = np.nanmedian(values, axis=0) if values.shape[1] else np.array([])
        self.indicator = np.isnan(values).any(axis=0)

        filled = np.where(np.isnan(values), self.medians, values)
        constant = np.nanmax(filled, axis=0, initial=-np.inf) == np.nanmin(
            filled, axis=0, initial=np.inf
        )
        constant |= np.isnan(self.medians)
        self.keep = ~constant
        self.report.dropped_constant = [
            n for n, c in zip(self.numeric, constant, strict=True) if c
        ]
        if self.report.dropped_constant:
            logger.warning(
                "Dropping numeric columns constant in the training rows: %s",
                ", ".join(self.report.dropped_constant),
            )

        self._fit_numeric_transform(filled[:, self.keep])
        self.category_levels = {
            name: sorted(set(_categories(train[name]))) for name in self.categorical
        }
        self.report.categories = {k: len(v) for k, v in self.category_levels.items()}

        y = train[self.target].cast(pl.Float64).to_numpy()
        self.y_mean = float(np.mean(y))
        self.y_std = float(np.std(y)) or 1.0
        return self

    def transform(self, frame: pl.DataFrame) -> Preprocessed:
        """Map rows to model-ready float32 arrays with the fitted statistics."""
        values = self._numeric_array(frame)
        missing = np.isnan(values)
        filled = np.where(missing, self.medians, values)[:, self.keep]
        x_num = self._apply_numeric_transform(filled)

        extra = [missing[:, self.indicator].astype(np.float64)]
        for name, levels in self.category_levels.items():
            codes = _categories(frame[name])
            extra.append(
                np.asarray(codes)[:, None] == np.asarray(levels, dtype=object)[None, :]
            )
        x_cat = np.concatenate(extra, axis=1) if extra else np.zeros((frame.height, 0))

        y = frame[self.target].cast(pl.Float64).to_numpy()
        return Preprocessed(
            x_num=x_num.astype(np.float32),
            x_cat=x_cat.astype(np.float32),
            y=((y - self.y_mean) / self.y_std).astype(np.float32),
        )

    def inverse_target(self, y: np.ndarray) -> np.ndarray:
        """Map standardized predictions back to the target's original units."""
        return np.asarray(y, dtype=np.float64) * self.y_std + self.y_mean

    @property
    def numeric_kept(self) -> list[str]:
        """Numeric columns that reach the encoder, in order."""
        return [n for n, k in zip(self.numeric, self.keep, strict=True) if k]

    def _numeric_array(self, frame: pl.DataFrame, count: bool = False) -> np.ndarray:
        if not self.numeric:
            return np.zeros((frame.height, 0))
        values = (
            frame.select([pl.col(n).cast(pl.Float64) for n in self.numeric])
            .to_numpy()
            .astype(np.float64, copy=True)
        )
        nonfinite = np.isinf(values)
        if count:
            for index, name in enumerate(self.numeric):
                n_missing = int(np.isnan(values[:, index]).sum())
                n_inf = int(nonfinite[:, index].sum())
                if n_missing:
                    self.report.missing_counts[name] = n_missing
                if n_inf:
                    self.report.nonfinite_counts[name] = n_inf
        values[nonfinite] = np.nan
        return values

    def _fit_numeric_transform(self, train: np.ndarray) -> None:
        self.quantiles: QuantileTransformer | None = None
        self.mean = train.mean(axis=0) if train.size else np.zeros(train.shape[1])
        self.std = train.std(axis=0) if train.size else np.ones(train.shape[1])
        self.std = np.where(self.std > 0, self.std, 1.0)
        if self.numeric_transform != "quantile-normal" or train.shape[1] == 0:
            return

        # Noise of a small fraction (by default 0.1%) of each column's standard
        # deviation separates tied values, so heavily tied columns do not
        # collapse onto a few quantiles. It only shapes the fitted quantiles;
        # transformed values carry none.
        rng = np.random.default_rng(self.seed)
        noise = self.quantile_noise * self.std * rng.standard_normal(train.shape)
        jittered = train + noise
        n_quantiles = max(min(len(train) // 30, 1000), 10)
        self.quantiles = QuantileTransformer(
            # More quantiles than rows would only make scikit-learn warn and
            # lower the count to the number of rows itself.
            n_quantiles=min(n_quantiles, len(train)),
            output_distribution="normal",
            subsample=10**9,
            random_state=self.seed,
        ).fit(jittered)

        # The noise can move the outer fitted quantiles past the training
        # range. Values are therefore clipped to that range before the
        # transform, so anything beyond the training maximum maps exactly where
        # the maximum does instead of jumping to the top of the output range.
        self.low, self.high = train.min(axis=0), train.max(axis=0)

    def _apply_numeric_transform(self, values: np.ndarray) -> np.ndarray:
        if self.numeric_transform == "none" or values.shape[1] == 0:
            return values
        if self.quantiles is not None:
            return self.quantiles.transform(np.clip(values, self.low, self.high))
        return (values - self.mean) / self.std


def _categories(column: pl.Series) -> list[str]:
    return column.cast(pl.String).fill_null(MISSING_CATEGORY).to_list()
