"""Shared plotting helpers (matplotlib, headless)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

CONCEPT_COLORS = ["darkblue", "darkred", "darkgreen", "darkorange", "purple", "teal", "saddlebrown",
                  "olive", "crimson", "slategray"]


def concept_colors(concepts):
    """One color per point from its concept index (the authors' blue / red / green for nc = 3)."""
    return [CONCEPT_COLORS[int(a) % len(CONCEPT_COLORS)] for a in concepts]


def subplots(ncols: int, width: float = 5.0, height: float = 4.6, layout=None):
    """One row of `ncols` axes; `layout="constrained"` keeps a suptitle clear of the panel titles."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, layout=layout)
    return fig, axes[0]


def close(fig) -> None:
    plt.close(fig)
