"""What a run's first-ranked mode does, per subset of the val targets: its final displacement
against the best mode's, the mode nearest the constant-velocity roll-out and
ConstantVelocityHeading itself; how often the first mode is that constant-course mode, and its
error where it is not; its mean error along the heading (negative: it stops short of the
truth) and the share of targets where it stops more than 2 m short or runs more than 2 m long —
under each ranking (traj/ranking.py). The modes are the network's, in its agent frame, before
the road snap that eval and predict apply (eval/road_snap.py): the snap moves no first mode's
choice, only points off the road, so these numbers can differ from eval's by its effect.

    python bench/first_mode.py --run RUN [--method xmem] [--seed-index 0]
        [--subsets no_change,with_past] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse

import torch

from xmem_traj.eval.scoring import load_predictor, val_tensors
from xmem_traj.runs import load_run, require_checkpoint
from xmem_traj.traj.datamodules import model_spec
from xmem_traj.traj.head import constant_velocity, kinematics
from xmem_traj.traj.metrics import last_valid_step
from xmem_traj.traj.prepare import prepare
from xmem_traj.traj.ranking import RANKINGS, rank_modes


def final_points(traj: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """traj (N, K, F, 2), last (N,) index of each target's last valid step → (N, K, 2)."""
    return traj[torch.arange(len(traj)), :, last]


def first_mode_rows(run: str, method: str, seed_index: int, subsets, cache_dir) -> list[str]:
    layout, cfg = load_run(run, {"cache_dir": cache_dir} if cache_dir else {})
    data = prepare(cfg, roles=("val",), report=lambda line: None)
    tensors = val_tensors(data, method)
    expected = model_spec(data, method, "val").to_dict()
    checkpoint = require_checkpoint(layout, method, seed_index)
    model = load_predictor(checkpoint, data.context.backbone, expected=expected)
    batch = tensors.batch(list(range(len(tensors))))
    with torch.no_grad():
        traj, logits = model(batch)
    last = last_valid_step(batch.future_valid)
    truth = batch.traj[torch.arange(len(last)), last]  # (N, 2), agent frame
    ends = final_points(traj, last)
    fde = (ends - truth[:, None]).norm(dim=-1)  # (N, K)
    rollout = constant_velocity(kinematics(batch.past, batch.past_valid), traj.shape[2])
    cv = final_points(rollout[:, None], last)[:, 0]  # ConstantVelocityHeading's end
    constant_course = (ends - cv[:, None]).norm(dim=-1).argmin(-1)
    rows, index = [], torch.arange(len(last))
    masks = data.subsets()
    unknown = [name for name in subsets if name not in masks]
    if unknown:
        raise SystemExit(f"--subsets: {', '.join(unknown)} not among {', '.join(masks)}")
    for ranking in RANKINGS:
        first = rank_modes(traj, logits.softmax(-1), ranking).argmax(-1)
        along = ends[index, first, 1] - truth[:, 1]  # +y is the heading
        for name in subsets:
            m = torch.as_tensor(masks[name][0])
            rows.append(
                f"| {ranking} | {name} ({int(m.sum())}) | {fde[index, first][m].mean():.2f} "
                f"| {fde.min(-1).values[m].mean():.2f} "
                f"| {fde[index, constant_course][m].mean():.2f} "
                f"| {(cv - truth).norm(dim=-1)[m].mean():.2f} "
                f"| {(first == constant_course)[m].float().mean():.2f} "
                f"| {fde[index, first][m & (first != constant_course)].mean():.2f} "
                f"| {along[m].mean():+.2f} | {(along[m] < -2).float().mean():.2f} "
                f"| {(along[m] > 2).float().mean():.2f} |"
            )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--method", default="xmem", help="which trained method (default: xmem)")
    p.add_argument("--seed-index", type=int, default=0, help="which seed's model (default: 0)")
    p.add_argument("--subsets", default="no_change,with_past", help="val subsets, comma list")
    p.add_argument("--cache-dir", default="", help="where the run's caches are now")
    a = p.parse_args()
    print(
        "| ranking | subset (targets) | FDE first | FDE best | FDE constant-course mode "
        "| FDE ConstantVelocityHeading | first = constant-course | FDE first where not "
        "| along-track error | > 2 m short | > 2 m long |\n" + "|---" * 11 + "|"
    )
    subsets = [s for s in a.subsets.split(",") if s]
    for row in first_mode_rows(a.run, a.method, a.seed_index, subsets, a.cache_dir):
        print(row)


if __name__ == "__main__":
    main()
