"""The forecasting tutorial (examples/forecast_co2.py) end to end on a short stretch of the CO2 series:
every head trains, rolls out, is scored, and beats a forecaster that ignores the history; the plot is written."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("statsmodels", reason="the tutorial's data set ships with statsmodels")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "forecast_co2.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("forecast_co2", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["forecast_co2"] = module
    spec.loader.exec_module(module)
    return module


def test_forecast_tutorial_quick(tmp_path):
    example = _load_example()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        results = example.main(["--quick", "--png", str(tmp_path / "forecast.png")])
    finally:
        torch.set_num_threads(threads)
    assert set(results) == {*example.HEADS, "seasonal naive"}
    horizon = 8
    for name, r in results.items():
        assert (
            r["crps"].shape == (horizon,) and np.isfinite(r["crps"]).all() and (r["crps"] > 0).all()
        )
        assert np.isfinite(r["energy"]) and r["energy"] > 0, name
        assert ((r["coverage80"] >= 0) & (r["coverage80"] <= 1)).all()
    # a forecaster that ignores the history: a random walk whose steps are drawn from the training changes
    levels, dates = example.load_co2()
    data = example.Data(levels[:700], dates[:700])
    origins = data.origins(horizon, 26)
    target = data.targets(origins, horizon)
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, data.n_train - 1, (200, len(origins), horizon), generator=gen)
    steps = torch.from_numpy(np.diff(levels[:700]))[rows]
    walk = torch.from_numpy(levels[origins]).reshape(1, -1, 1) + torch.cumsum(steps, dim=2)
    uninformed = example.evaluate(walk[..., None], target)
    for name in example.HEADS:
        assert results[name]["crps"].mean() < uninformed["crps"].mean(), name
    assert (tmp_path / "forecast.png").stat().st_size > 10_000
    table = example.format_table(results, horizon)
    assert table.count("\n") == len(results) + 1 and "| implicit |" in table
