"""Propriety testing for scoring rules: Monte Carlo checks with common random numbers, and hypothesis strategies.

Use it to check that a score (one of ours, or your own, or a training trick such as down-weighting the spread
term of the energy score) is proper: the true distribution ``Q`` must have the lowest expected score.

>>> import functools, torch
>>> from torch.distributions import Normal
>>> from scoringrules_torch.testing import assert_proper, assert_strictly_proper
>>> def crps_fair(samples, target):  # one value per observation
...     m = samples.shape[0]
...     spread = (samples[:, None] - samples[None]).abs().sum((0, 1)) / (m * (m - 1))
...     return (samples - target).abs().mean(0) - spread / 2
>>> Q = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
>>> P = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
>>> _ = assert_strictly_proper(crps_fair, P, Q, n_obs=8192, n_samples=8)

Contents:

* :func:`expected_score`, :func:`compare_expected_scores`: Monte Carlo expected scores with standard errors;
* :func:`assert_proper`, :func:`assert_strictly_proper`, :func:`assert_equal_expected_scores`: decisions at ``z``
  standard errors of the paired difference, with failure messages that give both expected scores, their
  difference, its standard error, ``P`` and ``Q``;
* :mod:`scoringrules_torch.testing.closed_forms`: closed-form (expected) scores used as oracles;
* :mod:`scoringrules_torch.testing.strategies`: hypothesis strategies for ``Q`` and perturbed ``P`` (needs the
  ``hypothesis`` package, imported only when that submodule is);
* :func:`register_hypothesis_profiles`: deterministic hypothesis profiles for CI.
"""

from __future__ import annotations

import os
from typing import Any

from scoringrules_torch.testing import closed_forms
from scoringrules_torch.testing.harness import (
    ExpectedScore,
    ScoreComparison,
    assert_equal_expected_scores,
    assert_proper,
    assert_strictly_proper,
    compare_expected_scores,
    describe_distribution,
    expected_score,
)

__all__ = [
    "ExpectedScore",
    "ScoreComparison",
    "expected_score",
    "compare_expected_scores",
    "assert_proper",
    "assert_strictly_proper",
    "assert_equal_expected_scores",
    "describe_distribution",
    "closed_forms",
    "register_hypothesis_profiles",
    "CI_PROFILE",
    "DEV_PROFILE",
    "THOROUGH_PROFILE",
]

CI_PROFILE = "scoringrules-torch-ci"
DEV_PROFILE = "scoringrules-torch-dev"
THOROUGH_PROFILE = "scoringrules-torch-thorough"


def register_hypothesis_profiles(*, load: bool = False) -> str:
    """Register deterministic hypothesis profiles and return the name of the one selected.

    Profiles:

    * ``"scoringrules-torch-ci"``: ``derandomize=True`` (the same examples on every run), no example database,
      ``deadline=None`` (timings on shared CI machines vary), ``max_examples=10`` unless a test sets its own,
      ``print_blob=True``;
    * ``"scoringrules-torch-dev"``: like CI but randomised (new examples each run, 25 by default);
    * ``"scoringrules-torch-thorough"``: randomised, 200 examples by default (for ``-m slow`` sweeps).

    The selected profile is the one named by the ``HYPOTHESIS_PROFILE`` environment variable when it is one of
    these (the short names ``ci``, ``dev`` and ``thorough`` select them too), else the CI profile. Calling this
    again is harmless. Without ``load`` the global hypothesis settings are not touched: apply the profile to one
    test with ``@settings(settings.get_profile(name), max_examples=...)``.

    Args:
        load: also load the selected profile (``settings.load_profile``).

    Returns:
        The selected profile name.

    Examples:
        >>> from hypothesis import settings
        >>> name = register_hypothesis_profiles()
        >>> settings.get_profile(CI_PROFILE).derandomize
        True
    """
    from hypothesis import HealthCheck, settings

    common: dict[str, Any] = {
        "deadline": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow],
    }
    base = settings.get_profile("default")  # not whatever profile happens to be loaded
    settings.register_profile(
        CI_PROFILE, base, derandomize=True, database=None, max_examples=10, **common
    )
    settings.register_profile(DEV_PROFILE, base, derandomize=False, max_examples=25, **common)
    settings.register_profile(THOROUGH_PROFILE, base, derandomize=False, max_examples=200, **common)
    aliases = {"ci": CI_PROFILE, "dev": DEV_PROFILE, "thorough": THOROUGH_PROFILE}
    name = os.environ.get("HYPOTHESIS_PROFILE", CI_PROFILE)
    name = aliases.get(name, name)
    if name not in (CI_PROFILE, DEV_PROFILE, THOROUGH_PROFILE):
        name = CI_PROFILE
    if load:
        settings.load_profile(name)
    return name


def __getattr__(name: str) -> Any:
    # `scoringrules_torch.testing.strategies` without importing hypothesis at package import time
    if name == "strategies":
        import importlib

        return importlib.import_module("scoringrules_torch.testing.strategies")
    raise AttributeError(f"module 'scoringrules_torch.testing' has no attribute {name!r}")
