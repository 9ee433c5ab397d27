"""The argparse types of every command-line script: a bad value exits 2 with the flag named, before any work.

    python -c "import flags; print(flags.positive_int('3'))"

Kept free of torch so that the data tools (tools/split_train_val.py) share them without its import cost;
cli.py offers them to the training scripts.
"""
import argparse
import math

MAX_SEED = 2 ** 31 - 1  # seeds feed numpy's RandomState (below 2**32) and torch's generators as seed + model index
DENORMALS = ("keep", "flush")  # --denormals: float32 subnormals kept (IEEE) or flushed to zero on the CPU
SWEEP_SIZES = (43, 86, 129, 172, 344, 860)  # the paper's N-vs-K ablation (tools/search_figures.py's sweep stage)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def finite_float(text, low=0.0, low_inclusive=False, high=math.inf):
    """A float in the interval from `low` (inclusive or not) to `high` (exclusive): argparse's error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text}") from None
    above = value >= low if low_inclusive else value > low
    if not (math.isfinite(value) and above and value < high):
        interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g})"
        raise argparse.ArgumentTypeError(f"expected a finite number in {interval}, got {text}")
    return value


def positive_float(text):
    return finite_float(text)


def non_negative_float(text):
    return finite_float(text, low_inclusive=True)


def dropout_rate(text):
    return finite_float(text, low_inclusive=True, high=1.0)


def on_off(text):
    """'on' -> True, 'off' -> False."""
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text}")
    return text == "on"


def seed(text):
    """A seed from 0 to MAX_SEED: larger ones would wrap around in some generator and silently repeat a run."""
    value = non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED:,}, got {text}")
    return value


class Distinct(argparse.Action):
    """A list flag (nargs="+") whose values must differ: a repeated value would run one configuration twice."""

    def __call__(self, parser, namespace, values, option_string=None):
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            parser.error(f"argument {option_string}: each value once ({', '.join(repeated)} given twice)")
        setattr(namespace, self.dest, values)
