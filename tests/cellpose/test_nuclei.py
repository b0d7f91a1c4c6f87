"""Generated nuclei: reproducible, touching, sized as configured, disjoint per seed."""

import numpy as np
import pytest
from scipy import ndimage

from efficientbioai.datasets.nuclei import NucleiStyle, renumber, synthetic_nuclei


def test_same_seed_same_pair_other_seed_other_pair():
    a_img, a_lab = synthetic_nuclei((128, 128), 5)
    b_img, b_lab = synthetic_nuclei((128, 128), 5)
    c_img, _ = synthetic_nuclei((128, 128), 6)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)


def test_labels_are_consecutive_and_many_touch():
    _, labels = synthetic_nuclei((256, 256), 0)
    ids = np.unique(labels)
    assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids)))
    # two labels touch when a pixel of one is 4-adjacent to a pixel of the other
    right = (labels[:, :-1] != labels[:, 1:]) & (labels[:, :-1] > 0) & (labels[:, 1:] > 0)
    down = (labels[:-1] != labels[1:]) & (labels[:-1] > 0) & (labels[1:] > 0)
    assert right.sum() + down.sum() > 50


def test_sizes_follow_the_style():
    style = NucleiStyle(diameter=(10.0, 12.0), elongation=(1.0, 1.0), touching=0.0, density=0.5)
    _, labels = synthetic_nuclei((256, 256), 1, style)
    areas = ndimage.sum_labels(labels > 0, labels, range(1, labels.max() + 1))
    diameters = 2 * np.sqrt(areas / np.pi)
    # isolated nuclei (cut at the border or overdrawn ones are smaller)
    assert np.median(diameters) == pytest.approx(11.0, abs=1.5)


def test_nuclei_are_brighter_than_background():
    image, labels = synthetic_nuclei((128, 128), 2)
    assert image[labels > 0].mean() > 3 * image[labels == 0].mean()


def test_renumber_and_bad_shape():
    assert np.array_equal(renumber(np.array([[0, 7], [3, 7]])), np.array([[0, 2], [1, 2]]))
    with pytest.raises(ValueError, match="two sizes"):
        synthetic_nuclei((8, 8), 0)
