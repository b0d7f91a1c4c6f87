"""Deep-STORM: super-resolution images from high-density SMLM frames (training data, loss,
streaming reconstruction with on-device frame summation, NMSE/PSNR, local maxima).

The network lives in :mod:`efficientbioai.models.deepstorm`; the parser and task in
:mod:`efficientbioai.parsers.deepstorm` and :mod:`efficientbioai.tasks.reconstruct`.
"""

#: Seed ranges of the simulated splits (disjoint from each other and from DilatedLoc's).
SEEDS = {"train": 40_000_000, "validation": 50_000_000, "calibration": 60_000_000, "evaluation": 70_000_000}
