"""The search comparison's outputs: best-so-far traces, regret tables, curves, and the files search.py writes.

    python -c "import search_report; help(search_report.write_outputs)"
"""
import os

import numpy as np

from nb101 import nasbench_data
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
    """Markdown tables of the N sweep, one per predictor variant swept: at each budget, the training-set size N with
    the lowest mean regret (N below the budget), and every N's mean regret. Empty without a sweep."""
    swept = {}
    for key in traces:
        base, _, size = key.partition("@")
        if size:
            swept.setdefault(base, []).append((key, int(size)))
    budget = min(trace["regret"].shape[1] for trace in traces.values())
    text = ""
    for base, sizes in swept.items():
        if len(sizes) < 2:
            continue
        lines = ["| total queries | best N | " + " | ".join(f"N = {size}" for _, size in sizes) + " |",
                 "|---|---|" + "---|" * len(sizes)]
        for b in [b for b in budgets if b <= budget]:
            regret = {size: 100 * traces[key]["regret"][:, b - 1].mean() for key, size in sizes if size < b}
            if not regret:
                continue
            best = min(regret, key=regret.get)
            cells = [f"{regret[size]:.3f}" if size in regret else "-" for _, size in sizes]
            lines.append(f"| {b} | {best} | " + " | ".join(cells) + " |")
        text += (f"\n\n## The N-vs-K trade-off: {method_name(base)}\n\nMean regret (pp) after a total of K "
                 "queries, N of them the predictor's random training queries; best N: the lowest.\n\n"
                 + "\n".join(lines))
    return text


def soonest_ranking(traces, threshold=0.0):
    """Markdown sentence ranking the methods by mean queries to reach `threshold` (fraction; 0: the pool's best),
    runs that never reach it counting as the budget; ties broken by the mean to 0.1 pp."""
    def order(key):
        return tuple(np.where(np.isfinite(q := queries_to_reach(traces[key]["regret"], t)), q,
                              traces[key]["regret"].shape[1]).mean() for t in (threshold, 0.001))
    ranked = sorted(traces, key=order)
    what = "the pool's best" if threshold == 0 else f"a regret of {100 * threshold:g} pp"
    cells = [f"{i}. {method_name(key)} ({reach_cell(traces[key]['regret'], threshold)})"
             for i, key in enumerate(ranked, 1)]
    return (f"Soonest to {what} (mean / median queries, runs that never reach it counting as the budget; "
            "runs reaching it / runs): " + "; ".join(cells) + ".")


def fitting_seconds(summary):
    """Seconds per search run each Neural Predictor entry spent fitting (and ranking), by entry key."""
    return {key: seconds / summary["args"]["runs"] for key, seconds in summary["seconds"].items()
            if key.startswith("predictor")}


def fitting_note(summary):
    """'Neural Predictor: 2.7 s per run' (or one per variant), the predictors' own cost beside the training hours."""
    sizes = summary["args"]["num_train"]
    shared = f" for all {len(sizes)} values of N together (one batched fit)" if len(sizes) > 1 else ""
    return "; ".join(f"{method_name(key)} {seconds:.1f} s per run{shared}"
                     for key, seconds in fitting_seconds(summary).items())


MAX_BANDS = 4  # with more methods than this the figures draw mean lines only: the bands would hide each other


def curve_styles(traces):
    """Colour and line style of every trace: one colour per method or predictor variant, dashed with the cascade."""
    import matplotlib
    bases = list(dict.fromkeys(key.replace(",cascade", "") for key in traces))
    colours = matplotlib.colormaps["tab10" if len(bases) <= 10 else "tab20"]
    return {key: dict(color=colours(bases.index(key.replace(",cascade", ""))),
                      linestyle="--" if ",cascade" in key else "-") for key in traces}


def draw_curves(traces, path, summary, panels, series, xlabel, title, num_train=None):
    """Write one figure to `path`: per panel (trace key, axis label), every trace's mean curve over runs (and its
    interquartile band when at most MAX_BANDS traces), log-x; series(trace, key) -> (x, (R, G) values in %).
    The regret panel is symlog with the oracle floor dashed when above 0; the title names the runs and the pool."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    bands = len(traces) <= MAX_BANDS
    styles = curve_styles(traces)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8 if bands else 6.2))
    for ax, (key, label) in zip(axes, panels):
        for method, trace in traces.items():
            x, values = series(trace, key)
            with np.errstate(all="ignore"):
                ax.plot(x, np.nanmean(values, axis=0), label=method_name(method), **styles[method])
                if bands:
                    low, high = np.nanpercentile(values, [25, 75], axis=0)
                    ax.fill_between(x, low, high, color=styles[method]["color"], alpha=0.2, linewidth=0)
        if num_train:
            ax.axvline(num_train, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    floor = summary["oracle_floor_regret"]["mean"]
    regret_axis = axes[[key for key, _ in panels].index("regret")]
    if floor:
        regret_axis.axhline(100 * floor, color="black", linestyle="--", linewidth=1,
                            label="oracle floor: every architecture queried once")
        regret_axis.legend(loc="upper right")
    regret_axis.set_yscale("symlog", linthresh=0.05)
    regret_axis.set_ylim(bottom=0)
    if bands:
        axes[0].legend(loc="lower right")
    else:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small", frameon=False)
    runs = next(iter(traces.values()))["regret"].shape[0]
    fig.suptitle(f"{title}\nmean{' (line) and interquartile range (band)' if bands else ''} over {runs} runs per "
                 f"method; pool of {summary['pool_size']:,} architectures")
    fig.tight_layout(rect=(0, 0 if bands else 0.04 + 0.035 * ((len(traces) + 2) // 3), 1, 1))
    with nasbench_data.atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def plot_curves(traces, path, summary, num_train=None):
    """curves.png: best-so-far validation accuracy, regret (and the chosen architecture's test accuracy where the
    data has it) against the number of queries."""
    has_test = any(np.isfinite(t["chosen_test"]).any() for t in traces.values())
    panels = [("best_validation", "best validation accuracy found (%)"),
              ("regret", "regret of the chosen architecture (pp)")]
    if has_test:
        panels.append(("chosen_test", "mean test accuracy of the chosen architecture (%)"))

    def series(trace, key):
        return np.arange(1, trace[key].shape[1] + 1), 100 * trace[key]
    title = "Search against queries; the methods share their first random queries"
    if num_train:
        title += f"; dotted: the Neural Predictor's N = {num_train}"
    draw_curves(traces, path, summary, panels, series, "architectures queried (trained)", title, num_train)


def plot_time_curves(traces, path, summary):
    """curves_time.png: best validation accuracy and regret against the summed training hours of the queries;
    the Neural Predictor entries' own fitting time per run in the title."""
    grid = time_grid(traces)

    def series(trace, key):
        return grid, 100 * on_time_grid(trace[key], trace["hours"], grid)
    seconds = sorted(fitting_seconds(summary).values())
    every_size = " for all N" if len(summary["args"]["num_train"]) > 1 else ""
    note = ("" if not seconds else f" (Neural Predictor's own fitting: {seconds[0]:.1f} s per run{every_size})"
            if len(seconds) == 1 else f" (predictors' own fitting: {seconds[0]:.1f}-{seconds[-1]:.1f} s per run)")
    draw_curves(traces, path, summary, [("best_validation", "best validation accuracy found (%)"),
                                        ("regret", "regret of the chosen architecture (pp)")], series,
                "108-epoch training time of the queried architectures (hours, summed)",
                "Search against training time" + note)


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
            + "\n\n" + soonest_ranking(traces)
            + best_size_table(traces)
            + "\n\n## Training time needed to reach a regret\n\nCells: mean / median hours of 108-epoch training "
            "(the summed `training_time` of the queried runs) over runs (runs that never reach it count with "
            "their whole budget's hours, hence '>='), and (runs reaching it / runs); last column: a whole run's "
            "hours. The Neural Predictor's own fitting time is not in them"
            + (f" ({fitting_note(summary)})" if fitting_seconds(summary) else "") + ".\n\n"
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
    """Write table.md, traces.npz and summary.json (all or none, atomic_outputs), then curves.png and
    curves_time.png, so that a failure while plotting (a full disk) keeps the results; return the table."""
    table = markdown_report(traces, summary)
    arrays = {f"{method}/{key}": value for method, trace in traces.items() for key, value in trace.items()}
    arrays.update({f"{method}/rows": oracle.rows for method, oracle in oracles.items()})
    arrays.update({f"{method}/values": oracle.values for method, oracle in oracles.items()})
    arrays.update({f"{method}/seconds": oracle.seconds for method, oracle in oracles.items()})
    paths = [os.path.join(output_dir, name) for name in ("table.md", "traces.npz", "summary.json")]
    with nasbench_data.atomic_outputs(*paths) as (markdown, npz, json_path):
        with open(markdown, "w") as f:
            f.write(table)
        with open(npz, "wb") as f:
            np.savez_compressed(f, **arrays)
        nasbench_data.write_json(json_path, summary)
    swept = len(summary["args"]["num_train"]) > 1
    plot_curves(traces, os.path.join(output_dir, "curves.png"), summary,
                None if swept or "predictor" not in summary["args"]["methods"] else summary["args"]["num_train"][0])
    plot_time_curves(traces, os.path.join(output_dir, "curves_time.png"), summary)
    return table


def output_bytes(entries, runs, budget):
    """About how many bytes write_outputs needs: traces.npz's seven (runs, budget) float64 arrays per entry, and the
    plots and tables."""
    return entries * runs * budget * 7 * 8 + 2 ** 21
