"""Training data: series from CSV files, masked and cut into windows for the VAE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.series_csv import SeriesTable, find_series_files, read_series_csv
from vwbase.errors import UserInputError


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # (T_train, C) raw values, NaN = missing or labelled anomalous
    val: np.ndarray  # (T_val, C)


def load_tables(paths: Sequence[Path], filename: str) -> list[SeriesTable]:
    """Every `filename` under the paths; all must share one channel list (one model)."""
    tables = [read_series_csv(p) for p in find_series_files(paths, filename)]
    first = tables[0]
    for t in tables[1:]:
        if t.channels != first.channels:
            raise UserInputError(
                f"{t.path} has channels {list(t.channels)[:4]}..., but {first.path} has "
                f"{list(first.channels)[:4]}...; one model needs one channel list"
            )
    return tables


def masked_values(table: SeriesTable) -> np.ndarray:
    """Labelled anomalies are hidden from the likelihood exactly like missing points."""
    values = table.values.astype(np.float64, copy=True)
    if table.labels is not None:
        values[table.labels == 1] = np.nan
    return values


def split_series(
    values: np.ndarray, val_fraction: float, window: int, where: str = "series"
) -> Split:
    """Hold out the last `val_fraction` of a series (at least one window) for validation."""
    n_val = _validation_rows(len(values), val_fraction, window)
    if len(values) - n_val < window:
        raise UserInputError(
            f"{where}: {len(values)} rows is too short for window {window} plus a validation tail"
            f" (it needs {_rows_needed(val_fraction, window)}: one window to train on, and a"
            f" held-out tail of {val_fraction:g} of the rows and at least one window); give it"
            " more rows or a smaller --window"
        )
    return Split(values[:-n_val], values[-n_val:])


def _validation_rows(rows: int, val_fraction: float, window: int) -> int:
    return max(int(rows * val_fraction), window)


def _rows_needed(val_fraction: float, window: int) -> int:
    rows = 2 * window
    while rows - _validation_rows(rows, val_fraction, window) < window:
        rows += 1
    return rows


def unobserved_channels(parts: Sequence[np.ndarray], channels: Sequence[str]) -> list[str]:
    """The channels with no observed (non-missing, unlabelled) value in any of `parts`."""
    seen = np.zeros(len(channels), dtype=bool)
    for part in parts:
        seen |= ~np.isnan(part).all(axis=0)
    return [name for name, observed in zip(channels, seen, strict=True) if not observed]


def cut_windows(values: np.ndarray, window: int, stride: int) -> np.ndarray:
    """(T, C) -> (N, window, C) sliding windows; windows with nothing observed are dropped."""
    if len(values) < window:
        return np.empty((0, window, values.shape[1]), dtype=values.dtype)
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (N, C, window)
    picked = view[::stride].transpose(0, 2, 1)
    keep = ~np.isnan(picked).all(axis=(1, 2))
    return np.ascontiguousarray(picked[keep])


def stride_for(total_rows: int, window: int, max_windows: int) -> int:
    """The smallest stride that keeps the number of training windows under `max_windows`."""
    possible = max(total_rows - window + 1, 1)
    return max(1, int(np.ceil(possible / max_windows)))
