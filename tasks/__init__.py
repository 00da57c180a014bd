"""Benchmark tasks: suites of OpenML datasets, loading, splits and preprocessing.

This package imports nothing else of the project, so the data side can be used
and tested on its own.
"""

from tasks.dataset import Dataset, DatasetError
from tasks.loader import DataSources, load_dataset
from tasks.preprocess import Preprocessed, Preprocessor
from tasks.splits import Split, make_split
from tasks.suites import Suite, SuiteEntry, load_suite

__all__ = [
    "DataSources",
    "Dataset",
    "DatasetError",
    "Preprocessed",
    "Preprocessor",
    "Split",
    "Suite",
    "SuiteEntry",
    "load_dataset",
    "load_suite",
    "make_split",
]
