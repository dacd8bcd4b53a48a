"""Nothing silently wrong, no lost work: the cache verifies before it trusts, training survives
kill -9, commands never destroy results, every bad input is one clear line before any work."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from xmem_traj import cache as array_cache
from xmem_traj import cli
from xmem_traj.config import TrainConfig
from xmem_traj.data import sources
from xmem_traj.data.agent_dataset import NuScenesAgentDataset
from xmem_traj.errors import ConfigError, RunError
from xmem_traj.inputs import feature_cache
from xmem_traj.inputs.backbone import XMemBackbone
from xmem_traj.options import build_config
from xmem_traj.runs import RunLayout, new_run
from xmem_traj.xmem import load_xmem

BIN = Path(sys.executable).parent


def tiny(synth_root, tmp_path, **kw) -> TrainConfig:
    """The tests' tiny config for a history-only run with a timestamped name."""
    return tiny_config(
        synth_root, tmp_path, **{"hidden": 16, "methods": "history_only", "name": "", **kw}
    )


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = 0
    try:
        cli.main(args)
    except SystemExit as exit_:
        code = exit_.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ the feature cache
@pytest.fixture()
def cache_case(synth_root, nusc, tmp_path, monkeypatch):
    """A mini_val split, a backbone, and extraction replaced by a counter (the cache logic is
    what is tested here; test_traj covers real extraction)."""
    ds = NuScenesAgentDataset.from_nuscenes(
        synth_root, "v1.0-mini", "mini_val", nusc=nusc, image_size=(64, 128)
    )
    backbone = XMemBackbone(load_xmem(None), features=("geometry",), masks="first")
    calls = []

    def fake_extract(backbone, ds, groups, **kw):
        calls.append(len(groups))
        time.sleep(0.3)  # long enough for a second process to arrive
        return {
            i: (np.full((ds.window_len, 7), i, np.float32), np.ones(ds.window_len, bool))
            for g in groups
            for i in g.items
        }

    monkeypatch.setattr(feature_cache.extraction, "extract_groups", fake_extract)
    root = tmp_path / "cache"
    load = lambda: feature_cache.load_or_extract(ds, backbone, "w", root, progress=False)  # noqa: E731
    first = load()
    entry = next(p for p in (root / "features").iterdir() if p.is_dir())
    return load, entry, first, calls, ds


def test_cache_rebuilds_entries_it_cannot_trust(cache_case, caplog):
    load, entry, first, calls, ds = cache_case
    assert len(calls) == 1 and first["features"].shape[0] == len(ds)
    damages = {
        "no manifest, zeroed features": lambda: (
            (entry / "manifest.json").unlink(),
            np.savez(
                entry / "arrays.npz",
                features=np.zeros_like(first["features"]),
                valid=first["valid"],
            ),
        ),
        "truncated arrays.npz": lambda: (entry / "arrays.npz").write_bytes(
            (entry / "arrays.npz").read_bytes()[:200]
        ),
        "edited manifest": lambda: (entry / "manifest.json").write_text(
            (entry / "manifest.json").read_text().replace('"mini_val"', '"mini_train"')
        ),
        "another split's rows, manifest to match": lambda: array_cache.save_entry(
            entry,
            {
                k: v
                for k, v in json.loads((entry / "manifest.json").read_text()).items()
                if k not in ("arrays", "sha256")
            },
            {"features": first["features"][:3], "valid": first["valid"][:3]},
        ),
    }
    for name, damage in damages.items():
        damage()
        caplog.clear()
        again = load()
        assert np.array_equal(again["features"], first["features"]), name
        assert any("rebuilding" in r.getMessage() for r in caplog.records), name
    assert len(calls) == 1 + len(damages)
    load()  # the repaired entry is trusted again
    assert len(calls) == 1 + len(damages)


def test_cache_builds_an_entry_once_for_concurrent_runs(cache_case):
    load, entry, first, calls, ds = cache_case
    shutil.rmtree(entry)
    results = []
    threads = [threading.Thread(target=lambda: results.append(load())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2  # the first build, then one rebuild for both runs
    assert all(np.array_equal(r["features"], first["features"]) for r in results)


def test_stale_temporaries_of_dead_processes_are_removed(synth_root, tmp_path, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cfg = tiny(
        synth_root,
        tmp_path,
        dataroot="",
        synth_train_scenes=1,
        synth_train_val_scenes=0,
        synth_val_scenes=1,
    )
    cache = cfg.data.resolved_cache_dir()
    parent = cache / "synthetic"
    from xmem_traj import synth

    name = f"world{synth.WORLD_VERSION}-1-0-1-stride{cfg.world.synth_target_stride}-seed0"
    stale = parent / f"{name}.tmp-{dead.pid}-abc"
    (stale / "v1.0-trainval").mkdir(parents=True)
    made = []

    def fake_generate(out, **kw):
        made.append(out)
        time.sleep(0.3)
        (Path(out) / "maps" / "prediction").mkdir(parents=True)
        (Path(out) / "maps" / "prediction" / "prediction_scenes.json").write_text("{}")

    monkeypatch.setattr(synth, "generate", fake_generate)
    root = sources.synthetic_dataroot(cfg.world, cache)
    assert not stale.exists() and root.exists() and len(made) == 1
    other = cfg.with_options(synth_seed=1).world
    threads = [
        threading.Thread(target=sources.synthetic_dataroot, args=(other, cache)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 2  # two runs sharing a cache generate a dataset once


# ------------------------------------------------------------------ training and runs
def test_kill_during_training_then_resume_continues(synth_root, tmp_path):
    """kill -9 at epoch 2 of 6; --resume continues from the last epoch saved and ends with the
    weights of an uninterrupted run, keeping the killed attempt's logs."""
    args = [
        "--dataroot",
        str(synth_root),
        "--cache-dir",
        str(tmp_path / "c"),
        "--run-dir",
        str(tmp_path / "runs"),
        "--methods",
        "history_only",
        "--seeds",
        "1",
        "--epochs",
        "6",
        "--hidden",
        "16",
        "--no-progress",
        "--batch-size",
        "8",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(BIN / "xmem-traj"), "train", "--name", "killed", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if "Epoch 2:" in line:  # epoch 1's checkpoint is on disk by now
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    run = tmp_path / "runs" / "killed"
    ckpt = RunLayout(run).checkpoint("history_only", 0)
    assert ckpt.exists(), "no checkpoint written before the kill"
    epoch = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= epoch < 5
    out = subprocess.run(
        [str(BIN / "xmem-traj"), "train", "--resume", str(run), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Epoch 0:" not in out.stdout and "Epoch 5:" in out.stdout
    assert (run / "logs" / "history_only-seed0" / "metrics.csv").exists()
    assert list((run / "logs").glob("history_only-seed0-resumed*/metrics.csv"))
    full = subprocess.run(
        [str(BIN / "xmem-traj"), "train", "--name", "full", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert full.returncode == 0, full.stderr[-2000:]
    a = torch.load(ckpt, weights_only=True)["state_dict"]
    b = torch.load(
        RunLayout(tmp_path / "runs" / "full").checkpoint("history_only", 0), weights_only=True
    )["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_commands_never_destroy_results(synth_root, tmp_path, capsys):
    from xmem_traj.train import run_training

    run = run_training(tiny(synth_root, tmp_path, name="h", epochs=1))
    original = (run / "eval.json").read_text()
    code, out, err = run_cli(["eval", "--run", str(run)], capsys)
    assert code == 0 and (run / "eval.json").read_text() == original
    assert len(list(run.glob("eval-*.json"))) == 1
    # predict and viz find the history-only main model
    code, out, err = run_cli(
        ["predict", "--run", str(run), "--out", str(tmp_path / "p.json")], capsys
    )
    assert code == 0 and len(json.loads((tmp_path / "p.json").read_text())) > 0
    code, out, err = run_cli(["viz", "--run", str(run), "--count", "1"], capsys)
    assert code == 0 and list((run / "viz" / "history_only_seed0").glob("*.png"))
    # a head that was not trained is named in one line
    code, out, err = run_cli(["predict", "--run", str(run), "--seed-index", "5"], capsys)
    assert code == 2 and "--seed-index 5" in err and len(err.strip().splitlines()) == 1
    # a run without its checkpoints: a clear error, and eval.json untouched
    shutil.rmtree(run / "checkpoints")
    code, out, err = run_cli(["eval", "--run", str(run), "--overwrite"], capsys)
    assert code == 2 and "no checkpoint" in err and len(err.strip().splitlines()) == 1
    assert (run / "eval.json").read_text() == original


def test_run_directories_are_unique(tmp_path):
    cfg = TrainConfig.of(run_dir=str(tmp_path))
    names = {new_run(cfg).root for _ in range(5)}
    assert len(names) == 5
    taken = next(iter(names))
    (taken / "checkpoints" / "xmem" / "seed0").mkdir(parents=True)
    (taken / "checkpoints" / "xmem" / "seed0" / "last.ckpt").write_bytes(b"a trained model")
    with pytest.raises(RunError, match="already exists"):
        new_run(cfg.with_options(name=taken.name))
    stub = next(n for n in names if n != taken)  # no checkpoint: a failed attempt's name
    assert new_run(cfg.with_options(name=stub.name)).root == stub


# ------------------------------------------------------------------ bad input, up front
def test_config_values_are_typed(tmp_path):
    cases = {
        'challenge = "false"\n': "challenge: expected bool",
        'epochs = "2"\n': "epochs: expected int",
        "epochs = 0\n": "epochs: 0 is below",
        "modes = 26\n": "modes: 26 is above",
        'methods = "xmem,unknown"\n': "methods",
        "colour = 1\n": "unknown config key",
        "epochs = \n": "cannot be parsed",
    }
    for text, message in cases.items():
        path = tmp_path / "c.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as err:
            build_config({"config": str(path)})
        if "parsed" in message or "unknown" in message:
            assert str(path) in str(err.value)
    (tmp_path / "c.json").write_text('{"epochs": 3, "lr": 1}')
    assert build_config({"config": str(tmp_path / "c.json")}).optim.lr == 1.0
    (tmp_path / "c.yaml").write_text("epochs: 3\n")
    with pytest.raises(ConfigError, match="unknown extension"):
        build_config({"config": str(tmp_path / "c.yaml")})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--modes", "0"], "modes: 0 is below"),
        (["--batch-size", "0"], "batch_size: 0 is below"),
        (["--image-height", "10"], "image_height: 10 is below"),
        (["--image-height", "64", "--image-width", "112"], "fewer than its top_k"),
        (["--epochs", "-1"], "epochs: -1 is below"),
    ],
)
def test_bad_values_fail_before_any_work(args, message, tmp_path, capsys):
    code, out, err = run_cli(["train", "--cache-dir", str(tmp_path / "c"), *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "c").exists()


def test_bad_files_are_named(synth_root, tmp_path, capsys):
    base = [
        "train",
        "--dataroot",
        str(synth_root),
        "--cache-dir",
        str(tmp_path / "c"),
        "--run-dir",
        str(tmp_path / "runs"),
    ]
    text = tmp_path / "XMem.pth"
    text.write_text("hello, not weights\n")
    code, _, err = run_cli(base + ["--xmem-weights", str(text)], capsys)
    assert code == 2 and "not a torch checkpoint" in err and str(text) in err
    broken = tmp_path / "broken"
    shutil.copytree(synth_root, broken)
    (broken / "v1.0-mini" / "instance.json").write_text('[{"token": ')
    code, _, err = run_cli(
        base[:1] + ["--dataroot", str(broken), *base[3:], "--methods", "history_only"], capsys
    )
    assert code == 2 and "instance.json is not valid JSON" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(
        base[:1] + ["--dataroot", str(empty), *base[3:], "--methods", "history_only"], capsys
    )
    assert code == 2 and "no nuScenes tables" in err and "Traceback" not in err
    mapless = tmp_path / "mapless"
    shutil.copytree(synth_root, mapless)
    shutil.rmtree(mapless / "maps" / "expansion")
    code, _, err = run_cli(
        base[:1] + ["--dataroot", str(mapless), *base[3:], "--methods", "history_only"], capsys
    )
    assert (
        code == 2
        and "no map expansion" in err
        and "--no-map" in err
        and len(err.strip().splitlines()) == 1
    )
    assert not list((tmp_path / "runs").iterdir())  # no empty run directories left behind


def test_truncated_resume_checkpoint_is_named(synth_root, tmp_path, capsys):
    from xmem_traj.train import run_training

    run = run_training(tiny(synth_root, tmp_path, name="r", epochs=1), evaluate=False)
    ckpt = RunLayout(run).checkpoint("history_only", 0)
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    logs_before = sorted(p.name for p in (run / "logs").iterdir())
    code, _, err = run_cli(["train", "--resume", str(run)], capsys)
    assert code == 2 and str(ckpt) in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (run / "logs").iterdir()) == logs_before
