"""The xmem-traj command line: synth, train, eval, predict, viz."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from . import commands, interrupts
from .config import SegmentationConfig
from .errors import UserError
from .interrupts import Interrupted
from .options import add_config_arguments

DESCRIPTION = """\
Camera-based trajectory prediction with XMem memory features on nuScenes.

  xmem-traj synth --out DIR          write a synthetic nuScenes the devkit loads unmodified
  xmem-traj train                    the main job (synthetic data and random-init XMem by default)
  xmem-traj prepare                  its prepare stage alone: data, XMem features, rasters → cache
  xmem-traj train-xmem --out F.pth   train XMem's segmentation on agent clips (for --xmem-weights)
  xmem-traj eval --run RUN           the run's methods vs ConstantVelocityHeading vs PhysicsOracle
  xmem-traj compare --run A --against B   a method of two runs on the same targets, paired
  xmem-traj predict --run RUN        devkit Prediction JSON for compute_metrics
  xmem-traj viz --run RUN            BEV and camera pictures of predictions and XMem masks

A mistake in what you give (a path, a value, a file) prints one line and exits with status 2;
--debug (or XMEM_TRAJ_DEBUG=1) shows the traceback.
"""
DEBUG_ENV = "XMEM_TRAJ_DEBUG"
#: Failures of the disk, not of the code: one line, not a traceback.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def _synth_parser(sub) -> None:
    s = sub.add_parser(
        "synth",
        help="write a synthetic nuScenes dataset",
        description="Write a synthetic dataset in the exact nuScenes format.",
    )
    s.add_argument("--out", required=True, help="output folder (the dataroot)")
    s.add_argument(
        "--scenes",
        type=int,
        default=10,
        help="scenes; <= 10 writes v1.0-mini with "
        "the mini split's scene names, more writes v1.0-trainval, a fifth each for "
        "val and train_val (default: 10)",
    )
    s.add_argument(
        "--splits",
        type=int,
        nargs=3,
        metavar=("TRAIN", "TRAIN_VAL", "VAL"),
        help="v1.0-trainval with these scene counts of the challenge's splits instead",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes rendering scenes (0: one per CPU core; the bytes do not depend on it)",
    )
    s.add_argument("--seed", type=int, default=0, help="same seed → same bytes (default: 0)")
    s.add_argument("--cameras", nargs="+", help="camera channels (default: all six)")
    s.add_argument(
        "--sweeps", action="store_true", help="also write ~12 Hz sweeps between key frames"
    )
    s.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    s.add_argument("--height", type=int, default=360, help="image height (default: 360)")
    s.add_argument(
        "--target-stride",
        type=int,
        default=2,
        help="prediction_scenes.json lists every n-th sample of a target (default: 2)",
    )
    s.add_argument(
        "--samples",
        type=int,
        default=40,
        help="key frames per scene, 2 Hz (default: 40, nuScenes' 20 s)",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that is not empty (its files are overwritten)",
    )
    s.set_defaults(func=commands.synth_command)


def _run_parsers(sub) -> None:
    """eval, predict, viz and compare: a run and what may be overridden for it."""
    specs = (
        ("eval", commands.eval_command, "metrics table of a run against the devkit baselines"),
        ("predict", commands.predict_command, "devkit Prediction JSON of a run's model"),
        (
            "viz",
            commands.viz_command,
            "pictures of a run's predictions, and of XMem's mask of the agent on the view its "
            "features read (with its IoU against the agent's box)",
        ),
    )
    for name, func, help_ in specs:
        e = sub.add_parser(
            name,
            help=help_,
            description=help_ + ". The options below "
            "override the run's config (where its data and caches are now, "
            "what scoring runs on); everything else is the run's.",
        )
        e.add_argument("--run", required=True, help="run directory (holds config.json)")
        if name == "eval":
            e.add_argument(
                "--json",
                help="write the table here (default: RUN/eval-<time>.json, "
                "beside the training's eval.json)",
            )
            e.add_argument("--overwrite", action="store_true", help="write RUN/eval.json instead")
        else:
            e.add_argument("--out", help="output path (default: inside the run directory)")
            e.add_argument("--method", help="which trained method (default: the run's main model)")
            e.add_argument(
                "--seed-index",
                type=int,
                default=0,
                help="which of the method's models (0: the first seed's; eval "
                "reports the mean over all of them) (default: 0)",
            )
        if name == "viz":
            e.add_argument("--count", type=int, default=6, help="examples to draw (default: 6)")
        add_config_arguments(e, only=commands.RUN_OVERRIDES, config_file=False)
        e.set_defaults(func=func)
    c = sub.add_parser(
        "compare",
        help="two runs' models on the same targets, paired",
        description="Paired comparison of a method of RUN against a method of "
        "AGAINST on the val targets both evaluate (e.g. a lever: "
        "--frames sweeps vs key frames): each side's mean over its "
        "seeds and the relative gain (B − A) / B with a 95 % "
        "interval (bootstrap resampling scenes and training seeds), per subset.",
    )
    c.add_argument("--run", required=True, help="run directory A")
    c.add_argument("--against", required=True, help="run directory B")
    c.add_argument("--method", help="A's method (default: its main model)")
    c.add_argument(
        "--against-method", help="B's method (default: the same as --method, else B's main model)"
    )
    c.add_argument("--json", help="also write the comparison here")
    add_config_arguments(c, only=commands.RUN_OVERRIDES, config_file=False)
    c.set_defaults(func=commands.compare_command)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xmem-traj",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    p.add_argument("--debug", action="store_true", help="show tracebacks of input errors too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _synth_parser(sub)
    extra = commands.help_extra()
    t = sub.add_parser(
        "train",
        help="train and evaluate (the main job)",
        description="Prepare the data and inputs, train the XMem trajectory "
        "predictor and the other methods of --methods, then "
        "evaluate against the devkit baselines.",
    )
    t.add_argument(
        "--resume", help="continue the run in this run directory from its last checkpoints"
    )
    add_config_arguments(t, help_extra=extra)
    t.set_defaults(func=commands.train_command)
    r = sub.add_parser(
        "prepare",
        help="index, rasterise and extract into the cache",
        description="The main job's prepare stage alone: generate the default "
        "data if needed, index the train and val targets and build "
        "every input the methods read (XMem features on the run's "
        "device, map rasters) into the cache, which `train` then "
        "reads. Takes train's options.",
    )
    add_config_arguments(r, help_extra=extra)
    r.set_defaults(func=commands.prepare_command)
    x = sub.add_parser(
        "train-xmem",
        help="train XMem's segmentation on agent-view clips",
        description="Train XMem's own segmentation (the reference's training "
        "pass and losses) on agent-view clips of the data, with the "
        "annotations' projected box hulls as masks, from "
        "--xmem-weights or the random init; writes a state dict "
        "that --xmem-weights loads.",
    )
    add_config_arguments(x, groups=("data", "world", "xmem", "run"), help_extra=extra)
    add_config_arguments(x, only=("seed",), config_file=False)
    _segmentation_arguments(x)
    x.set_defaults(func=commands.train_xmem_command)
    _run_parsers(sub)
    return p


def _segmentation_arguments(parser: argparse.ArgumentParser) -> None:
    """train-xmem's own options (SegmentationConfig), one flag per field."""
    from dataclasses import fields

    group = parser.add_argument_group("train-xmem options")
    for f in fields(SegmentationConfig):
        kind = {"int": int, "float": float, "str": str}[str(f.type)]
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=kind,
            default=argparse.SUPPRESS,
            help=f"{f.metadata['help']} (default: {f.default!r})",
        )


def main(argv: list[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose and args.command not in (None, "synth"):
        import lightning.pytorch  # noqa: F401  (it sets its own INFO level on import)

        for name in ("lightning.pytorch", "lightning.fabric"):  # banners and tips are noise here
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    previous = interrupts.install()
    try:
        _run(args)
    finally:
        interrupts.restore(previous)


def _run(args: argparse.Namespace) -> None:
    """The command, with its failures as one line and an exit status: 2 for what the user
    gave (and a full or read-only disk), 128 + n for signal n."""
    from .xmem.checkpoint import CheckpointError

    debug = args.debug or os.environ.get(DEBUG_ENV)
    try:
        args.func(args)
    except Interrupted as stop:
        print(f"xmem-traj {args.command}: {stop.message()}", file=sys.stderr)
        sys.exit(stop.exit_status)
    except (UserError, CheckpointError) as err:
        if debug:
            raise
        print(f"xmem-traj {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if debug or err.errno not in DISK_ERRORS:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(
            f"xmem-traj {args.command}: error: {os.strerror(err.errno).lower()}{where}; free "
            "space or choose another --run-dir / --cache-dir, then rerun (or --resume)",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
