"""The xmem-traj command line: synth, train, eval, predict, viz."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .config import SegmentationConfig, add_config_arguments, build_config
from .errors import UserError

DESCRIPTION = """\
Camera-based trajectory prediction with XMem memory features on nuScenes.

  xmem-traj synth --out DIR          write a synthetic nuScenes the devkit loads unmodified
  xmem-traj train                    the main job (synthetic data and random-init XMem by default)
  xmem-traj train-xmem --out F.pth   train XMem's segmentation on agent clips (for --xmem-weights)
  xmem-traj eval --run RUN           the run's methods vs ConstantVelocityHeading vs PhysicsOracle
  xmem-traj compare --run A --against B   a method of two runs on the same targets, paired
  xmem-traj predict --run RUN        devkit Prediction JSON for compute_metrics
  xmem-traj viz --run RUN            BEV and camera pictures of predictions and XMem masks

A mistake in what you give (a path, a value, a file) prints one line and exits with status 2;
--debug (or XMEM_TRAJ_DEBUG=1) shows the traceback.
"""
DEBUG_ENV = "XMEM_TRAJ_DEBUG"


def _synth(args: argparse.Namespace) -> None:
    from .synth import CAMERAS, generate
    cams = tuple(args.cameras) if args.cameras else CAMERAS
    scenes = tuple(args.splits) if args.splits else args.scenes
    root = generate(args.out, scenes=scenes, seed=args.seed, cameras=cams, sweeps=args.sweeps,
                    width=args.width, height=args.height, target_stride=args.target_stride,
                    workers=args.workers, progress=print, samples=args.samples)
    print(f"wrote {root}")


def _overrides(args: argparse.Namespace) -> dict:
    """Options given on the command line (config fields and --config), nothing else."""
    skip = {"run", "json", "out", "count", "method", "overwrite", "resume", "func", "command",
            "verbose", "debug"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def _report(line: str) -> None:
    print(line, flush=True)


def _train(args: argparse.Namespace) -> None:
    from .runs import load_run, process_rank
    from .train import run_training
    if args.resume:
        layout, cfg = load_run(args.resume, _overrides(args))
        run = run_training(cfg, resume_dir=str(layout.root), report=_report)
    else:
        run = run_training(build_config(_overrides(args)), report=_report)
    if process_rank() == 0:
        print(f"\nrun directory: {run}  (config.json, versions.json, checkpoints/, logs/, eval.json)")


def _run_data(args: argparse.Namespace):
    """The run's layout, config and data module (val targets)."""
    from .runs import load_run
    from .traj.datamodules import TrajDataModule
    layout, cfg = load_run(args.run, _overrides(args))
    return layout, cfg, TrajDataModule.from_config(cfg)


def _eval(args: argparse.Namespace) -> None:
    from .eval.evaluate import evaluate_run, format_report
    layout, cfg, dm = _run_data(args)
    summary = evaluate_run(layout, dm, dm.methods)
    print(format_report(summary))
    if args.json:
        out = Path(args.json)
    elif args.overwrite:
        out = layout.eval
    else:  # never over the training's own eval.json
        out = layout.root / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}")


def _train_xmem(args: argparse.Namespace) -> None:
    from dataclasses import fields
    from .config import SegmentationConfig
    from .traj.segmentation import train_segmentation
    own = {f.name for f in fields(SegmentationConfig)}
    options = {**_overrides(args), "out": vars(args).get("out", "")}
    seg = SegmentationConfig(**{k: v for k, v in options.items() if k in own}).validate()
    cfg = build_config({k: v for k, v in options.items() if k not in own})
    s = train_segmentation(cfg, seg, report=_report)
    iou = s["held_out_iou"]
    print(f"trained {s['steps']} steps on {s['train_clips']} clips of {s['train_split']} in "
          f"{s['seconds']:.0f} s; loss (ce, dice) {s['loss_first_tenth'][0]:.3f}, "
          f"{s['loss_first_tenth'][1]:.3f} (first tenth) → {s['loss_last_tenth'][0]:.3f}, "
          f"{s['loss_last_tenth'][1]:.3f} (last tenth)")
    print(f"mask IoU on {s['held_out_clips']} held-out clips of {s['held_out_split']}: "
          f"{iou['before']:.3f} before → {iou['after']:.3f} after")
    print(f"wrote {seg.out} (and {seg.out}.json); use it with: xmem-traj train --xmem-weights {seg.out}")


def _compare(args: argparse.Namespace) -> None:
    from .eval.compare import compare_runs, format_comparison, score_run
    from .runs import load_run
    from .traj.datamodules import TrajDataModule
    scores = []
    for run, method in ((args.run, args.method), (args.against, args.against_method or args.method)):
        layout, cfg = load_run(run)
        dm = TrajDataModule.from_config(cfg)
        scores.append(score_run(layout, dm, _method(method, dm)))
    result = compare_runs(*scores)
    print(format_comparison(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")


def _method(requested: str | None, dm) -> str:
    """The run's method named by --method (default: its main model)."""
    method = requested or dm.methods[0]
    if method not in dm.methods:
        raise UserError(f"--method {method}: the run trained {', '.join(dm.methods)}")
    return method


def _predict(args: argparse.Namespace) -> None:
    from .eval.evaluate import load_predictor, prediction_json
    from .runs import require_checkpoint
    from .methods import METHODS
    layout, cfg, dm = _run_data(args)
    method = _method(args.method, dm)
    checkpoint = require_checkpoint(layout, method, args.seed_index)
    preds = prediction_json(load_predictor(checkpoint, dm.finetuned_backbone),
                            dm.targets("val", METHODS[method].inputs), dm.val_set.records)
    out = Path(args.out or layout.root / f"predictions_{dm.val_set.split}.json")
    out.write_text(json.dumps(preds))
    print(f"wrote {len(preds)} predictions to {out}")


def _viz(args: argparse.Namespace) -> None:
    from .eval.viz import render_examples
    from .runs import require_checkpoint
    layout, cfg, dm = _run_data(args)
    method = _method(args.method, dm)
    checkpoint = require_checkpoint(layout, method, args.seed_index)
    paths = render_examples(dm, method, checkpoint, count=args.count,
                            out_dir=Path(args.out or layout.root / "viz"))
    print("\n".join(str(p) for p in paths))


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xmem-traj", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    p.add_argument("--debug", action="store_true", help="show tracebacks of input errors too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("synth", help="write a synthetic nuScenes dataset",
                       description="Write a synthetic dataset in the exact nuScenes format.")
    s.add_argument("--out", required=True, help="output folder (the dataroot)")
    s.add_argument("--scenes", type=int, default=10, help="scenes; <= 10 writes v1.0-mini with the "
                   "mini split's scene names, more writes v1.0-trainval, a fifth each for val and "
                   "train_val (default: 10)")
    s.add_argument("--splits", type=int, nargs=3, metavar=("TRAIN", "TRAIN_VAL", "VAL"),
                   help="v1.0-trainval with these scene counts of the challenge's splits instead")
    s.add_argument("--workers", type=int, default=0, help="processes rendering scenes (0: one per "
                   "CPU core; the bytes do not depend on it)")
    s.add_argument("--seed", type=int, default=0, help="same seed → same bytes (default: 0)")
    s.add_argument("--cameras", nargs="+", help="camera channels (default: all six)")
    s.add_argument("--sweeps", action="store_true", help="also write ~12 Hz sweeps between key frames")
    s.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    s.add_argument("--height", type=int, default=360, help="image height (default: 360)")
    s.add_argument("--target-stride", type=int, default=2,
                   help="prediction_scenes.json lists every n-th sample of a target (default: 2)")
    s.add_argument("--samples", type=int, default=40,
                   help="key frames per scene, 2 Hz (default: 40, nuScenes' 20 s)")
    s.set_defaults(func=_synth)

    t = sub.add_parser("train", help="train and evaluate (the main job)",
                       description="Train the XMem trajectory predictor and the other methods of "
                                   "--methods, then evaluate against the devkit baselines.")
    t.add_argument("--resume", help="continue the run in this run directory from its last checkpoints")
    add_config_arguments(t)
    t.set_defaults(func=_train)

    x = sub.add_parser("train-xmem", help="train XMem's segmentation on agent-view clips",
                       description="Train XMem's own segmentation (the reference's training pass "
                                   "and losses) on agent-view clips of the data, with the "
                                   "annotations' projected box hulls as masks, from --xmem-weights "
                                   "or the random init; writes a state dict that --xmem-weights "
                                   "loads. Data, XMem, precision and seed options are train's.")
    add_config_arguments(x)
    add_config_arguments(x, SegmentationConfig, config_file=False)
    x.set_defaults(func=_train_xmem)

    c = sub.add_parser("compare", help="two runs' models on the same targets, paired",
                       description="Paired comparison of a method of RUN against a method of "
                                   "AGAINST on the val targets both evaluate (e.g. a lever: "
                                   "--frames sweeps vs key frames): each side's mean over its "
                                   "seeds and the relative gain (B − A) / B with a 95 % interval "
                                   "(cluster bootstrap over agents), per subset.")
    c.add_argument("--run", required=True, help="run directory A")
    c.add_argument("--against", required=True, help="run directory B")
    c.add_argument("--method", help="A's method (default: its main model)")
    c.add_argument("--against-method", help="B's method (default: the same as --method, else B's main model)")
    c.add_argument("--json", help="also write the comparison here")
    c.set_defaults(func=_compare)

    for name, func, help_ in (("eval", _eval, "metrics table of a run"),
                              ("predict", _predict, "devkit Prediction JSON of a run"),
                              ("viz", _viz, "pictures of a run's predictions")):
        e = sub.add_parser(name, help=help_, description=help_ + "; other options override the run's config")
        e.add_argument("--run", required=True, help="run directory (holds config.json)")
        if name == "eval":
            e.add_argument("--json", help="write the table here (default: RUN/eval-<time>.json, "
                                          "beside the training's eval.json)")
            e.add_argument("--overwrite", action="store_true", help="write RUN/eval.json instead")
        if name in ("predict", "viz"):
            e.add_argument("--out", help="output path (default: inside the run directory)")
            e.add_argument("--method", help="which trained method (default: the run's main model)")
            e.add_argument("--seed-index", type=int, default=0,
                           help="which of the method's heads (0: the first seed's; eval reports "
                                "the mean over all of them) (default: 0)")
        if name == "viz":
            e.add_argument("--count", type=int, default=6, help="examples to draw (default: 6)")
        add_config_arguments(e)
        e.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> None:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose and args.command in ("train", "eval", "predict", "viz", "compare", "train-xmem"):
        import lightning.pytorch  # noqa: F401  (it sets its own INFO level on import)
        for name in ("lightning.pytorch", "lightning.fabric"):  # banners and tips are noise here
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    from .xmem.checkpoint import CheckpointError
    try:
        args.func(args)
    except (UserError, CheckpointError) as err:
        if args.debug or os.environ.get(DEBUG_ENV):
            raise
        print(f"xmem-traj {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
