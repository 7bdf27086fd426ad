import os

import torch
from hypothesis import HealthCheck, settings

# Deterministic, bounded property tests in CI and by default; `HYPOTHESIS_PROFILE=dev` for wider local sweeps.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Two cores: keep each test process on a bounded number of threads so parallel runs do not oversubscribe.
torch.set_num_threads(min(2, torch.get_num_threads()))
