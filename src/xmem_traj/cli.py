"""The xmem-traj command line: synth, train, eval, predict, viz."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from xmem_traj.config import TrainConfig, add_config_arguments, build_config

DESCRIPTION = """\
Camera-based trajectory prediction with XMem memory features on nuScenes.

  xmem-traj synth --out DIR          write a synthetic nuScenes the devkit loads unmodified
  xmem-traj train                    the main job (synthetic data and random-init XMem by default)
  xmem-traj eval --run RUN           model vs ConstantVelocityHeading vs PhysicsOracle vs history-only
  xmem-traj predict --run RUN        devkit Prediction JSON for compute_metrics
  xmem-traj viz --run RUN            BEV and camera pictures of predictions and XMem masks
"""


def _synth(args: argparse.Namespace) -> None:
    from xmem_traj.synth import CAMERAS, generate
    cams = tuple(args.cameras) if args.cameras else CAMERAS
    root = generate(args.out, scenes=args.scenes, seed=args.seed, cameras=cams, sweeps=args.sweeps,
                    width=args.width, height=args.height, target_stride=args.target_stride,
                    progress=print)
    print(f"wrote {root}")


def _load_run(args: argparse.Namespace) -> tuple[Path, TrainConfig]:
    run = Path(args.run)
    if not (run / "config.json").exists():
        raise SystemExit(f"{run} is not a run directory (no config.json)")
    base = json.loads((run / "config.json").read_text())
    return run, build_config(args, base=base)


def _report(line: str) -> None:
    print(line, flush=True)


def _train(args: argparse.Namespace) -> None:
    from xmem_traj.traj.train import run_training
    if args.resume:
        run, cfg = _load_run(argparse.Namespace(**{**vars(args), "run": args.resume}))
        run = run_training(cfg, resume_dir=str(run), report=_report)
    else:
        cfg = build_config(args)
        run = run_training(cfg, report=_report)
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    print(f"\nrun directory: {run}  (config.json, versions.json, checkpoints/, logs/, eval.json)")


def _eval(args: argparse.Namespace) -> None:
    from nuscenes.prediction import PredictHelper
    from xmem_traj.traj.evaluate import evaluate_run, format_table
    from xmem_traj.traj.data import make_datamodule
    run, cfg = _load_run(args)
    nusc, dm = make_datamodule(cfg)
    summary = evaluate_run(run, dm, PredictHelper(nusc))
    print(format_table(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


def _predict(args: argparse.Namespace) -> None:
    from xmem_traj.traj.evaluate import load_module, prediction_json
    run, cfg = _load_run(args)
    from xmem_traj.traj.data import make_datamodule
    _, dm = make_datamodule(cfg)
    dm.setup("predict")
    model = load_module(run / "checkpoints" / "last.ckpt", dm.finetuned_backbone)
    preds = prediction_json(model, dm.val_data, dm.val_set.records)
    out = Path(args.out or run / f"predictions_{dm.val_set.split}.json")
    out.write_text(json.dumps(preds))
    print(f"wrote {len(preds)} predictions to {out}")


def _viz(args: argparse.Namespace) -> None:
    from xmem_traj.traj.viz import render_examples
    run, cfg = _load_run(args)
    paths = render_examples(run, cfg, count=args.count, out_dir=Path(args.out or run / "viz"))
    print("\n".join(str(p) for p in paths))


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xmem-traj", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("synth", help="write a synthetic nuScenes dataset",
                       description="Write a synthetic dataset in the exact nuScenes format.")
    s.add_argument("--out", required=True, help="output folder (the dataroot)")
    s.add_argument("--scenes", type=int, default=10, help="scenes; <= 10 writes v1.0-mini with the "
                   "mini split's scene names, more writes v1.0-trainval (default: 10)")
    s.add_argument("--seed", type=int, default=0, help="same seed → same bytes (default: 0)")
    s.add_argument("--cameras", nargs="+", help="camera channels (default: all six)")
    s.add_argument("--sweeps", action="store_true", help="also write ~12 Hz sweeps between key frames")
    s.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    s.add_argument("--height", type=int, default=360, help="image height (default: 360)")
    s.add_argument("--target-stride", type=int, default=2,
                   help="prediction_scenes.json lists every n-th sample of a target (default: 2)")
    s.set_defaults(func=_synth)

    t = sub.add_parser("train", help="train and evaluate (the main job)",
                       description="Train the XMem trajectory predictor and its history-only "
                                   "ablation, then evaluate against the devkit baselines.")
    t.add_argument("--resume", help="continue the run in this run directory from its last checkpoint")
    add_config_arguments(t)
    t.set_defaults(func=_train)

    for name, func, help_ in (("eval", _eval, "metrics table of a run"),
                              ("predict", _predict, "devkit Prediction JSON of a run"),
                              ("viz", _viz, "pictures of a run's predictions")):
        e = sub.add_parser(name, help=help_, description=help_ + "; other options override the run's config")
        e.add_argument("--run", required=True, help="run directory (holds config.json)")
        if name == "eval":
            e.add_argument("--json", help="also write the table as JSON here")
        if name in ("predict", "viz"):
            e.add_argument("--out", help="output path (default: inside the run directory)")
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
    if not args.verbose and args.command in ("train", "eval", "predict", "viz"):
        import lightning.pytorch  # noqa: F401  (it sets its own INFO level on import)
        for name in ("lightning.pytorch", "lightning.fabric"):  # banners and tips are noise here
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    args.func(args)


if __name__ == "__main__":
    main()
