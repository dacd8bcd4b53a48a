"""Nothing lost, nothing silently wrong, round two: checkpoints survive a failing disk, a
resume cannot break its run, signals end with a non-zero status, images are checked against
their tables, nothing is overwritten, and every user mistake is one line with status 2."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xmem_traj import cli
from xmem_traj.config import TrainConfig
from xmem_traj.eval.scoring import load_predictor
from xmem_traj.methods import METHODS
from xmem_traj.runs import RunLayout, adds_methods
from xmem_traj.traj.checkpoint_io import AtomicCheckpointIO

BIN = Path(sys.executable).parent
TINY = [
    "--seeds",
    "1",
    "--epochs",
    "1",
    "--hidden",
    "16",
    "--batch-size",
    "16",
    "--no-progress",
    "--methods",
    "history_only",
]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = 0
    try:
        cli.main(args)
    except SystemExit as exit_:
        code = exit_.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def trained(synth_root, tmp_path_factory) -> Path:
    """A finished 1-epoch history-only run (shared; tests copy it before changing it)."""
    tmp = tmp_path_factory.mktemp("trained")
    cli.main(
        [
            "train",
            "--dataroot",
            str(synth_root),
            "--cache-dir",
            str(tmp / "cache"),
            "--run-dir",
            str(tmp / "runs"),
            "--name",
            "r",
            *TINY,
        ]
    )
    return tmp / "runs" / "r"


def copy_run(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "runs" / run.name
    shutil.copytree(run, out)
    return out


def copy_root(synth_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(synth_root, root)
    return root


def base(root: Path, tmp_path: Path) -> list[str]:
    return [
        "--dataroot",
        str(root),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--run-dir",
        str(tmp_path / "runs"),
    ]


# ------------------------------------------------------------------ checkpoints
def test_a_checkpoint_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """A disk that fails the final rename (full, or the old cross-filesystem move) keeps the
    previous checkpoint intact and leaves no temporary file."""
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1, "w": torch.ones(1000)}, path)
    before = path.read_bytes()

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(1000)}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_full_tmpfs_keeps_the_last_checkpoint(tmp_path):
    """The real thing where the machine allows it (root, tmpfs): a 2 MB filesystem."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
        ).returncode
    ):
        pytest.skip("mounting a tmpfs needs root (the simulated failure above covers it)")
    try:
        io, path = AtomicCheckpointIO(), mnt / "last.ckpt"
        io.save_checkpoint({"w": torch.ones(200_000)}, path)  # 0.8 MB
        before = path.read_bytes()
        with pytest.raises(OSError):
            io.save_checkpoint({"w": torch.ones(400_000)}, path)  # 1.6 MB: does not fit
        assert path.read_bytes() == before and len(list(mnt.iterdir())) == 1
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ------------------------------------------------------------------ resume
def test_resume_refuses_changed_options_before_writing(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    config = (run / "config.json").read_bytes()
    for flag, value in (("--hidden", "64"), ("--epochs", "4")):
        code, _, err = run_cli(["train", "--resume", str(run), flag, value], capsys)
        assert code == 2 and one_line(err) and f"{flag} cannot change on resume" in err
        assert (run / "config.json").read_bytes() == config
    code, out, err = run_cli(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == 0, err  # the run still resumes (nothing left to train: it evaluates)
    assert (run / "config.json").read_bytes() == config


def test_resume_adds_methods_and_keeps_the_trained_ones(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    head = RunLayout(run).checkpoint("history_only", 0)
    before = head.read_bytes()
    code, _, err = run_cli(["train", "--resume", str(run), "--methods", "intent_oracle"], capsys)
    assert code == 2 and one_line(err) and "--methods cannot change on resume" in err
    more = ["--methods", "history_only,intent_oracle", "--no-progress"]
    code, _, err = run_cli(["train", "--resume", str(run), *more], capsys)
    assert code == 0, err
    assert head.read_bytes() == before  # trained already: not trained again
    assert RunLayout(run).checkpoint("intent_oracle", 0).exists()
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["methods"] == "history_only,intent_oracle"
    rows = json.loads((run / "eval.json").read_text())["metrics"]["all"]
    assert {METHODS["history_only"].label, METHODS["intent_oracle"].label} <= set(rows)


def test_a_resume_may_set_only_the_options_of_the_methods_it_adds():
    saved = TrainConfig.of(methods="history_only")
    more = saved.with_options(methods="history_only,mtp", raster_resolution=1.0, peer_epochs=3)
    for option in ("methods", "raster_resolution", "peer_epochs"):
        assert adds_methods(option, saved, more)
    assert not adds_methods("hidden", saved, more.with_options(hidden=8))  # history-only's
    assert not adds_methods("methods", saved, saved.with_options(methods="mtp"))  # drops one
    had_mtp = saved.with_options(methods="history_only,mtp")
    assert not adds_methods(
        "raster_resolution", had_mtp, more.with_options(methods="mtp,covernet,history_only")
    )


def test_a_failed_run_leaves_a_stub_its_name_reuses(synth_root, tmp_path, capsys, monkeypatch):
    from xmem_traj import train

    def broken(*a, **k):
        raise RuntimeError("a crash in training")

    monkeypatch.setattr(train, "fit", broken)
    args = ["train", *base(synth_root, tmp_path), "--name", "again", *TINY]
    with pytest.raises(RuntimeError):
        cli.main(args)
    assert RunLayout(tmp_path / "runs" / "again").is_stub()
    monkeypatch.undo()
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert RunLayout(tmp_path / "runs" / "again").checkpoint("history_only", 0).exists()


def test_resumed_attempts_that_never_logged_are_dropped(tmp_path):
    layout = RunLayout(tmp_path)
    kept = tmp_path / "logs" / "xmem-seed0-resumed1"
    empty = tmp_path / "logs" / "xmem-seed0-resumed2"
    for folder in (kept, empty):
        folder.mkdir(parents=True)
        (folder / "hparams.yaml").write_text("{}")
    (kept / "metrics.csv").write_text("epoch\n0\n")
    layout.drop_empty_logs()
    assert kept.exists() and not empty.exists()


# ------------------------------------------------------------------ signals
def test_sigterm_ends_with_a_non_zero_status_and_the_resume_command(synth_root, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [
        str(BIN / "xmem-traj"),
        "train",
        *base(synth_root, tmp_path),
        "--name",
        "term",
        "--seeds",
        "1",
        "--epochs",
        "50",
        "--hidden",
        "16",
        "--no-progress",
        "--methods",
        "history_only",
    ]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    for line in proc.stdout:
        if "Epoch 0:" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert "interrupted by SIGTERM during training history_only" in last
    assert f"--resume {tmp_path / 'runs' / 'term'}" in last


# ------------------------------------------------------------------ images and tables
def test_images_of_another_size_than_their_table(synth_root, tmp_path, capsys):
    root = copy_root(synth_root, tmp_path)
    for path in (root / "samples").rglob("*.jpg"):
        with Image.open(path) as im:
            im.resize((im.width * 2, im.height * 2)).save(path)
    code, _, err = run_cli(["train", *base(root, tmp_path), *TINY], capsys)
    assert code == 2 and one_line(err) and "the images do not belong to these tables" in err


def test_rewritten_images_change_the_cache_key(synth_root, tmp_path):
    from xmem_traj.data.agent_dataset import NuScenesAgentDataset

    root = copy_root(synth_root, tmp_path)

    def ds():
        return NuScenesAgentDataset.from_nuscenes(
            root, "v1.0-mini", "mini_val", image_size=(64, 128)
        )

    first_ds = ds()
    first = first_ds.fingerprint()
    # a window frame of one of the split's targets (not any image: another split's is not keyed)
    path = Path(next(p for r in first_ds.records for p in r.frame_paths if p))
    with Image.open(path) as im:
        im.resize((im.width // 2, im.height // 2)).resize(im.size).save(path)
    assert ds().fingerprint()["images_sha256"] != first["images_sha256"]


@pytest.mark.parametrize(
    "damage, message",
    [
        ("timestamp", "sample.json: record"),
        ("translation", "sample_annotation.json: record"),
        ("expansion", "cannot be read by the devkit"),
        ("prediction", "is not an '<instance token>_<sample token>' pair"),
    ],
)
def test_damaged_tables_are_named_in_one_line(damage, message, synth_root, tmp_path, capsys):
    root = copy_root(synth_root, tmp_path)
    tables = root / "v1.0-mini"
    if damage == "timestamp":
        rows = json.loads((tables / "sample.json").read_text())
        rows[3]["timestamp"] = str(rows[3]["timestamp"])
        (tables / "sample.json").write_text(json.dumps(rows))
    elif damage == "translation":
        rows = json.loads((tables / "sample_annotation.json").read_text())
        del rows[5]["translation"]
        (tables / "sample_annotation.json").write_text(json.dumps(rows))
    elif damage == "expansion":
        for path in (root / "maps" / "expansion").glob("*.json"):
            path.write_bytes(path.read_bytes()[:500])
    else:
        path = root / "maps" / "prediction" / "prediction_scenes.json"
        scenes = json.loads(path.read_text())
        next(iter(scenes.values())).append("no-underscore-here")
        path.write_text(json.dumps(scenes))
    code, _, err = run_cli(["train", *base(root, tmp_path), *TINY], capsys)
    assert code == 2 and one_line(err) and message in err, err


def test_unknown_tokens_and_categories_are_reported(synth_root, tmp_path, capsys):
    root = copy_root(synth_root, tmp_path)
    path = root / "maps" / "prediction" / "prediction_scenes.json"
    scenes = json.loads(path.read_text())
    for tokens in scenes.values():
        tokens.append("0" * 32 + "_" + "1" * 32)
    path.write_text(json.dumps(scenes))
    categories = json.loads((root / "v1.0-mini" / "category.json").read_text())
    for c in categories:
        if c["name"] == "vehicle.truck":
            c["name"] = "truck"  # renamed: the vehicle filter no longer keeps it
    (root / "v1.0-mini" / "category.json").write_text(json.dumps(categories))
    code, out, err = run_cli(
        ["prepare", *base(root, tmp_path)[:4], "--methods", "history_only", "--no-progress"], capsys
    )
    assert code == 0, err
    assert "token not in this version's tables" in out and "category truck not among vehicle" in out


# ------------------------------------------------------------------ never overwritten
def test_synth_refuses_an_existing_dataroot(synth_root, tmp_path, capsys):
    root = copy_root(synth_root, tmp_path)
    tables = (root / "v1.0-mini" / "scene.json").read_bytes()
    code, _, err = run_cli(["synth", "--out", str(root), "--scenes", "1"], capsys)
    assert code == 2 and one_line(err) and "--force" in err
    assert (root / "v1.0-mini" / "scene.json").read_bytes() == tables


def test_predict_and_viz_keep_each_methods_output(trained, synth_root, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    code, out, err = run_cli(["predict", "--run", str(run)], capsys)
    assert code == 0, err
    assert (run / "predictions_mini_val_history_only_seed0.json").exists()
    code, out, err = run_cli(["viz", "--run", str(run), "--count", "1"], capsys)
    assert code == 0 and list((run / "viz" / "history_only_seed0").glob("*.png"))


def test_eval_refuses_a_checkpoint_of_another_run(trained, synth_root, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    other = tmp_path / "other"
    cli.main(
        [
            "train",
            *base(synth_root, tmp_path)[:4],
            "--run-dir",
            str(other),
            "--name",
            "o",
            *TINY[:4],
            "--hidden",
            "8",
            *TINY[6:],
        ]
    )
    ckpt = RunLayout(run).checkpoint("history_only", 0)
    shutil.copy(RunLayout(other / "o").checkpoint("history_only", 0), ckpt)
    code, _, err = run_cli(["eval", "--run", str(run)], capsys)
    assert code == 2 and one_line(err) and "does not belong to this run" in err
    assert "hidden = 8" in err and str(ckpt) in err


def test_eval_reads_a_checkpoint_older_than_an_option(trained, synth_root, tmp_path, capsys):
    """A checkpoint made before an option existed (here cv_mode) lacks it in its spec: it was
    made with what the option's default does, so eval reads it; a spec that differs does not."""
    run = copy_run(trained, tmp_path)
    path = RunLayout(run).checkpoint("history_only", 0)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    del ckpt["hyper_parameters"]["spec"]["experimental"]["cv_mode"]
    del ckpt["hyper_parameters"]["spec"]["model"]["ranking"]
    torch.save(ckpt, path)
    code, _, err = run_cli(["eval", "--run", str(run), "--json", str(tmp_path / "e.json")], capsys)
    assert code == 0, err
    ckpt["hyper_parameters"]["spec"]["experimental"]["cv_mode"] = True
    torch.save(ckpt, path)
    code, _, err = run_cli(["eval", "--run", str(run), "--json", str(tmp_path / "f.json")], capsys)
    assert code == 2 and "cv_mode = True" in err


def test_the_run_decides_the_ranking(trained, synth_root, tmp_path, capsys):
    """The ranking changes no trained weight: eval scores a checkpoint with the run's ranking
    or the one asked for, whatever the checkpoint says; only the k = 1 metrics can move."""
    ckpt = RunLayout(trained).checkpoint("history_only", 0)
    config = json.loads((trained / "config.json").read_text())
    expected = {**config["model"], "ranking": "probability"}
    spec = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]["spec"]
    assert spec["model"]["ranking"] == "risk"  # the default, saved by training
    model = load_predictor(ckpt, expected={**spec, "model": expected})
    assert model.ranking == "probability"
    tables = {}
    for ranking in ("risk", "probability"):
        out = tmp_path / f"{ranking}.json"
        args = ["eval", "--run", str(trained), "--json", str(out), "--ranking", ranking]
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
        tables[ranking] = json.loads(out.read_text())["metrics"]["all"]["history-only (ablation)"]
    assert tables["risk"]["MinADEK_5"] == tables["probability"]["MinADEK_5"]
    assert tables["risk"]["MinFDEK_1"] != tables["probability"]["MinFDEK_1"]


def test_the_run_decides_the_road_snap(trained, tmp_path, capsys):
    """Keeping modes on the road changes no trained weight: eval decides it (the default moves
    off-road points of the untrained model's modes onto the road; --road-snap 0 leaves them),
    and a run made before the option existed is scored with its default."""
    older = copy_run(trained, tmp_path)
    config = json.loads((older / "config.json").read_text())
    del config["model"]["road_snap"]
    (older / "config.json").write_text(json.dumps(config))
    rates = {}
    for name, run, extra in (
        ("off", trained, ["--road-snap", "0"]),
        ("on", trained, ["--road-snap", "8"]),
        ("older", older, []),
    ):
        out = tmp_path / f"{name}.json"
        code, _, err = run_cli(["eval", "--run", str(run), "--json", str(out), *extra], capsys)
        assert code == 0, err
        table = json.loads(out.read_text())["metrics"]["all"]
        rates[name] = table["history-only (ablation)"]["OffRoadRate"][0]
        rates[f"cv {name}"] = table["ConstantVelocityHeading"]["OffRoadRate"][0]
    assert rates["on"] < rates["off"]
    assert rates["older"] == rates["on"]  # (the default, 8 m)
    assert rates["cv on"] == rates["cv off"]  # the devkit's baselines are not decoded by us


# ------------------------------------------------------------------ one line, status 2
def test_user_mistakes_are_one_line(trained, synth_root, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "obj": np.dtype("float32")}, pickled)
    shutil.copy(pickled, RunLayout(run).checkpoint("history_only", 0))
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        (["eval", "--run", str(run)], "cannot be read"),
        (
            ["eval", "--run", str(trained), "--json", str(tmp_path / "no" / "e.json")],
            "does not exist",
        ),
        (
            ["predict", "--run", str(trained), "--out", str(tmp_path / "no" / "p.json")],
            "does not exist",
        ),
        (["viz", "--run", str(trained), "--count", "-3"], "--count -3"),
        (["train", "--name", "../x", "--run-dir", str(tmp_path)], "must be a plain name"),
        (["train", "--name", "/abs", "--run-dir", str(tmp_path)], "must be a plain name"),
        (["train", "--run-dir", str(afile)], "is a file"),
        (["train", "--cache-dir", str(afile)], "is a file"),
        (["synth", "--out", str(tmp_path / "s"), "--width", "0"], "16 pixels"),
        (["synth", "--out", str(tmp_path / "s"), "--scenes", "0"], "at least one scene"),
        (["synth", "--out", str(tmp_path / "s"), "--scenes", "-1"], "at least one scene"),
        (["synth", "--out", str(afile)], "is a file"),
    ]
    for args, message in cases:
        code, _, err = run_cli(args, capsys)
        assert code == 2 and one_line(err) and message in err, (args, err)


def test_a_full_disk_is_one_line(synth_root, tmp_path, capsys, monkeypatch):
    real = Path.write_text

    def full(self, *a, **k):
        if self.name == "config.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    code, _, err = run_cli(["train", *base(synth_root, tmp_path), *TINY], capsys)
    assert code == 2 and one_line(err) and "no space left on device writing" in err
