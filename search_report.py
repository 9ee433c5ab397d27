"""The search comparison's outputs: best-so-far traces, regret tables, curves, and the files search.py writes.

    python -c "import search_report; help(search_report.write_outputs)"
"""
import os

import numpy as np

import nasbench_data
from search_methods import method_name

REGRET_THRESHOLDS = (0.5, 0.2, 0.1, 0.05, 0.0)  # percentage points of validation accuracy
REPORT_BUDGETS = (50, 100, 172, 200, 500, 1000, 2000)


def best_so_far(pool, rows, values, seconds):
    """Per run and query count: best queried validation accuracy, regret and mean test of the chosen architecture,
    and the training hours spent so far.

    The chosen architecture is the first one that reached the best queried value so far.
    Regret (fraction) = the pool's best mean validation accuracy - the chosen one's mean validation accuracy.
    hours: the cumulative 108-epoch training time of the queried runs (seconds (R, budget) from the oracle).
    """
    best = np.maximum.accumulate(values, axis=1)
    previous = np.concatenate([np.full((len(values), 1), -np.inf), best[:, :-1]], axis=1)
    improved = values > previous
    position = np.maximum.accumulate(np.where(improved, np.arange(values.shape[1]), 0), axis=1)
    chosen = np.take_along_axis(rows, position, axis=1)
    regret = pool.mean_validation.max() - pool.mean_validation[chosen]
    return {"best_validation": best, "regret": regret, "chosen_test": pool.mean_test[chosen],
            "hours": np.cumsum(seconds, axis=1) / 3600}


def queries_to_reach(regret, threshold):
    """(R,) number of queries after which each run's regret is <= threshold; inf where never within budget."""
    reached = regret <= threshold + 1e-12
    first = np.argmax(reached, axis=1).astype(np.float64) + 1
    return np.where(reached.any(axis=1), first, np.inf)


def hours_to_reach(trace, threshold):
    """(R,) training hours spent when each run's regret first is <= threshold; inf where never within budget."""
    needed = queries_to_reach(trace["regret"], threshold)
    reached = np.isfinite(needed)
    index = np.where(reached, needed - 1, 0).astype(np.int64)
    return np.where(reached, np.take_along_axis(trace["hours"], index[:, None], axis=1)[:, 0], np.inf)


def hours_cell(trace, threshold):
    """'mean / median (reached/runs)' training hours to reach a regret; runs that never reach it count with
    their whole budget's hours."""
    needed = hours_to_reach(trace, threshold)
    reached = np.isfinite(needed)
    mean = np.where(reached, needed, trace["hours"][:, -1]).mean()
    median = np.median(needed)
    prefix = "" if reached.all() else ">= "
    median_text = f"{median:,.0f}" if np.isfinite(median) else "never"
    return f"{prefix}{mean:,.0f} / {median_text} ({reached.sum()}/{len(reached)})"


def reach_cell(regret, threshold):
    """'mean / median (reached/runs)' queries to reach a regret; runs that never reach it count as the budget."""
    needed = queries_to_reach(regret, threshold)
    reached = np.isfinite(needed)
    mean = np.where(reached, needed, regret.shape[1]).mean()
    median = np.median(needed)
    prefix = "" if reached.all() else ">= "
    median_text = f"{median:.0f}" if np.isfinite(median) else f"> {regret.shape[1]}"
    return f"{prefix}{mean:.0f} / {median_text} ({reached.sum()}/{len(reached)})"


def regret_table(traces, thresholds=REGRET_THRESHOLDS):
    """Markdown table: queries each method needs to reach each regret (mean / median, runs reaching it)."""
    lines = ["| method | " + " | ".join(f"regret <= {t:g} pp" for t in thresholds) + " |",
             "|---|" + "---|" * len(thresholds)]
    for method, trace in traces.items():
        cells = [reach_cell(trace["regret"], t / 100) for t in thresholds]
        lines.append(f"| {method_name(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hours_table(traces, thresholds=REGRET_THRESHOLDS):
    """Markdown table: training hours each method spends to reach each regret, and per run in all."""
    lines = ["| method | " + " | ".join(f"regret <= {t:g} pp" for t in thresholds) + " | whole budget |",
             "|---|" + "---|" * (len(thresholds) + 1)]
    for method, trace in traces.items():
        cells = [hours_cell(trace, t / 100) for t in thresholds]
        lines.append(f"| {method_name(method)} | " + " | ".join(cells)
                     + f" | {trace['hours'][:, -1].mean():,.0f} |")
    return "\n".join(lines)


def finish_panels(axes, floor):
    """The legends, and the regret panel's symlog scale and oracle floor (a dashed line when above 0)."""
    if floor:
        axes[1].axhline(100 * floor, color="black", linestyle="--", linewidth=1,
                        label="oracle floor: every architecture queried once")
        axes[1].legend(loc="upper right")
    axes[1].set_yscale("symlog", linthresh=0.05)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(loc="lower right")


def time_grid(traces, points=200):
    """Log-spaced training hours from when every run has made its first query to the costliest whole run (so
    that every point of a curve averages all runs)."""
    low = max(t["hours"][:, 0].max() for t in traces.values())
    high = max(t["hours"][:, -1].max() for t in traces.values())
    return np.geomspace(max(low, 1e-3), high, points)


def on_time_grid(values, hours, grid):
    """(R, G) each run's value after its last query finished by each grid time (NaN before its first):
    values and hours (R, budget), hours ascending per run."""
    index = np.stack([np.searchsorted(h, grid, side="right") - 1 for h in hours])  # a loop over runs, not queries
    picked = np.take_along_axis(values, np.maximum(index, 0), axis=1)
    return np.where(index >= 0, picked, np.nan)


def plot_time_curves(traces, path, predictor_seconds=None, floor=None):
    """curves_time.png: mean regret and best validation accuracy against the training hours spent."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    grid = time_grid(traces)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, key, label in ((axes[0], "best_validation", "best validation accuracy found (%)"),
                           (axes[1], "regret", "regret of the chosen architecture (pp)")):
        for method, trace in traces.items():
            values = 100 * on_time_grid(trace[key], trace["hours"], grid)
            with np.errstate(all="ignore"):
                mean = np.nanmean(values, axis=0)
                low, high = np.nanpercentile(values, [25, 75], axis=0)
            line, = ax.plot(grid, mean, label=method_name(method))
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("108-epoch training time of the queried architectures (hours, summed)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    finish_panels(axes, floor)
    runs = next(iter(traces.values()))["regret"].shape[0]
    note = (f"; the Neural Predictor's own fitting: {predictor_seconds / runs:.1f} s per run"
            if predictor_seconds else "")
    fig.suptitle(f"mean (line) and interquartile range (band) over {runs} runs, against training time{note}")
    fig.tight_layout()
    with nasbench_data.atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def budget_table(traces, budgets=REPORT_BUDGETS):
    """Markdown table: mean best validation accuracy, mean regret and mean test accuracy at given budgets."""
    budget = min(trace["regret"].shape[1] for trace in traces.values())
    budgets = [b for b in budgets if b <= budget]
    lines = ["| method | " + " | ".join(f"{b} queries" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    for method, trace in traces.items():
        cells = []
        for b in budgets:
            cell = (f"{100 * trace['best_validation'][:, b - 1].mean():.2f} / "
                    f"{100 * trace['regret'][:, b - 1].mean():.3f}")
            test = trace["chosen_test"][:, b - 1]
            if np.isfinite(test).any():
                cell += f" / {100 * np.nanmean(test):.2f}"
            cells.append(cell)
        lines.append(f"| {method_name(method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_size_table(traces, budgets=REPORT_BUDGETS):
    """Markdown table of the N sweep: at each budget, the training-set size N with the lowest mean regret
    (N below the budget), and every N's mean regret. Empty without a sweep."""
    sizes = [(key, int(key.partition("@")[2])) for key in traces if key.startswith("predictor@")]
    if len(sizes) < 2:
        return ""
    budget = min(trace["regret"].shape[1] for trace in traces.values())
    lines = ["| total queries | best N | " + " | ".join(f"N = {size}" for _, size in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for b in [b for b in budgets if b <= budget]:
        regret = {size: 100 * traces[key]["regret"][:, b - 1].mean() for key, size in sizes if size < b}
        if not regret:
            continue
        best = min(regret, key=regret.get)
        cells = [f"{regret[size]:.3f}" if size in regret else "-" for _, size in sizes]
        lines.append(f"| {b} | {best} | " + " | ".join(cells) + " |")
    return ("\n\n## The N-vs-K trade-off\n\nMean regret (pp) after a total of K queries, N of them the "
            "predictor's random training queries; best N: the lowest.\n\n" + "\n".join(lines))


def plot_curves(traces, path, num_train=None, floor=None):
    """curves.png: mean best-so-far validation accuracy and regret with interquartile bands, log-x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    has_test = any(np.isfinite(t["chosen_test"]).any() for t in traces.values())
    panels = [("best_validation", "best validation accuracy found (%)"),
              ("regret", "regret of the chosen architecture (pp)")]
    if has_test:
        panels.append(("chosen_test", "mean test accuracy of the chosen architecture (%)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8))
    for ax, (key, label) in zip(axes, panels):
        for method, trace in traces.items():
            values = 100 * trace[key]
            queries = np.arange(1, values.shape[1] + 1)
            line, = ax.plot(queries, np.nanmean(values, axis=0), label=method_name(method))
            low, high = np.nanpercentile(values, [25, 75], axis=0)
            ax.fill_between(queries, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if num_train:
            ax.axvline(num_train, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("architectures queried (trained)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylim(bottom=np.percentile(100 * np.concatenate(
        [t["best_validation"][:, min(9, t["best_validation"].shape[1] - 1)] for t in traces.values()]), 25))
    finish_panels(axes, floor)
    runs = next(iter(traces.values()))["regret"].shape[0]
    fig.suptitle(f"mean (line) and interquartile range (band) over {runs} runs; the methods share their first "
                 f"random queries" + (f"; dotted: the Neural Predictor's N = {num_train}" if num_train else ""))
    fig.tight_layout()
    with nasbench_data.atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def markdown_report(traces, summary):
    """table.md: queries needed to reach each regret, values at given budgets, distinct architectures queried."""
    has_test = any(np.isfinite(t["chosen_test"]).any() for t in traces.values())
    distinct = ", ".join(f"{method_name(m)} {summary['methods'][m]['distinct_architectures_mean']:.0f}"
                         for m in traces)
    return ("## Queries needed to reach a regret\n\n"
            "Regret = the pool's best mean validation accuracy minus that of the architecture chosen by "
            "queried validation accuracy, in percentage points. Cells: mean / median number of queries over "
            "runs (runs that never reach it count as the budget, hence '>='), and (runs reaching it / runs).\n\n"
            + regret_table(traces)
            + best_size_table(traces)
            + "\n\n## Training time needed to reach a regret\n\nCells: mean / median hours of 108-epoch training "
            "(the summed `training_time` of the queried runs) over runs (runs that never reach it count with "
            "their whole budget's hours, hence '>='), and (runs reaching it / runs); last column: a whole run's "
            "hours. The Neural Predictor's own fitting time is not in them"
            + (f" ({summary['seconds']['predictor'] / summary['args']['runs']:.1f} s per run)"
               if "predictor" in summary["seconds"] else "") + ".\n\n"
            + hours_table(traces)
            + "\n\n## At given budgets\n\nCells: mean best validation accuracy found (%) / mean regret (pp)"
            + (" / mean test accuracy of the chosen architecture (%)" if has_test else "")
            + ".\n\n" + budget_table(traces)
            + ("" if has_test else "\n\nThe data has no test accuracy (as the labels_20k sample), "
               "so none is reported.")
            + f"\n\nOracle floor (every pool architecture queried once, the best by its drawn run chosen; mean over "
            f"100 draws of the runs): regret {100 * summary['oracle_floor_regret']['mean']:.3f} pp. No method can "
            "beat it on average: its regret comes only from one run's noise."
            + f"\n\nDistinct architectures among the {summary['args']['budget']} queries of a run (mean): "
            + distinct + ".\n")


def write_outputs(output_dir, traces, oracles, summary):
    """Write curves.png, curves_time.png, table.md, traces.npz and summary.json, all or none (atomic_outputs);
    return the table."""
    names = ("curves.png", "curves_time.png", "table.md", "traces.npz", "summary.json")
    table = markdown_report(traces, summary)
    arrays = {f"{method}/{key}": value for method, trace in traces.items() for key, value in trace.items()}
    arrays.update({f"{method}/rows": oracle.rows for method, oracle in oracles.items()})
    arrays.update({f"{method}/values": oracle.values for method, oracle in oracles.items()})
    arrays.update({f"{method}/seconds": oracle.seconds for method, oracle in oracles.items()})
    paths = [os.path.join(output_dir, name) for name in names]
    with nasbench_data.atomic_outputs(*paths) as (curves, time_curves, markdown, npz, json_path):
        floor = summary["oracle_floor_regret"]["mean"]
        plot_curves(traces, curves, summary["args"]["num_train"][0] if "predictor" in traces else None, floor)
        plot_time_curves(traces, time_curves, summary["seconds"].get("predictor"), floor)
        with open(markdown, "w") as f:
            f.write(table)
        with open(npz, "wb") as f:
            np.savez_compressed(f, **arrays)
        nasbench_data.write_json(json_path, summary)
    return table
