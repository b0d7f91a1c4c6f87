"""The streaming inference frame: inputs far larger than memory, at the engines' speed.

After the DilatedLoc inference frame: SMLM stacks are large and the network is fast, so
reading, copying and post-processing — not the network — limit throughput. Here frames are read
ahead in the background, batches stay in flight on every engine, post-processing runs on the
engine's device right after it, and results are written chunk by chunk, resumably:

    io.frames ─► prefetch ─► workers (engine executors) ─► pipeline (order, sink, journal)   [one machine]
                                                 └► cluster (Dask workers)          [scale-out]

=====================  ==============================================================
module                 concept
=====================  ==============================================================
``settings``           the ``runtime`` config section
``chunks``             frame chunks with a temporal halo; volume blocks with a halo
``fov``                large SMLM frames as overlapping tiles, no duplicate detections
``global_normalizer``  whole-volume statistics applied block by block
``job``                ``StreamJob``: the per-chunk pieces a task provides
``prefetch``           bounded read-ahead in a thread or process
``workers``            one engine per device/stream, one thread each
``sink`` + ``*_sink``  outputs under a temporary name, journal, resume
``local_pipeline``     the driver on one machine
``cluster``            the same jobs on Dask
``progress``           progress bar, throughput, peak memory
=====================  ==============================================================

The task side lives next to each task: :mod:`efficientbioai.tasks.localize_job`,
:mod:`efficientbioai.tasks.reconstruct_job`, :mod:`efficientbioai.tasks.block_job`.
"""
