"""Built-in data: small mixtures with known structure used by the checks, the CLI and the notebooks."""

from __future__ import annotations

import numpy as np

from ._mixture import GaussianMixture
from ._validation import check_positive_int

PRESETS = ("seed-gmm10", "bimodal-1d", "ring-2d", "digits")
CIFAR10_SHAPE = (3, 32, 32)


def seed_gmm10(sigma: float = 0.6, n_components: int = 5, dim: int = 10, separation: float = 3.0) -> GaussianMixture:
    """The seeds' synthetic law: equal-weight mixture of ``N(mu_k, sigma^2 I_10)``, k = 1..5.

    The papers do not give the means; ours are ``separation`` times the first five coordinate
    axes (pairwise distance ``separation * sqrt(2)``, so the modes are well separated for
    ``sigma = 0.6``, the value a public reproduction reports). Deterministic: no random draw.
    """
    K = check_positive_int(n_components, "n_components", allow_zero=False)
    d = check_positive_int(dim, "dim", allow_zero=False)
    if K > d:
        raise ValueError(f"n_components must be <= dim for axis-aligned means; got {K} > {d}")
    means = separation * np.eye(d)[:K]
    return GaussianMixture(np.full(K, 1.0 / K), means, np.full(K, sigma**2))


def bimodal_1d() -> GaussianMixture:
    """``0.3 N(-2, 0.5^2) + 0.7 N(1.5, 0.5)``: asymmetric, with visible high-order structure."""
    return GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.25, 0.5])


def ring_2d(n_components: int = 8, radius: float = 3.0, variance: float = 0.1) -> GaussianMixture:
    """Equal-weight Gaussians on a circle: structure at angular frequency ``n_components``."""
    K = check_positive_int(n_components, "n_components", allow_zero=False)
    angles = 2 * np.pi * np.arange(K) / K
    means = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture(np.full(K, 1.0 / K), means, np.full(K, variance))


def digits_images() -> np.ndarray:
    """The 8x8 digit images bundled with scikit-learn (1797 x 64), scaled from [0, 16] to [-1, 1].

    The [-1, 1] range is the usual input scaling of image diffusion models; ``P_t`` then acts on
    the pixels as it would inside such a model.
    """
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float64) / 8.0 - 1.0


def digits() -> GaussianMixture:
    """The digits images as data (point masses): ``empirical(digits_images())``."""
    from ._mixture import empirical

    return empirical(digits_images())


def load_cifar10(folder, batches=("data_batch_1",), max_images: int | None = None) -> np.ndarray:
    """Images from the standard CIFAR-10 python-pickle batches in a local folder, scaled to [-1, 1].

    Each batch file holds a pickled dict with ``b"data"``, a (N, 3072) uint8 array in channel-major
    order (1024 red, 1024 green, 1024 blue values of a 32x32 image). Returns (N, 3072) float64.
    Nothing is downloaded. Only open files you trust: the format is a Python pickle.
    """
    import pickle
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder must be an existing directory holding CIFAR-10 batches; got {root}")
    out = []
    for name in batches:
        path = root / name
        if not path.exists():
            raise ValueError(f"CIFAR-10 batch not found: {path}")
        with open(path, "rb") as f:
            try:
                batch = pickle.load(f, encoding="bytes")
            except Exception as exc:  # a corrupt or foreign file: say which one
                raise ValueError(f"{path} is not a CIFAR-10 python batch: {exc}") from None
        data = batch.get(b"data") if isinstance(batch, dict) else None
        if data is None:
            raise ValueError(f"{path} has no b'data' entry; is it a CIFAR-10 python batch?")
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != int(np.prod(CIFAR10_SHAPE)):
            raise ValueError(f"{path}: b'data' must have shape (N, 3072); got {data.shape}")
        out.append(data)
    images = np.concatenate(out)
    if max_images is not None:
        images = images[: check_positive_int(max_images, "max_images", allow_zero=False)]
    return images.astype(np.float64) / 127.5 - 1.0


def images_to_grid(flat: np.ndarray, shape) -> np.ndarray:
    """Reshape (N, prod(shape)) pixel rows to displayable images (N, H, W[, C]) in [0, 1]."""
    imgs = np.clip((np.asarray(flat) + 1.0) / 2.0, 0.0, 1.0).reshape((-1,) + tuple(shape))
    if len(shape) == 3:  # channel-major (C, H, W) -> (H, W, C)
        imgs = np.transpose(imgs, (0, 2, 3, 1))
    return imgs


def preset(name: str) -> GaussianMixture:
    """A built-in mixture by name: one of :data:`PRESETS`."""
    builders = {"seed-gmm10": seed_gmm10, "bimodal-1d": bimodal_1d, "ring-2d": ring_2d, "digits": digits}
    if name not in builders:
        raise ValueError(f"preset must be one of {sorted(builders)}; got preset={name!r}")
    return builders[name]()
