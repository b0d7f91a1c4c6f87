"""Figures for SMLM results (matplotlib, written to PNG without a display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_rmse_vs_crlb(
    z_nm: np.ndarray,
    rmse_lateral: np.ndarray,
    rmse_axial: np.ndarray,
    crlb_lateral: np.ndarray,
    crlb_axial: np.ndarray,
    path: str | Path,
    title: str = "Localization precision vs Cramér–Rao bound",
) -> Path:
    """Per-axis lateral and axial RMSE over z next to the CRLB, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for ax, rmse, bound, name in (
        (axes[0], rmse_lateral, crlb_lateral, "lateral (per axis)"),
        (axes[1], rmse_axial, crlb_axial, "axial"),
    ):
        ax.plot(z_nm, rmse, "o-", label="RMSE")
        ax.plot(z_nm, bound, "k--", label="CRLB")
        ax.set_xlabel("z (nm)")
        ax.set_ylabel("nm")
        ax.set_title(name)
        ax.legend()
    fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
