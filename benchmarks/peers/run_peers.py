"""Runs inside benchmarks/.peers-venv: peer detectors from PyPI on the same splits as vaewatch.

usage: python run_peers.py IN.npz OUT.npz METHOD [METHOD ...]

IN.npz holds `n` and, for i < n, `train_i` and `test_i` (time x channels, float, NaN = missing,
already NaN-filled and standardised with the train statistics by the caller). OUT.npz gets
`<method>_<i>` = one score per test step (higher = more anomalous) and `<method>_seconds`.
A method that fails on a series writes NaNs for it and says so on stderr; the caller reports
that series as missing for the method rather than inventing a number.

Methods, each with its package's defaults except where noted:
  pyod_iforest      PyOD IForest on 16-step sliding windows (all channels), fit on train
  pyod_autoencoder  PyOD AutoEncoder on the same windows (batch 256 instead of 32: CPU time)
  pyod_vae          PyOD VAE on the same windows (batch 256 instead of 32: CPU time)
  tsbad_pca         TSB-AD Sub-PCA (univariate) / PCA (multivariate), unsupervised on test
  tsbad_cnn         TSB-AD CNN forecaster (semi-supervised: fit on train, score test)
  tsbad_omni        TSB-AD OmniAnomaly (stochastic recurrent VAE; fit on train, score test)
The TSB-AD methods take TSB-AD's own tuned hyper-parameters (Optimal_*_algo_HP_dict).
"""

import os
import sys
import time
import traceback
from typing import TextIO

import numpy as np

WINDOW = 16


def windows(values: np.ndarray, w: int = WINDOW) -> np.ndarray:
    """Row t -> the w rows ending at t (padded at the start), flattened (as quality.py)."""
    padded = np.vstack([np.repeat(values[:1], w - 1, axis=0), values])
    view = np.lib.stride_tricks.sliding_window_view(padded, w, axis=0)
    return view.reshape(len(values), -1)


def pyod_iforest(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from pyod.models.iforest import IForest

    model = IForest(random_state=0).fit(windows(train))
    return model.decision_function(windows(test))


def pyod_autoencoder(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from pyod.models.auto_encoder import AutoEncoder

    model = AutoEncoder(batch_size=256, verbose=0, random_state=0).fit(windows(train))
    return model.decision_function(windows(test))


def pyod_vae(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from pyod.models.vae import VAE

    model = VAE(batch_size=256, verbose=0, random_state=0).fit(windows(train))
    return model.decision_function(windows(test))


def _tsbad_params(name: str, channels: int) -> dict[str, object]:
    """TSB-AD's own tuned hyper-parameters, as its benchmark runner uses them."""
    from TSB_AD.HP_list import Optimal_Multi_algo_HP_dict, Optimal_Uni_algo_HP_dict

    table = Optimal_Uni_algo_HP_dict if channels == 1 else Optimal_Multi_algo_HP_dict
    return dict(table.get(name, {}))


def tsbad_pca(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Sub-PCA on univariate series, PCA on multivariate ones (TSB-AD's U and M lists)."""
    from TSB_AD.model_wrapper import run_Unsupervise_AD

    name = "Sub_PCA" if test.shape[1] == 1 else "PCA"
    out = run_Unsupervise_AD(name, test, **_tsbad_params(name, test.shape[1]))
    if isinstance(out, str):
        raise RuntimeError(out)
    return np.asarray(out)


def _semi(name: str, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    from TSB_AD.model_wrapper import run_Semisupervise_AD

    out = run_Semisupervise_AD(name, train, test, **_tsbad_params(name, test.shape[1]))
    if isinstance(out, str):
        raise RuntimeError(out)
    return np.asarray(out)


def tsbad_cnn(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    return _semi("CNN", train, test)


def tsbad_omni(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    return _semi("OmniAnomaly", train, test)


METHODS = {
    f.__name__: f
    for f in (pyod_iforest, pyod_autoencoder, pyod_vae, tsbad_pca, tsbad_cnn, tsbad_omni)
}


def fit_length(score: np.ndarray, n: int) -> np.ndarray:
    """Some peers return one score per window start; pad at the front to one per step."""
    score = np.asarray(score, dtype=float).ravel()
    if len(score) >= n:
        return score[-n:]
    return np.concatenate([np.full(n - len(score), score[0] if len(score) else np.nan), score])


def quiet_libraries(log_path: str) -> TextIO:
    """The peers print progress bars per epoch; send fds 1 and 2 to a log, keep ours visible."""
    progress = os.fdopen(os.dup(2), "w", buffering=1)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    return progress


def main() -> None:
    src, dst, *names = sys.argv[1:]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        sys.exit(f"unknown peer methods {unknown}; known: {sorted(METHODS)}")
    import torch
    from tqdm import tqdm

    progress = quiet_libraries(dst + ".log")
    torch.set_num_threads(os.cpu_count() or 1)
    data = np.load(src)
    n = int(data["n"])
    out: dict[str, np.ndarray] = {}
    bar = tqdm(total=n * len(names), desc="peers", unit="fit", file=progress)
    for name in names:
        started = time.perf_counter()
        for i in range(n):
            train, test = data[f"train_{i}"], data[f"test_{i}"]
            torch.manual_seed(0)
            np.random.seed(0)
            bar.set_postfix_str(f"{name} series {i + 1}/{n}")
            try:
                score = fit_length(METHODS[name](train, test), len(test))
            except Exception:  # a peer failing on one series must not stop the table
                print(f"{name} failed on series {i}:\n{traceback.format_exc()}", file=sys.stderr)
                print(f"{name} failed on series {i} (see {dst}.log)", file=progress)
                score = np.full(len(test), np.nan)
            out[f"{name}_{i}"] = score
            bar.update()
        out[f"{name}_seconds"] = np.array(time.perf_counter() - started)
    bar.close()
    np.savez(dst, **out)


if __name__ == "__main__":
    main()
