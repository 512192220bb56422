"""The paper's figures as PNG files: fold-averaged confusion matrices (Fig. 4) and t-SNEs of
deep features, coloured by emotion, marked by gender (Fig. 5), one embedding per fold model.
Another domain than gender is marked by its values the same way (`domain` names it).

matplotlib is used through its object API with the Agg canvas (no pyplot, no global backend
switch), so this works on a headless machine and leaves an interactive session alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adarl_jax.workdir.files import write_atomic
from adarl_jax.extras import require

__all__ = ["MIN_TSNE_POINTS", "plot_attention_profile", "plot_confusion", "plot_tsne_grid",
           "tsne_embedding"]

MIN_TSNE_POINTS = 10  # fewer points than this: no meaningful neighbourhood, no t-SNE
_GENDER_MARKERS = {"M": ("^", "male"), "F": ("o", "female")}
_OTHER_MARKERS = ("s", "D", "v", "P")


def _figure(width: float, height: float):
    agg = require("matplotlib.backends.backend_agg", "report", "the report's figures")
    fig = require("matplotlib.figure", "report", "the report's figures").Figure(
        figsize=(width, height), dpi=120)
    agg.FigureCanvasAgg(fig)
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
    TSNE = require("sklearn.manifold", "report", "the t-SNE figures").TSNE
    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(x)


def _draw_tsne(ax, points, emotion, gender, is_val, classes, colours, markers) -> None:
    """One embedding: colour = emotion, marker = gender, hollow = a validation speaker; red
    markers (edged in the emotion's colour) at each emotion's mean position per gender."""
    for gi, (marker, _) in enumerate(markers):
        for k in range(len(classes)):
            for val in (False, True):
                sel = (emotion == k) & (gender == gi) & (is_val == val)
                if np.any(sel):
                    ax.scatter(points[sel, 0], points[sel, 1], s=16, marker=marker, alpha=0.8,
                               facecolors="none" if val else colours[k], edgecolors=colours[k],
                               linewidths=0.9 if val else 0)
    # Red: the centre of each emotion per gender (Table 4 measures their distance in the model's space).
    for gi, (marker, _) in enumerate(markers):
        for k in range(len(classes)):
            sel = (emotion == k) & (gender == gi)
            if np.any(sel):
                ax.scatter(*points[sel].mean(axis=0), s=70, marker=marker, color="red",
                           edgecolors=colours[k], linewidths=1.5, zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tsne_grid(panels: Sequence[dict], classes: Sequence[str], genders: Sequence[str], path,
                   title: str = "", columns: int = 5, domain: str = "gender") -> None:
    """Fig. 5, one panel per fold model: each panel is its own embedding (never two models'
    features in one). A panel: {"title", "points" (n, 2) or None (too few to embed: left
    blank with a note), "emotion", "gender" (index into `genders`, the values of the domain
    `domain`; -1 = unknown), "is_val" (n,)}."""
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0.0, 1.0, max(len(classes), 2)))
    markers = [_GENDER_MARKERS.get(g, (_OTHER_MARKERS[gi % len(_OTHER_MARKERS)], g))
               for gi, g in enumerate(genders)]
    if any(np.any(np.asarray(p["gender"]) < 0) for p in panels):  # a run without domain labels
        markers.append(("X", f"{domain} unknown"))
    cols = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // cols)
    fig = _figure(3.2 * cols, 3.1 * rows + 0.9)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_title(panel["title"], fontsize=8)
        if panel["points"] is None:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, f"too few utterances\nto embed ({len(panel['emotion'])})",
                    ha="center", va="center", fontsize=8, transform=ax.transAxes)
            continue
        marked = np.asarray(panel["gender"])
        marked = np.where(marked < 0, len(markers) - 1, marked)
        _draw_tsne(ax, np.asarray(panel["points"]), np.asarray(panel["emotion"]), marked,
                   np.asarray(panel["is_val"], bool), classes, colours, markers)
    # One legend for all panels: colour = emotion, marker = domain, fill = test / validation.
    handles = [fig.axes[0].scatter([], [], s=30, marker="s", color=colours[k], label=c)
               for k, c in enumerate(classes)]
    handles += [fig.axes[0].scatter([], [], s=24, marker=m, color="grey", label=label) for m, label in markers]
    if any(np.any(p["is_val"]) for p in panels):
        handles += [fig.axes[0].scatter([], [], s=24, marker="o", color="grey", label="filled: test speaker"),
                    fig.axes[0].scatter([], [], s=24, marker="o", facecolors="none", edgecolors="grey",
                                        label="hollow: validation speaker")]
    handles.append(fig.axes[0].scatter([], [], s=60, color="red", label=f"class centre (per {domain})"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def plot_attention_profile(per_fold: Sequence[dict], values: Sequence[str], path, title: str = ""):
    """The attention I^D per frequency row of F_4 (row 0 = the lowest band), one panel per domain
    value: each fold model's mean over its test utterances of that value (thin lines) and the
    mean over all of them with +-1 sd (the band). `per_fold`: [{'attention': (n, H), 'domain':
    (n,) index into `values`}], one a fold model. Returns the matplotlib Figure it saved."""
    fig = _figure(3.2 * len(values) + 0.6, 3.0)
    axes = [fig.add_subplot(1, len(values), i + 1) for i in range(len(values))]
    for d, (ax, value) in enumerate(zip(axes, values)):
        pooled = []
        for rec in per_fold:
            att, dom = np.asarray(rec["attention"], float), np.asarray(rec["domain"])
            if (dom == d).any():
                ax.plot(att[dom == d].mean(0), color="0.6", linewidth=0.8)
                pooled.append(att[dom == d])
        if pooled:
            att = np.concatenate(pooled)
            rows, mean, sd = np.arange(att.shape[1]), att.mean(0), att.std(0)
            ax.fill_between(rows, mean - sd, mean + sd, color="C0", alpha=0.25, linewidth=0)
            ax.plot(rows, mean, color="C0", linewidth=2, label=f"mean ± sd ({len(att)} utterances)")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(_GENDER_MARKERS.get(value, (None, value))[1], fontsize=9)
        ax.set_xlabel("frequency row of F_4 (low to high)")
        ax.set_ylim(0.0, 1.0)
    axes[0].set_ylabel("I^D")
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    _save(fig, path)
    return fig
