"""The ``runtime`` config section: how inputs stream through the engines.

Large inputs (SMLM stacks of tens of thousands of frames, volumes bigger than memory) are cut
into chunks that are read ahead, run, post-processed and written one at a time, so memory does
not grow with the input and an interrupted run can resume. Every key has a default that works
on one machine; ``cluster`` sends the same chunks to Dask workers instead.

Example
-------
runtime:
  chunk_frames: 256          # SMLM / Deep-STORM: frames per chunk (read, run, written, resumed)
  prefetch: 2                # chunks read ahead of the engines (bounded queue)
  workers:                   # one engine each; results merged in frame order
    - {device: CPU, threads: 1}
    - {device: CPU, threads: 1}
  cluster: null              # "local" (a LocalCluster here) or "tcp://scheduler:8786"
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from efficientbioai.registry import register_section
from efficientbioai.section import Section


class WorkerSection(Section):
    """One engine worker: a device (or a stream on one) with its own engine instance."""

    device: str = Field(
        "auto",
        description="auto: the engine's default; OpenVINO: CPU/GPU; torch: cpu/cuda:N; TensorRT: N or cuda:N",
    )
    threads: int | None = Field(None, ge=1, description="CPU threads of this engine; default: engine.threads split")
    streams: int | None = Field(
        None, ge=1, le=64, description="requests in flight on this worker (OpenVINO); default: engine.num_requests"
    )


@register_section("runtime", "streaming: chunks, workers, Dask", always=True)
class RuntimeSection(Section):
    """Streaming inference: chunking, read-ahead, engine workers, outputs, resume, scale-out."""

    enabled: bool = Field(True, description="false: each input is predicted whole, in memory (the pre-runtime path)")
    chunk_frames: int = Field(256, ge=1, le=1_000_000, description="frames per chunk (SMLM, Deep-STORM)")
    block: list[int] | None = Field(
        None, description="volumes/images: core block size per spatial axis; default: the whole image in one block"
    )
    prefetch: int = Field(2, ge=1, le=64, description="chunks read ahead of the engines")
    reader: Literal["thread", "process"] = Field(
        "thread", description="where chunks are read: a background thread, or a process (slow decoders)"
    )
    workers: list[WorkerSection] = Field(
        default_factory=lambda: [WorkerSection()], min_length=1, description="one engine worker per entry"
    )
    field_tile: list[int] | None = Field(
        None, description="SMLM: frames larger than this [h, w] are cut into overlapping tiles (default: whole frames)"
    )
    field_margin: int = Field(
        16, ge=0, le=512, description="SMLM tiles: pixels of context on each side; detections there are dropped"
    )
    cluster: str | None = Field(None, description="null: this process; 'local': a Dask LocalCluster; or an address")
    cluster_workers: int = Field(2, ge=1, le=1024, description="workers of the 'local' Dask cluster")
    resume: bool = Field(False, description="continue an interrupted run from its last finished chunk")
    output_format: Literal["auto", "csv", "tiff", "zarr"] = Field(
        "auto", description="auto: CSV for localizations, TIFF for images; zarr for large volumes"
    )
    progress: bool = Field(True, description="show a progress bar (frames/s, ETA) on a terminal")

    @field_validator("block")
    @classmethod
    def _block(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not 2 <= len(v) <= 3 or any(s < 8 for s in v)):
            raise ValueError(f"block is 2 or 3 sizes of at least 8, got {v}")
        return v

    @field_validator("field_tile")
    @classmethod
    def _field_tile(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 2 or any(s < 16 for s in v)):
            raise ValueError(f"field_tile is [height, width], each at least 16, got {v}")
        return v

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, v: str | None) -> str | None:
        if v is not None and v != "local" and "://" not in v and ":" not in v:
            raise ValueError(f"cluster is 'local' or a scheduler address like tcp://host:8786, got {v!r}")
        return v
