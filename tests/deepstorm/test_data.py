"""Training data: patches, spike targets, normalisation statistics, the blur and the loss."""

import numpy as np
import pytest
import torch

from efficientbioai.config import parse_config
from efficientbioai.deepstorm.data import normalisation_stats, pad_frames, simulate_patches, spike_targets
from efficientbioai.deepstorm.filaments import simulate_filament_stack
from efficientbioai.deepstorm.kernel import blur, gaussian_kernel, torch_blur
from efficientbioai.deepstorm.loss import deepstorm_loss
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.errors import ConfigError
from efficientbioai.smlm.filaments import FilamentSection, filament_points
from tests.deepstorm.helpers import TINY


def _sim():
    return parse_config(TINY).simulation


def test_patches_have_enough_emitters_inside():
    spec = DeepSTORMSection(patch_size=16, patches_per_frame=4, min_emitters=3)
    pool = simulate_patches(_sim(), spec, 10, seed=1)
    assert pool.inputs.shape == (10, 16, 16) and pool.inputs.dtype == np.float32
    for xy in pool.positions:
        assert len(xy) >= 3 and (xy >= 0).all() and (xy < 16 * 100.0).all()
    again = simulate_patches(_sim(), spec, 10, seed=1)
    assert np.array_equal(pool.inputs, again.inputs)  # seeded: reproducible splits


def test_impossible_patch_requests_fail_clearly():
    with pytest.raises(ConfigError, match="larger than simulation.frame_shape"):
        simulate_patches(_sim(), DeepSTORMSection(patch_size=40), 4, seed=0)
    with pytest.raises(ConfigError, match="lower deepstorm.min_emitters"):
        simulate_patches(_sim(), DeepSTORMSection(patch_size=16, min_emitters=500), 4, seed=0)


def test_spike_targets_put_each_emitter_in_its_fine_pixel():
    # one emitter at (x, y) = (81, 102) nm on a 12.5 nm grid → column 6, row 8; total mass = scale
    target = spike_targets([np.array([[81.0, 102.0]]), np.zeros((0, 2))], 16, 12.5, 1.0, 100.0)
    assert target.shape == (2, 1, 16, 16)
    assert float(target[0].sum()) == pytest.approx(100.0, rel=1e-5)
    assert np.unravel_index(int(target[0, 0].argmax()), (16, 16)) == (8, 6)
    assert float(target[1].abs().sum()) == 0.0


def test_normalisation_stats_follow_deep_storm():
    x = np.stack([np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[10.0, 10.0], [10.0, 30.0]])])
    mean, std = normalisation_stats(x)
    assert mean == pytest.approx((0.5 + 0.25) / 2)
    assert std == pytest.approx((0.5 + np.sqrt(0.1875)) / 2)


def test_pad_frames_keeps_min_and_max():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    p = pad_frames(x, 4)
    assert p.shape == (2, 8, 8) and np.array_equal(p[:, :5, :6], x)
    assert p.reshape(2, -1).max(1).tolist() == x.reshape(2, -1).max(1).tolist()
    assert pad_frames(x, 1) is x


def test_torch_blur_equals_the_kernel_convolution():
    assert gaussian_kernel(1.0).shape == (7, 7)
    img = np.random.default_rng(0).random((20, 24)).astype(np.float32)
    ours = torch_blur(torch.from_numpy(img)[None, None], 1.0)[0, 0].numpy()
    assert np.allclose(ours, blur(img, 1.0), atol=1e-5)


def test_loss_is_zero_only_for_the_target_spikes():
    spikes = torch.zeros(1, 1, 32, 32)
    spikes[0, 0, 10, 12] = 100.0
    target = torch_blur(spikes, 1.0)
    perfect, parts = deepstorm_loss(spikes, target, 1.0, l1_weight=1.0)
    assert parts["mse"] == pytest.approx(0.0, abs=1e-8) and parts["l1"] == pytest.approx(100 / 1024)
    shifted, _ = deepstorm_loss(torch.roll(spikes, 2, dims=3), target, 1.0, l1_weight=1.0)
    assert float(shifted) > float(perfect)


def test_filaments_stay_in_the_field_and_carry_the_emitters():
    pts = filament_points((3200.0, 3200.0), FilamentSection(count=3), np.random.default_rng(0))
    assert ((pts >= 0) & (pts <= 3200)).all() and len(pts) > 100
    sim = _sim().for_test()
    frames, truth = simulate_filament_stack(sim, FilamentSection(count=3), 5, seed=3)
    assert frames.shape == (5, 32, 32) and truth.shape[1] == 5
    assert set(np.unique(truth[:, 0])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ((truth[:, 1:3] >= 0) & (truth[:, 1:3] < 3200)).all()
    # 3 emitters per µm² of a 3.2 × 3.2 µm field ≈ 31 per frame
    assert 15 < len(truth) / 5 < 50
