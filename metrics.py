"""Metrics of predicted against true accuracies, and the scatter plot of them.

    python -c "import metrics; print(metrics.kendall_tau([1, 2, 3], [1, 3, 2]))"

Kendall's tau-b and Spearman's rho in numpy alone (tested equal to scipy.stats, which costs
half a second to import, a tenth of a training run).
"""
import numpy as np

from nb101.nasbench_data import atomic_output


def dense_ranks(values):
    """Ranks 0..K-1 of the K distinct values of a 1-D array (equal values, equal rank)."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1)


def tied_pairs(ranks):
    """Number of pairs of positions with equal values in a 1-D integer array."""
    counts = np.bincount(ranks)
    return int((counts * (counts - 1) // 2).sum())


def inversions(values):
    """Pairs i < j with values[i] > values[j], by a bottom-up merge sort run on all blocks at once: at width w,
    each element of a right block counts the elements of its left block above it (one searchsorted for all
    blocks, kept apart by an offset per block pair), then every pair of blocks is merged by one sort."""
    values = np.asarray(values, dtype=np.int64)
    n, count, width = len(values), 0, 1
    offset = int(values.max(initial=0)) + 1
    position = np.arange(n)
    while width < n:
        pair = position // (2 * width)
        keys = values + pair * offset
        left = (position % (2 * width)) < width
        left_keys, right_keys = keys[left], keys[~left]
        right_pair = pair[~left]
        left_end = np.searchsorted(left_keys, (right_pair + 1) * offset, side="left")
        count += int((left_end - np.searchsorted(left_keys, right_keys, side="right")).sum())
        values = np.sort(keys) - pair * offset  # blocks stay in place: the offsets keep them apart
        width *= 2
    return count


def kendall_tau(x, y):
    """Kendall's tau-b of two 1-D arrays (scipy.stats.kendalltau's default), in O(n log^2 n) with numpy alone:
    scipy.stats costs half a second to import, a tenth of a training run."""
    x, y = dense_ranks(x), dense_ranks(y)
    n = len(x)
    order = np.lexsort((y, x))  # by x, ties by y: a pair is discordant exactly when y is inverted
    discordant = inversions(y[order])
    pairs = n * (n - 1) // 2
    ties_x, ties_y, ties_both = tied_pairs(x), tied_pairs(y), tied_pairs(dense_ranks(x * (int(y.max()) + 1) + y))
    concordant = pairs - ties_x - ties_y + ties_both - discordant
    denominator = np.sqrt(float(pairs - ties_x) * float(pairs - ties_y))
    return (concordant - discordant) / denominator if denominator > 0 else float("nan")


def average_ranks(values):
    """Ranks 1..n of a 1-D array, tied values sharing the mean of their ranks (scipy.stats.rankdata's default)."""
    ranks = dense_ranks(values)
    counts = np.bincount(ranks)
    first = np.cumsum(counts) - counts  # 0-based position of each distinct value's first occurrence
    return (first + (counts + 1) / 2)[ranks]


def spearman_rho(x, y):
    """Spearman's rho: Pearson's correlation of the average ranks."""
    if len(x) < 2:
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def regression_metrics(predicted, true):
    """MSE on the 0-100 scale, Kendall tau and Spearman rho of predicted against true accuracies (fractions)."""
    predicted, true = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return {
        "mse": float(np.mean((100 * (predicted - true)) ** 2)),
        "kendall_tau": float(kendall_tau(predicted, true)),
        "spearman_rho": spearman_rho(predicted, true),
        "count": int(len(true)),
    }


def plot_scatter(path, predicted, true, seen, title):
    """Predicted against true validation accuracy: the whole split and a zoom on its top 10 %."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    top = np.quantile(true, 0.9)
    zoom = true >= top
    views = [(axes[0], "all architectures", np.ones_like(zoom)), (axes[1], "top 10 % by true accuracy", zoom)]
    for ax, name, region in views:
        lo = min(true[region].min(), np.quantile(predicted[region], 0.01))
        hi = max(true[region].max(), predicted[region].max())
        pad = 0.02 * (hi - lo)
        ax.scatter(true[~seen], predicted[~seen], s=3, alpha=0.35, lw=0, color="tab:blue", rasterized=True,
                   label=f"not trained on ({np.count_nonzero(~seen):,})")
        ax.scatter(true[seen], predicted[seen], s=10, alpha=0.9, lw=0, color="tab:orange",
                   label=f"training architectures ({np.count_nonzero(seen):,})")
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, label="prediction = truth")
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), aspect="equal",
               xlabel="true validation accuracy", ylabel="predicted validation accuracy")
        tau = kendall_tau(predicted[region], true[region])
        ax.set_title(f"{name}: Kendall tau {tau:.3f}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, markerscale=2)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=200)
    plt.close(fig)
