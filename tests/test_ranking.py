"""Which mode comes first: in decoding (traj/ranking.py), the minimum-expected-final-displacement
mode under "risk", the most probable under "probability", as the devkit's metrics read the
order; in training, the mode classifier's target (the best mode, or a soft one)."""

import pytest
import torch
import torch.nn.functional as F

from xmem_traj.traj.metrics import ModeLoss, ade_fde_loss, displacement, per_agent_metrics
from xmem_traj.traj.ranking import expected_final_displacement, rank_modes


def straight(ends: list[float], steps: int = 4) -> torch.Tensor:
    """(1, K, steps, 2): modes straight ahead along +y, each ending at its distance."""
    t = torch.linspace(0.25, 1.0, steps)
    return torch.stack([torch.stack([torch.zeros(steps), e * t], -1) for e in ends])[None]


def test_risk_ranks_first_the_mode_nearest_the_mass():
    # Two nearby modes share 0.6; the far one alone is the most probable (0.4).
    traj = straight([10.0, 11.0, 30.0])
    probs = torch.tensor([[0.3, 0.3, 0.4]])
    risk = expected_final_displacement(traj, probs)
    torch.testing.assert_close(risk, torch.tensor([[0.3 + 8.0, 0.3 + 7.6, 6.0 + 5.7]]))
    ranked = rank_modes(traj, probs, "risk")
    assert ranked.argmax().item() == 1  # the least expected final displacement
    # Its probability swapped with the highest; the far mode keeps 0.3 from it.
    torch.testing.assert_close(ranked, torch.tensor([[0.3, 0.4, 0.3]]))
    assert torch.equal(rank_modes(traj, probs, "probability"), probs)
    # What the devkit's minFDE_1 then reads: the chosen mode against a truth at 11 m.
    gt = straight([11.0])[:, 0]
    fde1 = per_agent_metrics(traj, ranked, gt, ks=(1,))["MinFDEK_1"]
    assert fde1.item() == pytest.approx(0.0)
    fde1_prob = per_agent_metrics(traj, probs, gt, ks=(1,))["MinFDEK_1"]
    assert fde1_prob.item() == pytest.approx(19.0)


def test_ranking_keeps_the_rest_and_the_values():
    torch.manual_seed(0)
    traj, probs = torch.randn(64, 6, 5, 2) * 5, torch.randn(64, 6).softmax(-1)
    ranked = rank_modes(traj, probs, "risk")
    # The same values per row, the chosen mode first, the others in their order.
    torch.testing.assert_close(ranked.sort(-1).values, probs.sort(-1).values)
    chosen = expected_final_displacement(traj, probs).argmin(-1)
    assert torch.equal(ranked.argmax(-1), chosen)
    moved = (ranked != probs).sum(-1)
    assert set(moved.tolist()) <= {0, 2}
    assert (moved == 2).any()
    one = rank_modes(traj[:, :1], torch.ones(64, 1), "risk")
    assert torch.equal(one, torch.ones(64, 1))
    with pytest.raises(ValueError, match="ranking"):
        rank_modes(traj, probs, "median")


def test_the_classifier_learns_the_best_mode_or_a_soft_target():
    torch.manual_seed(0)
    pred, gt, logits = torch.randn(8, 3, 4, 2) * 3, torch.randn(8, 4, 2), torch.randn(8, 3)
    ade = displacement(pred, gt)[0]
    best_ade, best_fde, hard = ade_fde_loss(pred, logits, gt)
    regression = best_ade + best_fde
    torch.testing.assert_close(hard - regression, F.cross_entropy(logits, ade.argmin(-1)))
    _, _, soft = ade_fde_loss(pred, logits, gt, modes=ModeLoss(temperature=2.0))
    target = (-ade / 2.0).softmax(-1)
    torch.testing.assert_close(soft - regression, F.cross_entropy(logits, target))
    assert not torch.allclose(soft, hard)
    cold = ade_fde_loss(pred, logits, gt, modes=ModeLoss(temperature=1e-4))[2]  # → best alone
    torch.testing.assert_close(cold, hard)
    # assign "miss": the mode of lowest largest pointwise distance is the one trained.
    largest = displacement(pred, gt)[2]
    chosen = largest.argmin(-1)
    assert (chosen != ade.argmin(-1)).any()  # the two assignments differ on this draw
    dist = torch.linalg.norm(pred - gt[:, None], dim=-1)[torch.arange(8), chosen]
    miss_ade, miss_fde, miss = ade_fde_loss(pred, logits, gt, modes=ModeLoss(assign="miss"))
    torch.testing.assert_close(miss_ade, dist.mean(-1).mean())
    torch.testing.assert_close(miss_fde, dist[:, -1].mean())
    torch.testing.assert_close(miss - miss_ade - miss_fde, F.cross_entropy(logits, chosen))
