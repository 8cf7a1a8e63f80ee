"""Sub-command ``train``: the seed recipe on a real or synthetic data set, in this process.

It imports an engine, which is safe here: the command runs in its own fresh process by
construction and applies the profile before the engine's import.
"""

from __future__ import annotations

import json
import sys

from .. import cells
from ..errors import ConfigError
from .args import add_profile_args, load_config


TRAIN_DEFAULTS = {  # README states what they reach
    # lr is well inside the stable range: near its edge float32 rounding differences between
    # backends (or between CPUs' kernels) grow over a few hundred steps and one engine's loss
    # explodes, so every engine must follow the same trajectory at the default.
    "digits": dict(epochs=30, batch=32, lr=0.2, hidden=64),
    "synthetic": dict(epochs=30, batch=16, lr=0.1, hidden=32),
}


#: what each command's exit status means, and what it writes (docs/cli.md)
EXIT_CODES = {
    "train": {0: "trained; the loss per epoch and the held-out accuracy were printed",
              1: "training diverged (the final loss is not finite)",
              2: "bad usage: a bad flag, or --epochs, --batch, --hidden or --lr not positive",
              3: "the profile's engine or device is not available here"},
}
WRITES = {
    "train": "nothing but the engine's compile caches: the report on stdout (--json: one object, "
             "the progress on stderr)",
}


def register(sub) -> None:
    p = sub.add_parser("train", help="train on a real or synthetic data set and report accuracy",
                       description="Train the model with SGD on a bundled data set and report "
                                   "the loss per epoch and the held-out accuracy.")
    add_profile_args(p)
    p.add_argument("--data", choices=("digits", "synthetic"), default="digits",
                   help="digits: scikit-learn's 8x8 digits, bundled, each image 8 rows of 8 "
                        "features; synthetic: label = the channel with the largest sum "
                        "(default %(default)s)")
    for key, meta, what in (("epochs", "N", "passes over the training set"),
                            ("batch", "B", "sequences per SGD step"),
                            ("lr", "RATE", "the SGD learning rate"),
                            ("hidden", "H", "hidden width")):
        per_data = ", ".join(f"{v[key]} for {k}" for k, v in TRAIN_DEFAULTS.items())
        scales = ", ".join(f"{n} {cells.get(n).lr_scale:g}" for n in cells.names()
                           if cells.get(n).lr_scale != 1)
        scaled = f", times the cell's lr_scale: {scales}" if key == "lr" else ""
        p.add_argument(f"--{key}", type=float if key == "lr" else int, default=None,
                       metavar=meta, help=f"{what} (default {per_data}{scaled})")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the initial weights and the data split (default %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object of the results on stdout (the progress goes to "
                        "stderr)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    import numpy as np

    from .. import data as datalib
    from ..errors import CheckFailed
    from ..rnn import RNN
    config = load_config(args)
    defaults = TRAIN_DEFAULTS[args.data]
    # a cell's ``lr_scale``: from the seed's ``randn * 0.01`` weights every gate starts near 0.5,
    # which halves the signal through each step, so gated cells need a larger step to leave the
    # start within 30 epochs (GRU 2.5, LSTM 5; the accuracies at both rates: docs/performance.md)
    scale = float(getattr(cells.get(config.cell), "lr_scale", None) or 1.0)
    defaults = {**defaults, "lr": defaults["lr"] * scale}
    pick = {k: getattr(args, k) if getattr(args, k) is not None else v
            for k, v in defaults.items()}
    epochs, batch, lr, hidden = pick["epochs"], pick["batch"], pick["lr"], pick["hidden"]
    if epochs < 1 or batch < 1 or hidden < 1 or not lr > 0:
        raise ConfigError("--epochs, --batch, --hidden and --lr must be positive")
    dataset = datalib.load(args.data, dtype=config.floatX, seed=args.seed)
    net = RNN(dataset.n_in, hidden, dataset.n_classes, flags=args.flags, rc=args.rc,
              seed=args.seed)
    print(f"training {args.data}: {len(dataset.X_train)} train / {len(dataset.X_test)} test, "
          f"engine={config.engine} cell={config.cell} floatX={config.floatX} "
          f"device={net.device} H={hidden} "
          f"epochs={epochs} batch={batch} lr={lr}", file=sys.stderr if args.json else sys.stdout)

    def report(epoch, loss):
        print(f"epoch {epoch + 1:3d}  loss {loss:.4f}",
              file=sys.stderr if args.json else sys.stdout)

    history = net.fit(dataset.X_train, dataset.y_train, epochs=epochs, batch_size=batch, lr=lr,
                      seed=args.seed, progress=sys.stderr.isatty(), on_epoch=report)
    accuracy = net.accuracy(dataset.X_test, dataset.y_test)
    if not np.isfinite(history[-1]):
        raise CheckFailed(f"training diverged: final loss {history[-1]}")
    summary = {"data": args.data, "engine": config.engine, "cell": config.cell,
               "floatX": config.floatX,
               "device_actual": net.device, "epochs": epochs, "batch": batch, "lr": lr,
               "hidden": hidden, "losses": history, "final_loss": history[-1],
               "test_accuracy": accuracy}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"test accuracy {accuracy:.4f} ({len(dataset.X_test)} held-out sequences)")
    return 0
