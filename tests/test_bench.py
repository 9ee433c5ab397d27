"""Tests of bench.py's bookkeeping (not of speed): which run is reported, how a pair's ratio is formed."""
import bench


def fake_clock(monkeypatch):
    """Replace bench's wall clock by one that only moves when `advance` is called."""
    now = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now[0])

    def advance(seconds):
        now[0] += seconds
    return advance


def test_timed_reports_the_run_of_median_wall_time(monkeypatch):
    advance = fake_clock(monkeypatch)
    durations = iter([5.0, 1.0, 3.0])

    def call():
        seconds = next(durations)
        advance(seconds)
        return seconds
    result, wall, _ = bench.timed(call, repeats=3)
    assert (result, wall) == (3.0, 3.0)


def test_timed_pair_alternates_and_takes_the_median_ratio_within_pairs(monkeypatch):
    advance = fake_clock(monkeypatch)
    order = []
    # the machine slows down run by run: first takes 1, 2, 4 s; second 3, 4, 6 s (ratios 3, 2, 1.5)
    first_times, second_times = iter([1.0, 2.0, 4.0]), iter([3.0, 4.0, 6.0])

    def first():
        order.append("first")
        advance(next(first_times))
        return "model"

    def second():
        order.append("second")
        advance(next(second_times))
    result, wall_1, _, wall_2, _, ratio = bench.timed_pair(first, second, repeats=3)
    assert order == ["first", "second"] * 3
    assert (result, wall_1, wall_2, ratio) == ("model", 2.0, 4.0, 2.0)


def test_float32_peak_is_the_products_operations_over_the_best_time(monkeypatch):
    # the clock moves 4 s between the start and the end of the first timed product, then 2 s, then 8 s
    readings = iter([0.0, 4.0, 10.0, 12.0, 20.0, 28.0])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(readings))
    assert bench.float32_peak_gflops("cpu", size=64, repeats=3) == 2 * 64 ** 3 / 2.0 / 1e9


def test_training_step_flops_counts_every_product_of_forward_and_backward(sample):
    from model import GCN
    b, v, types, hidden, readout = 10, 7, 5, 144, 128
    assert [tuple(w.shape[-2:]) for w in GCN().layers] == [(types, hidden), (hidden, hidden), (hidden, hidden),
                                                           (hidden, readout), (readout, 1)]

    def weight(fan_in, fan_out):  # h W of both directions: (2 B V, in) by (in, out)
        return 2 * (2 * b * v) * fan_in * fan_out
    propagation = 2 * b * 2 * v * v * hidden  # P y and B y of every graph
    forward = (weight(types, hidden) + 2 * weight(hidden, hidden) + 3 * propagation
               + 2 * b * v * hidden + 2 * b * hidden * readout + 2 * b * readout)  # mean readout, two linear layers
    # backward: a product costs its forward once per operand that needs a gradient; the one-hot inputs and the
    # propagation and readout matrices need none, so the first layer's product and the propagations cost one
    backward = (weight(types, hidden) + 2 * 2 * weight(hidden, hidden) + 3 * propagation
                + 2 * b * v * hidden + 2 * (2 * b * hidden * readout) + 2 * (2 * b * readout))
    assert bench.training_step_flops(sample, b) == forward + backward


def test_the_overhead_fits_step_is_almost_no_arithmetic(sample):
    """bench's per-step cost beyond arithmetic comes from fits at hidden OVERHEAD_HIDDEN, batch OVERHEAD_BATCH:
    their step must have under 1 % of the arithmetic of the step they are compared with."""
    tiny = bench.training_step_flops(sample, bench.OVERHEAD_BATCH, hidden=bench.OVERHEAD_HIDDEN)
    assert 0 < tiny < 0.01 * bench.training_step_flops(sample, bench.cli.RECIPES["faithful"].batch_size)
