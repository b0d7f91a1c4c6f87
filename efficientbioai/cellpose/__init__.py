"""Cellpose (3.x) support: CPnet built and exported without a fork, cellpose's own tiling,
normalisation and dynamics around any of our engines, and training on generated nuclei."""
