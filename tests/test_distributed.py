"""Scores of ensembles split over processes (``process_group=``), with 2 and 4 gloo processes on CPU.

The worker processes (``tests/distributed_worker.py``) start once per world size and run every case; each test
compares one case with a single process scoring the concatenated ensemble (float64, to 1e-12).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import distributed_worker as worker  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is unavailable")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(world: int, out: Path) -> list[dict]:
    """Run ``world`` ranks of the worker in fresh (spawned) processes, one thread each."""
    port = str(_free_port())
    ctx = multiprocessing.get_context("spawn")  # not fork: inductor's compile workers may run in this process
    procs = [ctx.Process(target=worker.main, args=(r, world, port, out)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    for r, p in enumerate(procs):
        if p.is_alive():
            p.kill()
        assert p.exitcode == 0, f"rank {r} exited with {p.exitcode}"
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module", params=[2, 4], ids=["world2", "world4"])
def ranks(request, tmp_path_factory):
    world = request.param
    return world, _launch(world, tmp_path_factory.mktemp(f"dist{world}"))


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("index", range(len(worker.CASES)), ids=[c[0] for c in worker.CASES])
def test_value_and_gradients_equal_single_process(ranks, index):
    world, results = ranks
    name, _, _, _, sample_dim, _, nan = worker.CASES[index]
    x, y, w = worker.make_case(index, world)
    ref = worker.run_case(index, x, y, w, None)
    counts = worker.counts_for(world)
    if "error" in ref:
        assert nan == "raise" and "NaN" in ref["error"]
        for r in range(world):  # every rank raises, not only the one holding the NaN
            assert "nan_policy='raise'" in results[r][name]["error"]
        return
    for r in range(world):
        got = results[r][name]
        assert "error" not in got, got
        _close(got["value"], ref["value"])  # the full-ensemble score, on every rank
        gx, _ = worker.shard(ref["grad_x"], ref["grad_w"], sample_dim, counts, r)
        _close(got["grad_x"], gx)  # the gradient with respect to this rank's own members
        if w is not None:
            _, gw = worker.shard(ref["grad_x"], ref["grad_w"], sample_dim, counts, r)
            _close(got["grad_w"], gw)
    if nan == "omit":
        assert torch.isfinite(results[-1][name]["grad_x"]).all()
        assert torch.isfinite(ref["value"]).all()
    if nan == "propagate":
        assert torch.isnan(ref["value"]).any()


def test_omit_equals_the_ensemble_without_the_nan_member(ranks):
    """Independent oracle: a float64 loop over observations that drops the NaN member explicitly."""
    world, results = ranks
    index = [c[0] for c in worker.CASES].index("crps-nan-omit")
    x, y, _ = worker.make_case(index, world)
    got = results[0]["crps-nan-omit"]["value"]
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            members = [float(v) for v in x[:, i, j] if v == v]
            k = len(members)
            acc = sum(abs(v - float(y[i, j])) for v in members) / k
            spread = sum(abs(a - b) for a in members for b in members) / (2 * k * (k - 1))
            assert abs(float(got[i, j]) - (acc - spread)) < 1e-12


def test_batch_shape_mismatch_is_a_clear_error_on_every_rank(ranks):
    world, results = ranks
    for r in range(world):
        msg = results[r]["shape-error"]
        assert msg is not None and "same batch/event shape" in msg
        assert f"rank {world - 1}: (m=" in msg


def test_module_forwards_process_group(ranks):
    world, results = ranks
    from scoringrules_torch.functional.crps_sample import crps_ensemble

    x, y, _ = worker.make_case(0, world)
    ref = crps_ensemble(x, y, estimator="afcrps", alpha=0.7, reduction="none")
    for r in range(world):
        _close(results[r]["module"].detach(), ref)


def test_ddp_parameter_gradients_equal_single_process(ranks):
    """With ``scale_grad_for_ddp``, DDP's averaged gradients equal one process on the concatenated ensemble."""
    world, results = ranks
    from scoringrules_torch.functional.energy import energy_score

    model = worker.ddp_model()
    inputs, target, noise = worker.ddp_data(world)
    loss = energy_score(worker.members(model, inputs, noise), target)
    loss.backward()
    for r in range(world):
        _close(results[r]["ddp-loss"], loss.detach())
        for n, p in model.named_parameters():
            _close(results[r]["ddp-grads"][n], p.grad)


def test_bytes_exchanged_follow_the_formula(ranks):
    world, results = ranks
    counts = worker.counts_for(world)
    b = 1
    for s in worker.BATCH:
        b *= s
    header = 8 * (4 + 2 * 16)
    payload = 8 * max(counts) * b * worker.DIM  # padded members, float64
    moments = 8 * b * (2 * worker.DIM**2 + 2)  # two (B, d, d) moments and two (B,) weight sums
    ring = 2 * (world - 1) * moments // world
    for r in range(world):
        assert results[r]["bytes-energy-fair"] == {
            "collective": "all_gather", "payload": payload, "sent": header + payload,
            "received": (world - 1) * (header + payload), "world_size": world}
        assert results[r]["bytes-variogram-nrg-moments"] == {
            "collective": "all_reduce", "payload": moments, "sent": header + ring,
            "received": (world - 1) * header + ring, "world_size": world}


def test_variogram_exchange_choice():
    """Moments are exchanged when fewer elements than the members: B (2 d^2 + 2) < m_max B d."""
    from scoringrules_torch._internal.distributed import variogram_moments_cost

    assert variogram_moments_cost(10, 3, 5) == (150, 200)  # few members: gather them
    assert variogram_moments_cost(10, 3, 64) == (1920, 200)  # many members: all-reduce the moments


def test_process_group_without_init_is_a_clear_error():
    from scoringrules_torch.functional.crps_sample import crps_ensemble

    if torch.distributed.is_initialized():
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(RuntimeError, match="not initialised"):
        crps_ensemble(torch.randn(3, 2), torch.randn(2), process_group=object())


def _run_example_rank(rank: int, world: int, port: str, args: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=port)
    import distributed_ensemble

    distributed_ensemble.main(args)


def test_example_smoke_two_processes_follow_the_single_process_run(tmp_path):
    """The example, tiny: 2 gloo ranks train exactly like one process holding all members."""
    pytest.importorskip("statsmodels", reason="the example's data set (El Nino) ships with statsmodels")
    sys.path.insert(0, str(ROOT / "examples"))
    import distributed_ensemble

    args = ["--steps", "4", "--members", "5", "--hidden", "8", "--eval-members", "6", "--log-every", "100"]
    threads = torch.get_num_threads()
    try:
        single = distributed_ensemble.main(args)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "two.json"
    port = str(_free_port())
    ctx = multiprocessing.get_context("spawn")  # not fork: inductor's compile workers may run in this process
    procs = [ctx.Process(target=_run_example_rank, args=(r, 2, port, [*args, "--out", str(out)])) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    two = json.loads(out.read_text())
    assert two["world_size"] == 2 and single["world_size"] == 1
    # Same members (noise sliced per rank) and DDP-scaled gradients: the same trajectory up to float32 rounding.
    torch.testing.assert_close(torch.tensor(two["loss_curve"]), torch.tensor(single["loss_curve"]), rtol=1e-4,
                               atol=1e-6)
    assert single["loss_curve"][-1] < single["loss_curve"][0]
    for key in ("heldout_fair_crps_model", "heldout_fair_crps_climatology"):
        assert math.isfinite(two[key]) and two[key] > 0
    assert math.isclose(two["heldout_fair_crps_climatology"], single["heldout_fair_crps_climatology"], rel_tol=1e-6)
