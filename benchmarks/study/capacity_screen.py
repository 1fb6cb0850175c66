"""Screen (issue 11, fifteenth): the network's size and the optimiser's step, never screened
before: conv widths, kernel size, learning rate, batch size. Each config trains all 51
labelled series with the given seeds at otherwise shipped defaults and scores test.csv through
the backfill, exactly as restart_screen.py does (its rows at seeds 0-5 are the baseline).

    python benchmarks/study/capacity_screen.py OUT.jsonl SEEDS CONFIG [CONFIG ...]

CONFIG is a name from CONFIGS; FAMILIES=a,b limits the families. One JSON line per
(config, series, seed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import training.job as job
from benchmarks.study.restart_screen import labelled_series, train_and_score
from training.job import TrainOptions
from vaecore import VAEConfig

FAMILIES = (
    "nab-artificialWithAnomaly", "nab-realAdExchange", "nab-realTraffic", "nab-realTweets",
    "skab-valve1", "smd",
)
# name -> (network overrides, TrainOptions overrides); shipped: hidden (32, 64, 64), kernel 5,
# lr 2e-3, batch 64
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "shipped": ({}, {}),  # reproduces restart_screen.py's rows (check)
    "narrow": ({"hidden": (16, 32, 32)}, {}),
    "wide": ({"hidden": (64, 128, 128)}, {}),
    "kernel9": ({"kernel_size": 9}, {}),
    "lr1e-3": ({}, {"lr": 1e-3}),
    "lr5e-3": ({}, {"lr": 5e-3}),
    "batch32": ({}, {"batch_size": 32}),
}


def patch_network(net: dict[str, Any]) -> None:
    def vae_config(opts: TrainOptions, n_channels: int) -> VAEConfig:
        return VAEConfig(
            n_channels=n_channels, window=opts.window, latent_dim=opts.latent_dim,
            beta=opts.beta, variance=opts.variance, **net,
        )

    job._vae_config = vae_config  # type: ignore[attr-defined]


def run_configs(
    out: Path, seeds: list[int], names: list[str], setup: Callable[[str], dict[str, Any]]
) -> None:
    """One JSON line per (config, series, seed) appended to `out`: `setup(name)` patches what
    the config changes and returns its TrainOptions overrides."""
    with out.open("a") as sink:
        for name in names:
            train = setup(name)
            for family in os.environ.get("FAMILIES", ",".join(FAMILIES)).split(","):
                for folder, train_t, test in labelled_series(family):
                    for seed in seeds:
                        opts = TrainOptions(progress=False, seed=seed, **train)
                        row = {"config": name, "family": family, "series": folder.name}
                        row["seed"] = seed
                        row |= train_and_score(train_t, test, opts)
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()


def setup_config(name: str) -> dict[str, Any]:
    net, train = CONFIGS[name]
    patch_network(net)
    return train


def main() -> None:
    out, seeds, names = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    run_configs(out, seeds, names, setup_config)


if __name__ == "__main__":
    main()
