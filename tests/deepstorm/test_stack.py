"""Stacks: lazy TIFF / .npy reading, and bad input rejected with a message that says what to fix."""

import numpy as np
import pytest
import tifffile

from efficientbioai.deepstorm.stack import check_stack, frame_batches
from efficientbioai.errors import InputError
from efficientbioai.io.frames import TiffSource, open_frames


def test_tiff_stack_reads_frames_on_demand(tmp_path):
    data = np.arange(5 * 12 * 10, dtype=np.uint16).reshape(5, 12, 10)
    tifffile.imwrite(tmp_path / "s.tif", data)
    stack = open_frames(tmp_path / "s.tif")
    assert isinstance(stack, TiffSource) and stack.shape == (5, 12, 10) and len(stack) == 5
    assert np.array_equal(stack[1:4], data[1:4]) and np.array_equal(stack[4:9], data[4:])
    batches = list(frame_batches(check_stack(stack), 2, 4))
    assert [b.shape for b in batches] == [(2, 1, 12, 12)] * 2 + [(1, 1, 12, 12)]
    assert np.array_equal(batches[0][:, 0, :, :10], data[:2]) and batches[0].dtype == np.float32
    stack.close()


def test_npy_is_memory_mapped(tmp_path):
    np.save(tmp_path / "s.npy", np.ones((3, 16, 16), np.float32))
    source = open_frames(tmp_path / "s.npy")
    assert source._array is None and source.path == tmp_path / "s.npy"  # read per chunk from the mapped file


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((16, 16)), "must be 3D .* single 2D image"),
        (np.zeros((2, 3, 16, 16)), "must be 3D"),
        (np.zeros((2, 16, 16), np.complex64), "not a real number type"),
        (np.zeros((2, 16, 16), bool), "not a real number type"),
        (np.zeros((0, 16, 16)), "no frames"),
        (np.zeros((2, 6, 16)), "smaller than the minimum 8 px"),
    ],
)
def test_bad_stacks(array, message):
    with pytest.raises(InputError, match=message):
        check_stack(array, "x.tif")


def test_nan_frames_are_named():
    stack = np.zeros((4, 16, 16), np.float32)
    stack[2, 3, 3] = np.nan
    with pytest.raises(InputError, match="first in frame 3"):
        check_stack(stack, "x.tif")
    with pytest.raises(InputError, match="frame 3"):
        list(frame_batches(stack, 2, 1))


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_frames(tmp_path / "missing.tif")
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="cannot read TIFF"):
        open_frames(tmp_path / "bad.tif")
    (tmp_path / "s.png").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported stack type"):
        open_frames(tmp_path / "s.png")
