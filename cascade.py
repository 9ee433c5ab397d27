"""The paper's two-stage predictor: a GCN classifier (accuracy > 0.91) in front of the GCN regressor.

    python cascade.py                                   # train on split 172, evaluate on all
    python cascade.py --train_split 334 --epochs 300 --output_dir runs/cascade_334

The classifier is the predictor's GCN with a sigmoid output, trained with binary
cross-entropy (lr 2e-4) on the N training architectures, label "validation accuracy
> 0.91". The regressor is then trained only on the training architectures the
classifier passes (logit > 0, i.e. probability > 0.5), and only architectures that
pass are regressed and ranked. Next to it, the oracle-filter shortcut of the public
reproduction (split 91-N: the regressor trained on the architectures whose true
accuracy is above 0.91) is trained in the same batched fit and evaluated on the same
architectures. Writes results.json to --output_dir; `train.py --cascade` runs the same
(engine.run_cascade) and merges the metrics into its own results.json.
"""
import argparse
import os
import sys
import time

import cli
import engine
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, write_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5, help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="split file made by tools/split_train_val.py")
    parser.add_argument("--train_split", default="172", help="split to train the classifier and regressor on")
    parser.add_argument("--eval_split", default="all", help="split to evaluate on")
    cli.add_recipe_arguments(parser)
    parser.add_argument("--classifier_lr", type=cli.positive_float, default=engine.CLASSIFIER_LR,
                        help="the classifier's learning rate (the paper's 2e-4)")
    cli.add_machine_arguments(parser, "runs/cascade")
    return cli.resolve_recipe(parser.parse_args(argv), parser)


def cascade(args, device):
    start = time.time()
    train_set, eval_set = cli.load_datasets(args, device)
    if len(eval_set) == 0:
        raise ValueError(f"eval split {args.eval_split!r} has no architectures; choose another --eval_split")
    metrics = engine.run_cascade(train_set, eval_set, cli.fit_arguments(args, device), args.ensemble,
                                 args.classifier_lr)
    results = {"cascade": metrics, "args": vars(args), "seconds": time.time() - start}
    write_json(os.path.join(args.output_dir, "results.json"), results)
    print(engine.cascade_summary(metrics, args.eval_split, len(train_set)))
    print(f"{results['seconds']:.1f} s; wrote {args.output_dir}/results.json")
    return 0


def main(argv=None):
    return cli.run(cascade, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
