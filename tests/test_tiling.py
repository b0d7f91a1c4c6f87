import numpy as np
import pytest

from efficientbioai.tasks.tiling import SlidingWindow


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize(
    "shape, tile",
    [((1, 50, 70), (32, 32)), ((2, 9, 40, 33), (8, 16, 16)), ((1, 20, 70), (32, 32)), ((1, 32, 32), (32, 32))],
)
def test_linear_model_is_reconstructed_exactly(shape, tile, blend):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = SlidingWindow(tile, overlap=0.3, blend=blend, batch_size=3)(image, lambda b: 2 * b)
    assert out.shape == shape
    np.testing.assert_allclose(out, 2 * image, atol=1e-5)


def test_output_channels_may_differ():
    image = np.ones((1, 40, 40), np.float32)
    out = SlidingWindow((16, 16))(image, lambda b: np.concatenate([b, 3 * b], axis=1))
    assert out.shape == (2, 40, 40)
    np.testing.assert_allclose(out[1], 3.0, atol=1e-5)


def test_every_pixel_covered_and_tiles_full_size():
    sw = SlidingWindow((16, 16), overlap=0.5)
    windows = sw.windows((50, 37))
    cover = np.zeros((50, 37), int)
    for w in windows:
        assert tuple(s.stop - s.start for s in w) == (16, 16)
        cover[w] += 1
    assert cover.min() >= 1


def test_engine_stream_is_used_in_order():
    class Streaming:
        calls = 0

        def map_batches(self, batches):
            for b in batches:
                self.calls += 1
                yield b + 1

    engine = Streaming()
    image = np.random.default_rng(1).random((1, 64, 64), dtype=np.float32)
    out = SlidingWindow((32, 32), overlap=0.25, batch_size=2)(image, engine)
    np.testing.assert_allclose(out, image + 1, atol=1e-5)
    assert engine.calls > 1


def test_shape_changing_model_is_refused():
    with pytest.raises(ValueError, match="keep the spatial size"):
        SlidingWindow((16, 16))(np.ones((1, 32, 32), np.float32), lambda b: b[..., ::2, ::2])


def test_bad_parameters():
    with pytest.raises(ValueError):
        SlidingWindow((16, 16), overlap=1.0)
    with pytest.raises(ValueError):
        SlidingWindow((16, 16), blend="max")
