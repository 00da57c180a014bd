"""The in-memory form of one regression dataset, whatever source it came from."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


class DatasetError(Exception):
    """A dataset could not be loaded or is unusable for regression.

    The message names the OpenML id and the fix.
    """


@dataclass(frozen=True)
class Dataset:
    """One OpenML regression table.

    Attributes:
        openml_id: The OpenML dataset id.
        name: The OpenML dataset name.
        target: Name of the target column inside ``frame``.
        frame: Features and target, one row per example.
        categorical: Names of the categorical feature columns (stored as strings).
        source: Where the table came from: ``"cache"``, ``"mirror"`` or
            ``"openml"``.
    """

    openml_id: int
    name: str
    target: str
    frame: pl.DataFrame
    categorical: tuple[str, ...]
    source: str

    @property
    def features(self) -> list[str]:
        """Feature column names, in table order, without the target."""
        return [c for c in self.frame.columns if c != self.target]

    @property
    def numeric(self) -> list[str]:
        """Numeric feature column names, in table order."""
        return [c for c in self.features if c not in self.categorical]

    def validate(self) -> None:
        """Raise `DatasetError` unless the target is a usable regression target."""
        if self.target not in self.frame.columns:
            raise DatasetError(
                f"OpenML dataset {self.openml_id} ({self.name}): target column "
                f"{self.target!r} is not in the table; columns are "
                f"{self.frame.columns[:10]}... Set `target` for this dataset in the "
                "suite file."
            )
        dtype = self.frame.schema[self.target]
        if not dtype.is_numeric():
            raise DatasetError(
                f"OpenML dataset {self.openml_id} ({self.name}): target "
                f"{self.target!r} has dtype {dtype}, which is not numeric, so it "
                "cannot be a regression target. Pick a numeric target in the suite "
                "file or drop the dataset from the suite."
            )
        for column in self.categorical:
            if column not in self.frame.columns:
                raise DatasetError(
                    f"OpenML dataset {self.openml_id} ({self.name}): categorical "
                    f"column {column!r} is not in the table."
                )
