import torch

from scoringrules_torch.testing import register_hypothesis_profiles

# Deterministic, bounded property tests by default (HYPOTHESIS_PROFILE=dev|thorough for wider random sweeps).
register_hypothesis_profiles(load=True)

# Two cores: keep each test process on a bounded number of threads so parallel runs do not oversubscribe.
torch.set_num_threads(min(2, torch.get_num_threads()))
