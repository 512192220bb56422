"""The paper's figures as PNG files: fold-averaged confusion matrices (Fig. 4) and a t-SNE of
the test utterances' deep features, coloured by emotion, marked by gender (Fig. 5).

matplotlib is used through its object API with the Agg canvas (no pyplot, no global backend
switch), so this works on a headless machine and leaves an interactive session alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adarl_jax.files import write_atomic

__all__ = ["MIN_TSNE_POINTS", "plot_confusion", "plot_tsne", "tsne_embedding"]

MIN_TSNE_POINTS = 10  # fewer points than this: no meaningful neighbourhood, no t-SNE
_GENDER_MARKERS = {"M": ("^", "male"), "F": ("o", "female")}
_OTHER_MARKERS = ("s", "D", "v", "P")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> None:
    write_atomic(path, "wb", lambda f: fig.savefig(f, format="png", bbox_inches="tight"))


def plot_confusion(matrix, classes: Sequence[str], path, title: str = "") -> None:
    """A row-normalised confusion matrix (rows = true, columns = predicted) with % in cells;
    rows with no test utterance (None / NaN) are left blank."""
    m = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], float)
    k = len(classes)
    fig = _figure(1.1 * k + 1.8, 1.0 * k + 1.2)
    ax = fig.add_subplot()
    im = ax.imshow(np.nan_to_num(m, nan=0.0), cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            if np.isnan(m[i, j]):
                continue
            ax.text(j, i, f"{100 * m[i, j]:.1f}%", ha="center", va="center", fontsize=9,
                    color="white" if m[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _save(fig, path)


def tsne_embedding(features, seed: int = 0) -> np.ndarray | None:
    """2-D t-SNE of (n, d) features, or None when there are fewer than MIN_TSNE_POINTS."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < MIN_TSNE_POINTS:
        return None
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(x)


def plot_tsne(points, emotion, gender, classes: Sequence[str], genders: Sequence[str], path,
              title: str = "") -> None:
    """Fig. 5: one colour per emotion (viridis: purple, blue, green, yellow for the paper's
    four), one marker per gender; red markers (edged in the emotion's colour) at each emotion's
    mean position per gender."""
    from matplotlib import colormaps

    points, emotion, gender = np.asarray(points), np.asarray(emotion), np.asarray(gender)
    colours = colormaps["viridis"](np.linspace(0.0, 1.0, max(len(classes), 2)))
    fig = _figure(6.4, 5.4)
    ax = fig.add_subplot()
    markers = []
    for gi, g in enumerate(genders):
        marker, label = _GENDER_MARKERS.get(g, (_OTHER_MARKERS[gi % len(_OTHER_MARKERS)], g))
        markers.append((marker, label))
        for k in range(len(classes)):
            sel = (emotion == k) & (gender == gi)
            if np.any(sel):
                ax.scatter(points[sel, 0], points[sel, 1], s=16, marker=marker, color=colours[k],
                           alpha=0.75, linewidths=0)
    # Red: the centre of each emotion per gender (Table 4 measures their distance in 64-d).
    for gi, (marker, _) in enumerate(markers):
        for k in range(len(classes)):
            sel = (emotion == k) & (gender == gi)
            if np.any(sel):
                ax.scatter(*points[sel].mean(axis=0), s=70, marker=marker, color="red",
                           edgecolors=colours[k], linewidths=1.5, zorder=3)
    # Legend proxies: colour = emotion, marker = gender.
    for k, c in enumerate(classes):
        ax.scatter([], [], s=30, marker="s", color=colours[k], label=c)
    for marker, label in markers:
        ax.scatter([], [], s=24, marker=marker, color="grey", label=label)
    ax.scatter([], [], s=60, color="red", label="class centre (per gender)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)
