"""Readers: every layout reads the same frames, lazily, with errors that name the file and frame."""

import pickle

import numpy as np
import pytest
import tifffile

from efficientbioai.errors import InputError
from efficientbioai.io.frames import TiffSource, as_source, open_frames

STACK = (np.arange(30 * 20 * 24) % 1000).reshape(30, 20, 24).astype(np.uint16)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import zarr

    d = tmp_path_factory.mktemp("src")
    tifffile.imwrite(d / "mapped.tif", STACK)
    tifffile.imwrite(d / "zlib.tif", STACK, compression="zlib")
    with tifffile.TiffWriter(d / "pages.tif") as w:  # separate pages, no shape metadata
        for frame in STACK:
            w.write(frame, contiguous=False)
    np.save(d / "stack.npy", STACK)
    z = zarr.open_array(str(d / "stack.zarr"), mode="w", shape=STACK.shape, chunks=(8, 20, 24), dtype="uint16")
    z[:] = STACK
    (d / "frames").mkdir()
    for i, frame in enumerate(STACK):
        tifffile.imwrite(d / "frames" / f"f{i:04d}.tif", frame)
    return d


@pytest.mark.parametrize("name", ["mapped.tif", "zlib.tif", "pages.tif", "stack.npy", "stack.zarr", "frames"])
def test_every_layout_reads_the_same_frames(files, name):
    src = open_frames(files / name)
    assert src.shape == STACK.shape and len(src) == 30
    np.testing.assert_array_equal(src.read(3, 17), STACK[3:17])
    assert src.read(3, 17).dtype == np.float32
    np.testing.assert_array_equal(src[-1], STACK[-1])
    np.testing.assert_array_equal(src[2:10, :5], STACK[2:10, :5])
    again = pickle.loads(pickle.dumps(src))  # readable in a prefetch process or on a Dask worker
    np.testing.assert_array_equal(again.read(25, 30), STACK[25:30])


def test_uncompressed_tiff_is_mapped_per_chunk_and_compressed_is_paged(files):
    assert TiffSource(files / "mapped.tif").mapped
    assert not TiffSource(files / "zlib.tif").mapped
    assert TiffSource(files / "mapped.tif")._tif is None  # no handle kept open between chunks


def test_errors_name_file_and_frame(tmp_path):
    with pytest.raises(InputError, match="stack not found"):
        open_frames(tmp_path / "missing.tif")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="bad.tif: cannot read TIFF"):
        open_frames(tmp_path / "bad.tif")
    nan = STACK.astype(np.float32)
    nan[12, 3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    src = open_frames(tmp_path / "nan.npy")
    src.read(0, 10)  # frames before the bad one are fine
    with pytest.raises(InputError, match="nan.npy: 1 NaN/Inf pixels from frame 13"):
        src.read(10, 20)
    raw = (tmp_path / "z.tif").write_bytes(b"") or None
    tifffile.imwrite(tmp_path / "z.tif", STACK, compression="zlib")
    raw = (tmp_path / "z.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 2])  # truncated mid-stack
    with pytest.raises(InputError, match="cut.tif: cannot read frames"):
        open_frames(tmp_path / "cut.tif").read(0, 30)
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported stack type '.png'"):
        open_frames(tmp_path / "x.png")
    (tmp_path / "mixed").mkdir()
    tifffile.imwrite(tmp_path / "mixed" / "a.tif", STACK[0])
    tifffile.imwrite(tmp_path / "mixed" / "b.tif", STACK[0, :10])
    with pytest.raises(InputError, match="b.tif: frame shape"):
        open_frames(tmp_path / "mixed").read(0, 2)


def test_arrays_pass_through():
    src = as_source(STACK)
    assert src.shape == STACK.shape
    np.testing.assert_array_equal(np.asarray(src), STACK)
