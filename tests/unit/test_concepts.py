"""One type per concept: the network config and the manifest's record of it, the runtime and
stored thresholds, and the one rule for a step without a score."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from modelstore.artifact import architecture_of, config_of, core_thresholds, manifest_thresholds
from schemas.manifest import Architecture
from schemas.manifest import Thresholds as StoredThresholds
from vaecore import Thresholds, VAEConfig
from vaecore.unscored import below_all, ranked

pytestmark = pytest.mark.unit


def test_a_hyper_parameter_is_added_in_two_places_or_this_fails() -> None:
    """`VAEConfig` (the network) and `Architecture` (the manifest) carry the same fields."""
    assert [f.name for f in dataclasses.fields(VAEConfig)] == list(Architecture.model_fields)


def test_config_and_architecture_round_trip() -> None:
    cfg = VAEConfig(n_channels=3, window=64, latent_dim=4, hidden=(8, 16), variance="channel")
    assert config_of(architecture_of(cfg)) == cfg


def test_thresholds_carry_the_same_fields_and_round_trip() -> None:
    assert [f.name for f in dataclasses.fields(Thresholds)] == list(StoredThresholds.model_fields)
    th = Thresholds(1.5, np.array([0.5, 2.0]), "pot", 0.003, 0.7)
    back = core_thresholds(manifest_thresholds(th))
    assert (back.window, back.method, back.target_false_alarm_rate, back.window_spread) == (
        1.5,
        "pot",
        0.003,
        0.7,
    )
    np.testing.assert_array_equal(back.point, th.point)


def test_a_step_without_a_score_ranks_lowest_and_is_never_above_a_threshold() -> None:
    scores = np.array([np.nan, -2.0, 3.0, np.inf])
    np.testing.assert_array_equal(ranked(scores), [-3.0, -2.0, 3.0, -3.0])
    np.testing.assert_array_equal(ranked(np.array([np.nan])), [0.0])
    assert not (below_all(np.array([np.nan])) > -1e300).any()
