"""Shared plotting helpers (matplotlib, headless) and the one figure writer."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from refimpl import fileio  # noqa: E402

CONCEPT_COLORS = ["darkblue", "darkred", "darkgreen", "darkorange", "purple", "teal", "saddlebrown",
                  "olive", "crimson", "slategray"]
# Where a DUFM run ended (refimpl.dufm.nc_metrics.classify), one color per kind.
KIND_COLORS = {"DNC": "tab:blue", "low rank": "tab:red", "zero": "tab:gray", "other": "tab:orange",
               "diverged": "black"}


# The committed records keep 12 significant digits: the last digits of a float64 result (a PCA's σ3, say)
# change with the number of BLAS threads, and 12 digits keep a regenerated record byte-identical on one
# machine whatever its thread count (a float32 run's own noise is near the 7th digit).
FIGURE_DIGITS = 12


def concept_colors(concepts):
    """One color per point from its concept index (the authors' blue / red / green for nc = 3)."""
    return [CONCEPT_COLORS[int(a) % len(CONCEPT_COLORS)] for a in concepts]


def subplots(ncols: int, width: float = 5.0, height: float = 4.6, layout=None):
    """One row of `ncols` axes; `layout="constrained"` keeps a suptitle clear of the panel titles."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, layout=layout)
    return fig, axes[0]


def close(fig) -> None:
    plt.close(fig)


def write_record(path, record: dict):
    """Write a committed record (a figure's JSON, the seeds table): atomic strict JSON, floats to
    :data:`FIGURE_DIGITS` significant digits."""
    return fileio.write_json(path, record, digits=FIGURE_DIGITS)


def save_figure(out_dir, name: str, fig, summary: dict):
    """The figure writer: ``out_dir/name.png`` and ``out_dir/name.json`` (each atomic; the JSON by
    :func:`write_record`), the figure closed.

    Machine-dependent numbers (wall times) go under ``summary["timing"]``: they are written to a separate
    ``out_dir/name.timing.json`` (git-ignored), so that regenerating a committed figure with the same seed on
    the same machine leaves ``name.json`` byte-identical. Returns the path of the PNG.
    """
    record = {k: v for k, v in summary.items() if k != "timing"}
    try:
        png = fileio.save_png(out_dir / f"{name}.png", fig)
    finally:
        close(fig)
    write_record(out_dir / f"{name}.json", record)
    if "timing" in summary:
        fileio.write_json(out_dir / f"{name}.timing.json", summary["timing"])
    return png
