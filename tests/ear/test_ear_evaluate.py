"""Evaluator: Fréchet distance and energy distance against scipy, the digits pipeline end to end."""

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.spatial.distance import cdist

from reference.ear.configs import apply_overrides, preset
from reference.ear.metrics import energy_distance, frechet_distance, gaussian_stats, score_images


def _scipy_fd(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    ours = frechet_distance(
        *gaussian_stats(torch.from_numpy(a)), *gaussian_stats(torch.from_numpy(b))
    )
    assert ours == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), rel=1e-8, abs=1e-9)
    assert frechet_distance(
        *gaussian_stats(torch.from_numpy(a)), *gaussian_stats(torch.from_numpy(a))
    ) == pytest.approx(0.0, abs=1e-8)


def test_energy_distance_matches_a_float64_reference():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(40, 5)) + 0.3
    dxy, dxx, dyy = cdist(x, y).mean(), cdist(x, x).sum() / (30 * 29), cdist(y, y).sum() / (40 * 39)
    assert energy_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        2 * dxy - dxx - dyy, rel=1e-10
    )


def test_score_images_on_digits(tmp_path):
    from reference.ear.data import load_digits

    cfg = apply_overrides(preset("tiny"), ["eval.classifier_epochs=2"])
    x, y = load_digits()
    # "generated" = real held-out digits with their labels: accuracy high, distances near the floor;
    # the same images with shuffled labels: accuracy near chance
    imgs = torch.from_numpy(x[1297 : 1297 + 200]).float()[:, None] / 255
    labels = torch.from_numpy(y[1297 : 1297 + 200])
    good = score_images(imgs, labels, cfg, tmp_path, verbose=False)
    assert (tmp_path / "classifier.pt").exists()
    bad = score_images(
        imgs,
        labels[torch.randperm(200, generator=torch.Generator().manual_seed(0))],
        cfg,
        tmp_path,
        verbose=False,
    )
    assert good["class_accuracy"] > 0.6 and bad["class_accuracy"] < 0.4
    noise = score_images(torch.rand(200, 1, 8, 8), labels, cfg, tmp_path, verbose=False)
    assert noise["classifier_fd"] > 5 * good["classifier_fd_floor"]
    assert noise["pixel_energy_distance"] > 5 * abs(good["pixel_energy_distance_floor"])
    assert good["n"] == 200
