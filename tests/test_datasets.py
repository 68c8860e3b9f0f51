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


def _write_batch(path, raw, labels, **extra):
    with open(path, "wb") as f:
        pickle.dump({b"data": raw, b"labels": list(labels), b"batch_label": b"test", **extra}, f)


def test_cifar10_loader_on_a_file_in_the_standard_format(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(7, 3072), dtype=np.uint8)
    raw[0, :2] = (0, 255)  # the end points of the scaling
    _write_batch(tmp_path / "data_batch_1", raw, range(7))
    x = datasets.load_cifar10(tmp_path, max_images=5)
    assert x.shape == (5, 3072) and x.dtype == np.float64
    np.testing.assert_allclose(x, raw[:5] / 127.5 - 1.0, rtol=0, atol=1e-15)
    assert x[0, 0] == -1.0 and x[0, 1] == 1.0
    grid = datasets.images_to_grid(x, datasets.CIFAR10_SHAPE)
    assert grid.shape == (5, 32, 32, 3)
    # channel-major layout: the red plane is the first 1024 values
    np.testing.assert_allclose(grid[0, :, :, 0].ravel(), (x[0, :1024] + 1) / 2)


def test_cifar10_options_against_the_raw_bytes(tmp_path):
    rng = np.random.default_rng(1)
    raws = [rng.integers(0, 256, size=(n, 3072), dtype=np.uint8) for n in (4, 3)]
    labs = [rng.integers(0, 10, size=n) for n in (4, 3)]
    _write_batch(tmp_path / "data_batch_1", raws[0], labs[0])
    _write_batch(tmp_path / "test_batch", raws[1], labs[1])
    x, y = datasets.load_cifar10(tmp_path, ["test_batch", "data_batch_1"], return_labels=True)
    np.testing.assert_array_equal(y, np.r_[labs[1], labs[0]])
    np.testing.assert_allclose(x, np.r_[raws[1], raws[0]] / 127.5 - 1.0, atol=1e-15)
    # "test" is test_batch; a subset stops early and keeps the first images in file order
    np.testing.assert_allclose(datasets.load_cifar10(tmp_path, "test", max_images=2), raws[1][:2] / 127.5 - 1.0, atol=1e-15)
    # unflattened: pixel (image i, channel c, row r, column k) is byte c*1024 + r*32 + k
    img = datasets.load_cifar10(tmp_path, flatten=False)
    assert img.shape == (4, 3, 32, 32)
    for i, c, r, k in [(0, 0, 0, 0), (1, 2, 31, 5), (3, 1, 7, 30)]:
        assert img[i, c, r, k] == raws[0][i, c * 1024 + r * 32 + k] / 127.5 - 1.0
    # grayscale: BT.601 luma of the 0..255 values, then the same scaling
    g = datasets.load_cifar10(tmp_path, grayscale=True)
    R, G, B = (raws[0][:, c * 1024:(c + 1) * 1024].astype(float) for c in range(3))
    np.testing.assert_allclose(g, (0.299 * R + 0.587 * G + 0.114 * B) / 127.5 - 1.0, atol=1e-13)
    assert datasets.load_cifar10(tmp_path, grayscale=True, flatten=False).shape == (4, 32, 32)
    white = np.full((1, 3072), 255, np.uint8)
    _write_batch(tmp_path / "data_batch_2", white, [0])
    assert datasets.load_cifar10(tmp_path, "data_batch_2", grayscale=True).max() <= 1.0 + 1e-15


def test_cifar10_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="folder must be an existing directory"):
        datasets.load_cifar10(tmp_path / "nope")
    with pytest.raises(ValueError, match="batches: CIFAR-10 batch not found"):
        datasets.load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="batches must be 'train'"):
        datasets.load_cifar10(tmp_path, "data_batch_9")
    with pytest.raises(ValueError, match="max_images"):
        datasets.load_cifar10(tmp_path, max_images=0)
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="is not a CIFAR-10 python batch"):
        datasets.load_cifar10(tmp_path)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"labels": [0]}, f)
    with pytest.raises(ValueError, match="no b'data' entry"):
        datasets.load_cifar10(tmp_path)
    _write_batch(tmp_path / "data_batch_1", np.zeros((2, 1024), np.uint8), [0, 1])
    with pytest.raises(ValueError, match=r"shape \(N, 3072\)"):
        datasets.load_cifar10(tmp_path)
    _write_batch(tmp_path / "data_batch_1", np.zeros((2, 3072), np.float32), [0, 1])
    with pytest.raises(ValueError, match="uint8"):
        datasets.load_cifar10(tmp_path)
    _write_batch(tmp_path / "data_batch_1", np.zeros((2, 3072), np.uint8), [0])
    with pytest.raises(ValueError, match="b'labels' must be 2 integers"):
        datasets.load_cifar10(tmp_path)
