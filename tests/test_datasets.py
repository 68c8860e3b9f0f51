"""Built-in data and the CIFAR-10 loader (on a small file written in the standard format)."""

import pickle

import numpy as np
import pytest

from hermite_limit import datasets


def test_seed_mixture_is_the_documented_law():
    gm = datasets.seed_gmm10()
    assert gm.dim == 10 and gm.n_components == 5
    np.testing.assert_allclose(gm.covs, 0.36)
    np.testing.assert_allclose(gm.mean(), np.r_[np.full(5, 3.0 / 5), np.zeros(5)], rtol=1e-14)


def test_digits_preset():
    x = datasets.digits_images()
    assert x.shape == (1797, 64) and x.min() == -1.0 and x.max() == 1.0
    gm = datasets.preset("digits")
    np.testing.assert_allclose(gm.mean(), x.mean(axis=0), rtol=1e-12, atol=1e-14)


def test_cifar10_loader_on_a_file_in_the_standard_format(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(7, 3072), dtype=np.uint8)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": raw, b"labels": list(range(7)), b"batch_label": b"test"}, f)
    x = datasets.load_cifar10(tmp_path, max_images=5)
    assert x.shape == (5, 3072)
    np.testing.assert_allclose(x, raw[:5] / 127.5 - 1.0)
    grid = datasets.images_to_grid(x, datasets.CIFAR10_SHAPE)
    assert grid.shape == (5, 32, 32, 3)
    # channel-major layout: the red plane is the first 1024 values
    np.testing.assert_allclose(grid[0, :, :, 0].ravel(), (x[0, :1024] + 1) / 2)


def test_cifar10_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="folder must be an existing directory"):
        datasets.load_cifar10(tmp_path / "nope")
    with pytest.raises(ValueError, match="CIFAR-10 batch not found"):
        datasets.load_cifar10(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="is not a CIFAR-10 python batch"):
        datasets.load_cifar10(tmp_path)
