"""What each xmem-traj command does, given its parsed arguments (cli.py builds the parser and
handles errors)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from .atomic import write_file_atomically
from .config import SegmentationConfig
from .errors import ConfigError, UserError
from .options import build_config


def synth_command(args: argparse.Namespace) -> None:
    from .synth import CAMERAS, generate

    cams = tuple(args.cameras) if args.cameras else CAMERAS
    scenes = tuple(args.splits) if args.splits else args.scenes
    check_synth_arguments(args)
    root = generate(
        args.out,
        scenes=scenes,
        seed=args.seed,
        cameras=cams,
        sweeps=args.sweeps,
        width=args.width,
        height=args.height,
        target_stride=args.target_stride,
        workers=args.workers,
        progress=print,
        samples=args.samples,
    )
    print(f"wrote {root}")


def check_synth_arguments(args: argparse.Namespace) -> None:
    """One line for what `synth` cannot write, before it writes anything."""
    if args.width < 16 or args.height < 16:
        raise ConfigError(
            f"--width {args.width} --height {args.height}: images need at least 16 pixels a side"
        )
    counts = args.splits or [args.scenes]
    if min(counts) < 0 or sum(counts) < 1:
        flag = "--splits" if args.splits else "--scenes"
        raise ConfigError(
            f"{flag} {' '.join(map(str, counts))}: write at least one scene "
            "(counts are not negative)"
        )
    if args.target_stride < 1 or args.workers < 0 or args.samples < 14:
        raise ConfigError(
            "--target-stride must be >= 1, --workers >= 0 and --samples >= 14 "
            "(a 6 s future and a past)"
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give the folder the dataset goes to")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ConfigError(
            f"--out {out} is not empty (a dataroot's tables and maps would be "
            "overwritten); choose an empty folder, or pass --force"
        )
    check_writable_dir(out, "--out")


def check_writable_dir(path: str | Path, flag: str) -> None:
    """ConfigError unless `path` is a writable folder or can be made one."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file, not a folder")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: {existing} is not a writable folder")


def check_output_file(path: str | None, flag: str) -> None:
    """ConfigError unless `path` (if given) can be written: its folder exists, it is no
    folder."""
    if not path:
        return
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{flag} {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise ConfigError(f"{flag} {out}: folder {out.parent} does not exist")


def check_run_dirs(cfg) -> None:
    """The run and cache folders a command writes to, before it starts."""
    check_writable_dir(cfg.data.resolved_cache_dir(), "--cache-dir")
    check_writable_dir(cfg.run.run_dir, "--run-dir")


#: Options that eval, predict, viz and compare may override in a run's config: where the data
#: and caches are now, what the scoring runs on, and how modes are decoded (DECODING_OPTIONS).
#: Nothing that changes what was trained.
RUN_OVERRIDES = (
    "dataroot",
    "cache_dir",
    "accelerator",
    "num_workers",
    "prepare_workers",
    "progress",
    "ranking",
    "road_snap",
)
NOT_CONFIG = {
    "run",
    "json",
    "out",
    "count",
    "method",
    "overwrite",
    "resume",
    "func",
    "command",
    "verbose",
    "debug",
    "seed_index",
    "force",
    "against",
    "against_method",
}


def overrides(args: argparse.Namespace) -> dict:
    """Options given on the command line (config fields and --config), nothing else."""
    return {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}


def report(line: str) -> None:
    print(line, flush=True)


def train_command(args: argparse.Namespace) -> None:
    from .runs import load_run, process_rank
    from .train import run_training

    if args.resume:
        layout, cfg = load_run(args.resume, overrides(args), resume=True)
        check_run_dirs(cfg)
        run = run_training(cfg, resume_dir=str(layout.root), report=report)
    else:
        cfg = build_config(overrides(args))
        check_run_dirs(cfg)
        run = run_training(cfg, report=report)
    if process_rank() == 0:
        print(
            f"\nrun directory: {run}  (config.json, versions.json, checkpoints/, logs/, eval.json)"
        )


def prepare_command(args: argparse.Namespace) -> None:
    from .traj.prepare import StageClock, prepare

    clock = StageClock()
    cfg = build_config(overrides(args))
    check_writable_dir(cfg.data.resolved_cache_dir(), "--cache-dir")
    data = prepare(cfg, clock=clock, report=report)
    for split in (data.train, data.val):
        slots = ", ".join(f"{k} {tuple(v)}" for k, v in split.shapes.items())
        print(f"{split.split}: {len(split)} targets; per target: {slots}")
    print(
        f"prepared on {data.context.device} into {data.cfg.data.cache_dir}; stage times: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in clock.laps.items())
    )


def run_data(args: argparse.Namespace):
    """The run's layout, resolved config and prepared val split."""
    from .runs import load_run
    from .traj.prepare import prepare

    layout, cfg = load_run(args.run, overrides(args))
    check_writable_dir(cfg.data.resolved_cache_dir(), "--cache-dir")
    data = prepare(cfg, roles=("val",), report=report)
    return layout, data


def eval_command(args: argparse.Namespace) -> None:
    from .eval.report import format_report
    from .eval.scoring import evaluate_run

    check_output_file(args.json, "--json")
    layout, data = run_data(args)
    summary = evaluate_run(layout, data)
    print(format_report(summary))
    if args.json:
        out = Path(args.json)
    elif args.overwrite:
        out = layout.eval
    else:  # never over the training's own eval.json
        out = layout.root / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_file_atomically(out, lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
    print(f"wrote {out}")


def train_xmem_command(args: argparse.Namespace) -> None:
    from dataclasses import fields

    from .train_xmem import train_segmentation

    own = {f.name for f in fields(SegmentationConfig)}
    options = {**overrides(args), "out": vars(args).get("out", "")}
    seg = SegmentationConfig(**{k: v for k, v in options.items() if k in own}).validate()
    cfg = build_config({k: v for k, v in options.items() if k not in own})
    check_writable_dir(cfg.data.resolved_cache_dir(), "--cache-dir")
    s = train_segmentation(cfg, seg, report=report)
    iou = s["held_out_iou"]
    first, last = s["loss_first_tenth"], s["loss_last_tenth"]
    print(
        f"trained {s['steps']} steps on {s['train_clips']} clips of {s['train_split']} in "
        f"{s['seconds']:.0f} s; loss (ce, dice) {first[0]:.3f}, {first[1]:.3f} (first tenth) "
        f"→ {last[0]:.3f}, {last[1]:.3f} (last tenth)"
    )
    for kind, before in iou["before"].items():
        print(
            f"{kind} mask IoU on {s['held_out_clips'][kind]} held-out clips of "
            f"{s['held_out_split']}: {before:.3f} before → {iou['after'][kind]:.3f} after"
        )
    print(
        f"wrote {seg.out} (and {seg.out}.json); use it with: xmem-traj train --xmem-weights "
        f"{seg.out}"
    )


def compare_command(args: argparse.Namespace) -> None:
    from .eval.compare import compare_runs, format_comparison, score_run
    from .runs import load_run
    from .traj.prepare import prepare

    check_output_file(args.json, "--json")
    scores = []
    for run, method in (
        (args.run, args.method),
        (args.against, args.against_method or args.method),
    ):
        layout, cfg = load_run(run, overrides(args))
        data = prepare(cfg, roles=("val",), report=report)
        scores.append(score_run(layout, data, method_of(method, data)))
    result = compare_runs(*scores)
    print(format_comparison(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")


def method_of(requested: str | None, data) -> str:
    """The run's method named by --method (default: its main model)."""
    method = requested or data.methods[0]
    if method not in data.methods:
        raise UserError(f"--method {method}: the run trained {', '.join(data.methods)}")
    return method


def predict_command(args: argparse.Namespace) -> None:
    from .eval.scoring import load_predictor, prediction_json, road_snap, val_tensors
    from .runs import require_checkpoint
    from .traj.datamodules import model_spec

    check_output_file(args.out, "--out")
    layout, data = run_data(args)
    method = method_of(args.method, data)
    checkpoint = require_checkpoint(layout, method, args.seed_index)
    expected = model_spec(data, method, "val").to_dict()
    preds = prediction_json(
        load_predictor(checkpoint, data.context.backbone, expected=expected),
        val_tensors(data, method),
        data.val.records,
        snap=road_snap(data),
    )
    name = f"predictions_{data.val.split}_{method}_seed{args.seed_index}.json"
    out = Path(args.out or layout.root / name)
    write_file_atomically(out, lambda tmp: tmp.write_text(json.dumps(preds)))
    print(f"wrote {len(preds)} predictions to {out}")


def viz_command(args: argparse.Namespace) -> None:
    import numpy as np

    from .eval.viz import render_examples
    from .runs import require_checkpoint

    if args.count < 1:
        raise ConfigError(f"--count {args.count}: draw at least one example")
    layout, data = run_data(args)
    method = method_of(args.method, data)
    checkpoint = require_checkpoint(layout, method, args.seed_index)
    out_dir = Path(args.out or layout.root / "viz" / f"{method}_seed{args.seed_index}")
    drawn = render_examples(data, method, checkpoint, count=args.count, out_dir=out_dir)
    print("\n".join(str(d.path) for d in drawn))
    ious = [v for d in drawn for v in d.propagated_iou]
    if ious:
        print(
            f"XMem's propagated mask of the agent vs its box hull: IoU mean {np.mean(ious):.3f}, "
            f"median {np.median(ious):.3f} over {len(ious)} frames after the first mask"
        )


def help_extra() -> dict[str, str]:
    """The registries' choices, for the help of the options that name them."""
    from .methods import methods_help
    from .xmem.features import FEATURE_KINDS, FEATURE_SETS

    kinds = "; ".join(f"{k}: {v.help}" for k, v in FEATURE_KINDS.items())
    sets = ", ".join(f"{k} = {'+'.join(v)}" for k, v in FEATURE_SETS.items() if k != "all")
    return {"methods": f" ({methods_help()})", "features": f" (sets: {sets}, all; kinds: {kinds})"}
