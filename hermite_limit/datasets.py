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


CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = ("test_batch",)
# ITU-R BT.601 luma weights: gray = 0.299 R + 0.587 G + 0.114 B
LUMA = (0.299, 0.587, 0.114)


def load_cifar10(
    folder,
    batches="data_batch_1",
    max_images: int | None = None,
    *,
    grayscale: bool = False,
    flatten: bool = True,
    return_labels: bool = False,
):
    """Images from the standard CIFAR-10 python-pickle batches in a local folder, scaled to [-1, 1].

    Parameters
    ----------
    folder : path
        A local folder (e.g. the unpacked ``cifar-10-batches-py``). Nothing is downloaded.
    batches : str or sequence of str
        Batch file names (``"data_batch_1"`` .. ``"data_batch_5"``, ``"test_batch"``), or ``"train"``
        (the five training batches), ``"test"`` or ``"all"``. Read in the order given.
    max_images : int, optional
        Keep only the first ``max_images`` images (a subset for quick runs).
    grayscale : bool
        Return the luma ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601) of each pixel instead of the
        three channels: 1024 values per image, in [-1, 1] as well.
    flatten : bool
        ``True``: rows of pixels, (N, 3072) (or (N, 1024) gray). ``False``: (N, 3, 32, 32) (or (N, 32, 32)).
    return_labels : bool
        Also return the class labels (N,) int64 in 0..9.

    Returns
    -------
    images : np.ndarray float64, or ``(images, labels)``
        Pixel ``v`` in 0..255 maps to ``v / 127.5 - 1`` (so 0 -> -1, 255 -> 1), the usual input scaling
        of image diffusion models. Flat rows are channel-major as in the files: 1024 red, 1024 green,
        1024 blue values of a 32x32 image, each plane row by row (:data:`CIFAR10_SHAPE` = (3, 32, 32)).

    Raises
    ------
    ValueError
        Naming the argument: a missing ``folder``, an unknown or missing batch in ``batches``, a batch file
        that is not a CIFAR-10 python batch (not a pickle, no ``b"data"``, wrong shape or dtype, label count
        not matching), a bad ``max_images``.

    Notes
    -----
    Each batch file is a pickled dict with ``b"data"``, a (N, 3072) uint8 array, and ``b"labels"``, a
    list of N ints. Only open files you trust: the format is a Python pickle.
    """
    import pickle
    from pathlib import Path

    if max_images is not None:
        max_images = check_positive_int(max_images, "max_images", allow_zero=False)
    names = _cifar_batch_names(batches)
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder must be an existing directory holding CIFAR-10 batches; got folder={str(root)!r}")
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise ValueError(f"batches: CIFAR-10 batch not found in folder={str(root)!r}: {missing}")
    out, labels, total = [], [], 0
    for name in names:
        path = root / name
        with open(path, "rb") as f:
            try:
                batch = pickle.load(f, encoding="bytes")
            except Exception as exc:  # a corrupt or foreign file: say which one
                raise ValueError(f"batches: {path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
        data = batch.get(b"data") if isinstance(batch, dict) else None
        if data is None:
            raise ValueError(f"batches: {path} has no b'data' entry; is it a CIFAR-10 python batch?")
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != int(np.prod(CIFAR10_SHAPE)):
            raise ValueError(f"batches: {path}: b'data' must have shape (N, 3072); got {data.shape}")
        if data.dtype != np.uint8:
            raise ValueError(f"batches: {path}: b'data' must be uint8 pixel values; got dtype {data.dtype}")
        lab = batch.get(b"labels")
        if lab is None:
            raise ValueError(f"batches: {path} has no b'labels' entry; is it a CIFAR-10 python batch?")
        lab = np.asarray(lab)
        if lab.shape != (data.shape[0],) or not np.issubdtype(lab.dtype, np.integer) or (lab.size and (lab.min() < 0 or lab.max() > 9)):
            raise ValueError(f"batches: {path}: b'labels' must be {data.shape[0]} integers in 0..9; got shape {lab.shape}, dtype {lab.dtype}")
        out.append(data)
        labels.append(lab.astype(np.int64))
        total += data.shape[0]
        if max_images is not None and total >= max_images:
            break
    images = np.concatenate(out)[:max_images]
    labels = np.concatenate(labels)[:max_images]
    x = images.astype(np.float64) / 127.5 - 1.0
    if grayscale:
        x = np.tensordot(x.reshape(-1, 3, 1024), np.asarray(LUMA), axes=([1], [0]))  # weights sum to 1: stays in [-1, 1]
    if not flatten:
        x = x.reshape((-1, 32, 32) if grayscale else (-1,) + CIFAR10_SHAPE)
    return (x, labels) if return_labels else x


def _cifar_batch_names(batches) -> tuple[str, ...]:
    groups = {"train": CIFAR10_TRAIN, "test": CIFAR10_TEST, "all": CIFAR10_TRAIN + CIFAR10_TEST}
    if isinstance(batches, str):
        names = groups.get(batches, (batches,))
    else:
        try:
            names = tuple(batches)
        except TypeError:
            raise TypeError(f"batches must be a batch name or a sequence of names; got batches={batches!r}") from None
    if not names:
        raise ValueError("batches must name at least one batch file")
    allowed = set(CIFAR10_TRAIN + CIFAR10_TEST)
    bad = [n for n in names if not isinstance(n, str) or n not in allowed]
    if bad:
        raise ValueError(f"batches must be 'train', 'test', 'all' or names among {sorted(allowed)}; got {bad}")
    return names


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
