"""Speed of the predictors: training, cross-validation, whole-space prediction, whole processes.

    python bench.py                          # all benchmarks on the default device (CUDA when available)
    python bench.py --device cpu --skip-baseline --output runs/bench.md

Times (1) training the GCN on 172 architectures for 300 epochs with engine.fit's fast
backend against its autograd backend (loss.backward() through model.GCN, torch.optim.Adam),
in alternation (a pair's ratio is immune to the machine's drift), each backend's cost per step
beyond arithmetic (the same fits of a GCN with hidden size 4 and batches of 1) and the ratio
it implies if autograd did only the fast path's arithmetic, mixed precision
(`--precision bf16`) for one model and, against float32 in alternation, for a stack of 20 (a
search's fit; bf16 only where the CPU has native bfloat16 instructions, elsewhere the row says
how many times slower its products are), and the MLP and CNN baselines (autograd); (2) 5-fold
cross-validation as one stacked fit against one training, in alternation, and the floor of a
search's fits: one GCN training step's FLOPs at this machine's float32 product speed, for
search.py's 100 fits and for the N sweep's; (3) predicting every one of the 423,624
architectures of the enumerated space, both backends; (4) whole processes,
start-up included: `python train.py` against `python tests/reference_predictor.py` (an
independent plain implementation trained the public reproduction's way: per-batch modules,
torch.optim.Adam), in alternation; (5) on the CPU, how much longer a product with subnormal
weights takes, and whole processes of `python train.py` (both recipes) against the same with
`--denormals flush`, in alternation. Reports wall and process CPU seconds (CPU seconds show the
work done when other programs share the machine) and peak resident memory.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import cli
from nb101 import search_space
from dataset import Nb101Dataset, graph_tensors
from engine import cross_validate, fit, predict
from flags import SWEEP_SIZES
from search_methods import NUM_TRAIN as SEARCH_NUM_TRAIN, RUNS as SEARCH_RUNS
from model import GCN, batch_loss
from recipes import FAITHFUL
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, atomic_output, check_output_file

ROOT = os.path.dirname(os.path.abspath(__file__))
OVERHEAD_HIDDEN, OVERHEAD_BATCH = 4, 1  # a GCN whose training step is almost no arithmetic (tests/test_bench.py)
STACK_MODELS = 20  # search.py's fit on two cores: two worker threads, slices of 10 models each



def product_slowdown(dtype, device, repeats=3):
    """How many times as long a GCN layer's weight product of a search slice (20 products of (70, 144) by
    (144, 144)) takes in `dtype` as in float32 on `device`, best of `repeats` each: about 0.3 on a CPU with native
    bfloat16 instructions (AVX512-BF16, AMX), 20 to 55 on one without, where torch emulates them. Under 0.2 s;
    1.0 on a GPU, where it is not measured."""
    if torch.device(device).type != "cpu":
        return 1.0
    operands = slice_product_operands()
    return best_product_time([t.to(dtype) for t in operands], repeats) / best_product_time(operands, repeats)


def subnormal_slowdown(device, repeats=3):
    """How many times as long the weight product of product_slowdown takes in float32 when 1 % of the weights
    are subnormal (below 1.2e-38, as the weights that weight decay shrinks towards zero become), on `device`:
    about 1 where the CPU handles them at full speed or flushes them to zero, 30 and more on CPUs where every
    operation on one traps into microcode (most Intel ones). Under 0.2 s; 1.0 on a GPU, not measured."""
    if torch.device(device).type != "cpu":
        return 1.0
    inputs, weights = slice_product_operands()
    subnormal = weights.clone()
    subnormal.view(-1)[::100] = 1e-40
    return best_product_time([inputs, subnormal], repeats) / best_product_time([inputs, weights], repeats)


def slice_product_operands():
    """Random (20, 70, 144) inputs and (20, 144, 144) weights: a search slice's layer products."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(20, 70, 144, generator=generator), torch.randn(20, 144, 144, generator=generator)]


def best_product_time(operands, repeats):
    """The best wall time of `repeats` torch.bmm calls on operands (after a first one that allocates and warms up);
    on a GPU each timed call waits for the product to finish."""
    sync = torch.cuda.synchronize if operands[0].is_cuda else (lambda: None)
    out = torch.bmm(*operands)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        torch.bmm(*operands, out=out)
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def sync():
    """Wait for queued CUDA work (a no-op without CUDA), so that a clock read after it includes that work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(function, *args, repeats=1, **kwargs):
    """(result, wall seconds, CPU seconds of this process) of a call: the run of median wall time among
    `repeats` (a shared machine's noise moves single runs by 20 %); waits for CUDA work to finish."""
    runs = []
    for _ in range(repeats):
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        sync()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu, result))
    wall, cpu, result = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return result, wall, cpu


def timed_pair(first, second, repeats=1):
    """Runs of two calls in alternation (first, second, first, ...): (first's result, first's wall, first's CPU,
    second's wall, second's CPU, median ratio of second's wall to first's within each pair). Pairs
    cancel the slow drift of a shared machine's speed that timing one call's runs, then the other's, would not."""
    runs = [(timed(first), timed(second)) for _ in range(repeats)]
    median = len(runs) // 2
    (result, wall_1, cpu_1), _ = sorted(runs, key=lambda pair: pair[0][1])[median]
    _, (_, wall_2, cpu_2) = sorted(runs, key=lambda pair: pair[1][1])[median]
    ratio = sorted(second_run[1] / first_run[1] for first_run, second_run in runs)[median]
    return result, wall_1, cpu_1, wall_2, cpu_2, ratio


def float32_peak_gflops(device, size=2048, repeats=5):
    """This machine's float32 matrix-product speed with the current threads, in GFLOPS: the best of `repeats`
    products of two size x size matrices after a warm-up one. Products this large run near the cores' peak."""
    generator = torch.Generator().manual_seed(0)
    operands = [torch.randn(1, size, size, generator=generator).to(device) for _ in range(2)]
    return 2 * size ** 3 / best_product_time(operands, repeats) / 1e9


def training_step_flops(graphs, batch_size, hidden=144):
    """Floating-point operations of one GCN training step (forward and backward through model.GCN, one model, a
    batch of the first batch_size graphs, layers of `hidden` units), as torch.utils.flop_counter counts them: its
    matrix products, nearly all of a step's arithmetic and the same on both backends."""
    model = GCN(hidden=hidden, seed=0)
    batch = {key: value[:batch_size] for key, value in model.inputs(graphs).items()}
    with FlopCounterMode(display=False) as counter:
        output = model(batch)
        batch_loss(output, torch.zeros_like(output), torch.full_like(output, 1 / batch_size)).backward()
    return counter.get_total_flops()


def autograd_ratio_floor(fast_step, fast_overhead, autograd_overhead):
    """The autograd fit's time over the fast one's if the autograd backend did the fast path's arithmetic and
    only its own framework calls cost more: 1 + (autograd_overhead - fast_overhead) / fast_step, each a time per
    training step (overheads from fits whose arithmetic is negligible)."""
    return 1 + (autograd_overhead - fast_overhead) / fast_step


def whole_process(command):
    """A command-line call of this repository's scripts as a function (wall time is what timed measures);
    ValueError with its last output when it fails."""
    def call():
        done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise ValueError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return call


def cpu_description():
    """'<model name> (N cores, torch's <ISA> kernels)': the figures depend on the CPU far more than on the code."""
    model = "CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:  # not Linux
        pass
    return f"{model} ({os.cpu_count()} cores, torch's {torch.backends.cpu.get_cpu_capability()} kernels)"


def peak_memory_mb():
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5, help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="split file made by tools/split_train_val.py")
    parser.add_argument("--train_split", default="172", help="split to train on")
    parser.add_argument("--epochs", type=cli.positive_int, default=FAITHFUL.epochs, help="training epochs")
    parser.add_argument("--folds", type=cli.positive_int, default=5, help="folds of the timed cross-validation")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    parser.add_argument("--repeats", type=cli.positive_int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="skip the whole-process comparison with tests/reference_predictor.py")
    parser.add_argument("--output", default=None, help="also write the Markdown table to this file")
    cli.add_denormals_argument(parser)
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds needs K >= 2")
    return args


def bench(args, device):
    if args.output:
        check_output_file(args.output, args.data, args.splits)
    train_set = Nb101Dataset(args.data, args.train_split, args.splits, device)
    space = search_space.enumerate_space()
    name = cpu_description() if device.type == "cpu" else torch.cuda.get_device_name(device)
    header = (f"{name}, torch {torch.__version__}; {len(train_set)} training architectures, {args.epochs} epochs; "
              f"{len(space):,} architectures predicted; median of {args.repeats} runs\n\n"
              "| what | wall s | CPU s | threads | peak RSS MiB |\n"
              "|---|---|---|---|---|")
    print(header, flush=True)
    rows = []
    threads = torch.get_num_threads() if device.type == "cpu" else 1

    def row(what, wall=None, cpu=None, threads="-"):
        # a child process's CPU time and memory are not this process's; a row without a wall time timed nothing
        cpu, memory = ("-", "-") if cpu is None else (f"{cpu:.2f}", f"{peak_memory_mb():.0f}")
        rows.append(f"| {what} | {'-' if wall is None else f'{wall:.2f}'} | {cpu} | {threads} | {memory} |")
        print(rows[-1], flush=True)

    one_set = [(torch.arange(len(train_set)), train_set.target)]
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # its first use imports torch._dynamo (1.3 s): not timed

    batch_size = cli.RECIPES["faithful"].batch_size

    def train(training_sets=one_set, **options):
        """A fit of the bench's settings (epochs, batch size, device), any of them overridden by `options`."""
        settings = {"epochs": args.epochs, "batch_size": batch_size, "device": device, **options}
        return lambda: fit(train_set.graphs, training_sets, **settings)

    model, single, cpu, wall, plain_cpu, ratio = timed_pair(train(), train(backend="autograd"), repeats=args.repeats)
    row(f"fit, GCN, fast backend: {len(train_set)} architectures x {args.epochs} epochs", single, cpu, threads)
    row(f"fit, GCN, autograd backend ({ratio:.2f} x the fast one, median of the pairs)", wall, plain_cpu, threads)
    # each backend's cost per step beyond arithmetic: the same fits of a GCN so small that a step is almost only calls
    overhead_epochs = max(1, args.epochs // 60)
    tiny = {"epochs": overhead_epochs, "hidden": OVERHEAD_HIDDEN, "batch_size": OVERHEAD_BATCH}
    _, tiny_fast, _, tiny_autograd, _, _ = timed_pair(train(backend="fast", **tiny), train(backend="autograd", **tiny),
                                                      repeats=args.repeats)
    fast_step = single / (args.epochs * (len(train_set) // batch_size))
    tiny_steps = overhead_epochs * (len(train_set) // OVERHEAD_BATCH)
    fast_overhead, autograd_overhead = tiny_fast / tiny_steps, tiny_autograd / tiny_steps
    row(f"a step's cost beyond arithmetic (a fit at hidden {OVERHEAD_HIDDEN}, batch {OVERHEAD_BATCH}): fast backend "
        f"{fast_overhead * 1e6:.0f} us, autograd {autograd_overhead * 1e6:.0f} us; the fit's fast step "
        f"{fast_step * 1e6:.0f} us, so with no more arithmetic than the fast path the autograd fit would take "
        f"{autograd_ratio_floor(fast_step, fast_overhead, autograd_overhead):.2f} x as long")
    # where bfloat16 products are emulated (tens of times slower), timing them would take most of the benchmark
    slowdown = product_slowdown(torch.bfloat16, device)
    native_bf16 = slowdown <= 1
    if native_bf16:
        _, wall, cpu = timed(train(precision="bf16"), repeats=args.repeats)
        row(f"fit, GCN, fast backend, `--precision bf16`: {len(train_set)} architectures x {args.epochs} epochs",
            wall, cpu, threads)
    else:
        row(f"`--precision bf16` not timed: a bfloat16 weight product takes {slowdown:.1f} x as long as a float32 one "
            "on this CPU (no native bfloat16 instructions)")
    stack, stack_epochs = [one_set[0]] * STACK_MODELS, max(1, args.epochs // 10)
    stack_row = f"fit, GCN, fast backend: a stack of {STACK_MODELS} models x {stack_epochs} epochs (a search's fit)"
    if native_bf16:
        _, wall, cpu, low_wall, low_cpu, ratio = timed_pair(train(stack, epochs=stack_epochs),
                                                            train(stack, epochs=stack_epochs, precision="bf16"),
                                                            repeats=args.repeats)
        row(stack_row, wall, cpu, threads)
        row(f"the same stack, `--precision bf16` ({ratio:.2f} x float32, median of the pairs)", low_wall, low_cpu,
            threads)
    else:
        _, wall, cpu = timed(train(stack, epochs=stack_epochs), repeats=args.repeats)
        row(stack_row, wall, cpu, threads)
    for predictor in ("mlp", "cnn"):
        _, wall, cpu = timed(train(predictor=predictor), repeats=args.repeats)
        row(f"fit, {predictor.upper()} (autograd)", wall, cpu, threads)
    _, _, _, wall, cv_cpu, ratio = timed_pair(
        train(), lambda: cross_validate(train_set.graphs, train_set.target, train_set.accuracy, args.folds,
                                        epochs=args.epochs, device=device), repeats=args.repeats)
    row(f"{args.folds}-fold cross-validation as one stacked fit ({ratio:.2f} x one training, median of the pairs)",
        wall, cv_cpu, threads)
    # what the search's fits cost at the least: their products at this machine's peak (the faithful recipe)
    peak = float32_peak_gflops(device)
    epochs = cli.RECIPES["faithful"].epochs
    step_flops = training_step_flops(train_set.graphs, batch_size)
    row(f"float32 products at this machine's peak: {peak:.0f} GFLOPS (2,048 x 2,048 by 2,048 x 2,048, best of 5); "
        f"one GCN training step (batch {batch_size}, forward and backward): {step_flops / 1e6:.1f} MFLOP")

    def seconds_at_peak(sizes):  # SEARCH_RUNS fits for each N of sizes, batches of batch_size, the last one dropped
        return SEARCH_RUNS * epochs * sum(n // batch_size for n in sizes) * step_flops / (peak * 1e9)
    row(f"the products of {SEARCH_RUNS} fits at that peak: `python search.py` (N = {SEARCH_NUM_TRAIN}) "
        f"{seconds_at_peak([SEARCH_NUM_TRAIN]):.0f} s, the N sweep (N = {', '.join(map(str, SWEEP_SIZES))}) "
        f"{seconds_at_peak(SWEEP_SIZES) / 60:.1f} min")

    graphs, wall, cpu = timed(graph_tensors, space.adjacency, space.operations, space.num_vertices, device)
    row(f"graph_tensors of all {len(space):,} architectures", wall, cpu, threads)
    for count in sorted({1, os.cpu_count()}) if device.type == "cpu" else [1]:
        _, wall, cpu = timed(predict, model, graphs, threads=count, repeats=args.repeats)
        row(f"predict all {len(space):,} architectures, fast backend, {count} worker thread(s)", wall, cpu, count)
    _, wall, cpu = timed(predict, model, graphs, backend="autograd")
    row(f"predict all {len(space):,} architectures, autograd backend (forward)", wall, cpu, threads)

    if not args.skip_baseline and device.type == "cpu":
        _, wall, _, reference_wall, _, ratio = timed_pair(
            whole_process(["train.py", "--quiet", "--output_dir", os.path.join("runs", "bench_train")]),
            whole_process([os.path.join("tests", "reference_predictor.py")]), repeats=args.repeats)
        row("whole process: `python train.py` (faithful recipe)", wall, None, threads)
        row(f"whole process: `python tests/reference_predictor.py`, the reproduction's way ({ratio:.2f} x "
            "train.py, median of the pairs)", reference_wall, None, threads)
    if device.type == "cpu" and args.denormals == "keep":
        row(f"a weight product with 1 % subnormal weights: {subnormal_slowdown(device):.1f} x as long as without")
        # a process-wide CPU setting that torch's threads take when they start: only whole processes compare it
        for recipe in cli.RECIPES:
            command = ["train.py", "--quiet", "--recipe", recipe, "--output_dir", os.path.join("runs", "bench_train")]
            _, wall, _, flush_wall, _, ratio = timed_pair(whole_process(command),
                                                          whole_process(command + ["--denormals", "flush"]),
                                                          repeats=args.repeats)
            row(f"whole process: `python train.py --recipe {recipe}`", wall, None, threads)
            row(f"the same, `--denormals flush` ({ratio:.2f} x, median of the pairs)", flush_wall, None, threads)
    if args.output:
        with atomic_output(args.output) as tmp:
            with open(tmp, "w") as f:
                f.write(header + "\n" + "\n".join(rows) + "\n")
    return 0


def main(argv=None):
    args = parse_args(argv)
    return cli.run(bench, args)


if __name__ == "__main__":
    sys.exit(main())
