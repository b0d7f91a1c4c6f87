"""Fine-tuning crops come from whole, normalised images (as at inference), not from small
images normalised on their own."""

import copy

import numpy as np

from efficientbioai.config import load_config
from efficientbioai.parsers.base import create_parser
from tests.helpers import TINY, write_config


def _parser(tmp_path):
    return create_parser(load_config(write_config(tmp_path, copy.deepcopy(TINY))))


def _is_window_of(crop: np.ndarray, image: np.ndarray) -> bool:
    """True if ``crop`` equals some window of ``image``, up to flips of each axis."""
    h, w = crop.shape
    for flipped in (crop, crop[::-1], crop[:, ::-1], crop[::-1, ::-1]):
        for r in range(image.shape[0] - h + 1):
            for c in range(image.shape[1] - w + 1):
                if np.array_equal(image[r : r + h, c : c + w], flipped):
                    return True
    return False


def test_crops_are_windows_of_whole_normalised_images(tmp_path):
    parser = _parser(tmp_path)
    x, y = parser.training_batch(3, 4, [16, 16])
    assert x.shape == (4, 1, 16, 16) and y.shape == (4, 1, 16, 16) and x.dtype == np.float32
    pool = parser._training_pool_cache
    assert pool and all(key[2] == (32, 32) for key in pool)  # images twice the crop size
    images = [parser.preprocess(parser.channels_first(parser.synthetic_pair("train", k[1], k[2])[0]))[0] for k in pool]
    for crop in x[:, 0]:
        assert any(_is_window_of(crop, image) for image in images)
    # a crop normalised on its own would span the full normalised range; windows of a larger
    # image normalised as a whole do not, in general
    alone = parser.preprocess(parser.channels_first(parser.synthetic_pair("train", 0, (16, 16))[0]))
    assert not any(np.array_equal(crop, alone[0]) for crop in x[:, 0])


def test_batches_are_deterministic_and_splits_disjoint(tmp_path):
    parser = _parser(tmp_path)
    a, _ = parser.training_batch(5, 2, [16, 16])
    b, _ = _parser(tmp_path).training_batch(5, 2, [16, 16])
    np.testing.assert_array_equal(a, b)
    c, _ = parser.training_batch(6, 2, [16, 16])
    assert not np.array_equal(a, c)
    v, _ = parser.training_batch(5, 2, [16, 16], split="validation")
    assert not np.array_equal(a, v)
    assert {k[0] for k in parser._training_pool_cache} == {"train", "validation"}
