"""Intervals that hold: resampling scenes (agents nested in them) and training seeds, with
t critical values for few scenes, covers a known truth about 95 % of the time; resampling
agents, as the evaluation did before, does not."""

from __future__ import annotations

import numpy as np
import pytest

from xmem_traj.eval.bootstrap import SceneBootstrap


def test_known_answers():
    rng = np.random.default_rng(0)
    # 200 scenes, each with 10 identical targets: the interval is that of 200 values, not 2000.
    scene_values = rng.normal(5.0, 2.0, 200)
    values = np.repeat(scene_values, 10)
    scenes = np.repeat(np.arange(200), 10).astype(str)
    ci = SceneBootstrap(scenes, replicates=4000).mean(values)
    half = 1.96 * scene_values.std(ddof=1) / np.sqrt(200)
    assert ci.value == pytest.approx(scene_values.mean())
    assert ci.half_width == pytest.approx(half, rel=0.1)
    boot = SceneBootstrap(scenes)
    # Paired: a is b lowered by exactly 10 % on every target → gain 10 %, no spread.
    gain = boot.relative_gain(0.9 * values, values)
    assert gain.value == pytest.approx(0.1) and gain.half_width < 1e-9
    # a halfway between b and c captures half of c's gain over b.
    b, c = values + 2.0, values
    share = boot.ratio_of_differences((b + c) / 2, b, c)
    assert share.value == pytest.approx(0.5) and share.low == pytest.approx(0.5)
    # Nothing to gain on (b is 0 on every target, e.g. no misses): NaN, not a crash.
    assert all(np.isnan(boot.relative_gain(0 * values, 0 * values).as_list()))
    # A subset mask restricts the targets; per-seed values (S, N) are averaged over seeds.
    mask = np.arange(2000) < 1000
    assert boot.mean(values, mask).value == pytest.approx(values[:1000].mean())
    two = np.stack([values, values + 1.0])
    assert boot.mean(two).value == pytest.approx(values.mean() + 0.5)


TRUE_A, TRUE_B = 6.0, 6.5  # expected minFDE_1 of two methods over scenes and training seeds


def simulated_run(rng: np.random.Generator, scenes: int, seeds: int = 3):
    """Scenes of 1–15 agents with 4–9 targets each; per target a scene effect, an agent
    effect, a method × scene effect, a training-seed effect of each method (whole run and
    per scene) and noise, in metres (magnitudes of the default val split's minFDE_1)."""
    scene, agent = [], []
    for g in range(scenes):
        for a in range(rng.poisson(6) + 1):
            k = int(rng.integers(4, 10))
            scene += [g] * k
            agent += [f"{g}/{a}"] * k
    scene = np.array(scene)
    agent_ids, agent_index = np.unique(agent, return_inverse=True)
    shared = rng.normal(0, 1.5, scenes)[scene] + rng.normal(0, 1.0, len(agent_ids))[agent_index]
    values = {}
    for name, mean in (("a", TRUE_A), ("b", TRUE_B)):
        method = mean + shared + rng.normal(0, 0.4, scenes)[scene]
        values[name] = np.stack(
            [
                method
                + rng.normal(0, 0.15)
                + rng.normal(0, 0.2, scenes)[scene]
                + rng.normal(0, 0.5, len(scene))
                for _ in range(seeds)
            ]
        )
    return scene.astype(str), np.asarray(agent), values


@pytest.mark.parametrize("scenes", [8, 16])
def test_scene_intervals_cover_the_truth(scenes):
    rng = np.random.default_rng(scenes)
    runs, hits, agent_hits = 500, {"mean": 0, "gain": 0}, 0
    truth = (TRUE_B - TRUE_A) / TRUE_B
    for i in range(runs):
        scene, agent, v = simulated_run(rng, scenes)
        boot = SceneBootstrap(scene, replicates=400, seed=i)
        mean, gain = boot.mean(v["a"]), boot.relative_gain(v["a"], v["b"])
        hits["mean"] += mean.low <= TRUE_A <= mean.high
        hits["gain"] += gain.low <= truth <= gain.high
        # the evaluation before: agents resampled, seeds averaged first
        by_agent = SceneBootstrap(agent, replicates=400, seed=i)
        g = by_agent.relative_gain(v["a"].mean(0), v["b"].mean(0))
        agent_hits += g.low <= truth <= g.high
    coverage = {k: n / runs for k, n in hits.items()}
    assert 0.92 <= coverage["mean"] <= 0.985, coverage
    assert 0.92 <= coverage["gain"] <= 0.985, coverage
    assert agent_hits / runs < 0.85, agent_hits / runs  # agents as clusters claim too much


def test_the_oracles_share_is_reported_over_each_non_visual_method():
    """With two non-visual methods (history-only and a peer) the report holds one share per
    method, each the oracle's gain over that method that the XMem model captures (before,
    the second overwrote the first under one title)."""
    from xmem_traj.eval.report import BASELINE, COMPARED, compare
    from xmem_traj.methods import METHODS

    scenes = np.repeat(np.arange(20), 5).astype(str)
    boot = SceneBootstrap(scenes, replicates=200)
    base = np.random.default_rng(0).uniform(4.0, 8.0, 100)
    errors = {"history_only": base + 2.0, "mtp": base + 4.0, "scene_state_oracle": base}
    errors["xmem"] = base + 1.0  # half of the oracle's gain over history-only
    per_target = {METHODS[m].label: {k: e for k in COMPARED} for m, e in errors.items()}
    per_target[BASELINE] = {k: base + 5.0 for k in COMPARED}
    out = compare(boot, per_target, np.ones(100, bool), list(errors))
    shares = {k: v for k, v in out.items() if k.startswith("share")}
    over = {
        name: shares[k]
        for name in ("history_only", "mtp")
        for k in shares
        if f"over {METHODS[name].label} " in k
    }
    assert len(shares) == 2 and set(over) == {"history_only", "mtp"}
    assert over["history_only"]["MinFDEK_1"][0] == pytest.approx(0.5)
    assert over["mtp"]["MinFDEK_1"][0] == pytest.approx(0.75)  # (4 − 1) / (4 − 0)
