"""Tests of focalpo.train.losses three ways: hand numbers, a naive loop implementation, limiting cases
(w ≡ 1 is DPO, w = 0 tokens get exactly zero gradient, float64 finite differences on a tiny model).

Run: .venv/bin/python -m pytest tests/train/test_losses.py -q
"""

from __future__ import annotations

import math

import pytest
import torch

from focalpo.train.losses import (
    PREFERENCE_LOSSES,
    chosen_nll,
    nll_token_mean,
    preference_loss,
    selective_log_softmax,
    token_logps,
    weighted_logps,
)

# --------------------------------------------------------------------------------------------------
# Hand numbers


def test_hand_numbers_sigmoid_and_hinge():
    """chosen − ref = [1, 0], rejected − ref = [0, 2], β = 0.5
    -> rewards/chosen = [0.5, 0], rewards/rejected = [0, 1], margins = [0.5, −1]
    -> sigmoid = −log σ([0.5, −1]) = [log(1 + e^−0.5), log(1 + e)] = [0.474077, 1.313262]
    -> hinge = relu(1 − [0.5, −1]) = [0.5, 2.0]
    """
    pc, pr = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    zero = torch.zeros(2)
    losses, rc, rr = preference_loss(pc, pr, zero, zero, beta=0.5)
    assert rc.tolist() == [0.5, 0.0] and rr.tolist() == [0.0, 1.0]
    assert losses.tolist() == pytest.approx([0.474077, 1.313262], abs=1e-6)
    hinge, _, _ = preference_loss(pc, pr, zero, zero, beta=0.5, loss_type="hinge")
    assert hinge.tolist() == [0.5, 2.0]


def test_hand_numbers_ipo():
    """logratios chosen [1, 0] over masses [2, 1], rejected [0, 2] over masses [1, 4], β = 0.5
    -> h = [1/2 − 0, 0 − 2/4] = [0.5, −0.5]; 1/(2β) = 1 -> ((h − 1)²) = [0.25, 2.25]
    """
    pc, pr, zero = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), torch.zeros(2)
    losses, _, _ = preference_loss(
        pc, pr, zero, zero, beta=0.5, loss_type="ipo",
        chosen_mass=torch.tensor([2.0, 1.0]), rejected_mass=torch.tensor([1.0, 4.0]),
    )
    assert losses.tolist() == [0.25, 2.25]


def test_hand_numbers_nll_token_mean():
    """logps [[−1, −2, 0], [−3, 0, 0]], mask [[1, 1, 0], [1, 0, 0]] -> per sequence [3, 3];
    batch token mean = 6 / 3 tokens = 2 (not the mean of per-sequence means, 1.5 and 3 -> 2.25)."""
    logps = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    sums = chosen_nll(logps, mask)
    assert sums.tolist() == [3.0, 3.0]
    assert nll_token_mean(sums, mask).item() == 2.0


def test_hand_numbers_token_logps_alignment():
    """Column t of token_logps scores input_ids[t + 1] from the logits at t.
    logits at t: token 1 gets log 3 and the others 0 over V = 3 -> p(1) = 3/5, p(other) = 1/5."""
    ids = torch.tensor([[0, 1, 2]])
    logits = torch.zeros(1, 3, 3)
    logits[0, :, 1] = math.log(3.0)
    lp = token_logps(logits, ids)
    assert lp.shape == (1, 2)
    assert lp[0].tolist() == pytest.approx([math.log(3 / 5), math.log(1 / 5)], abs=1e-6)


def test_unknown_loss_type_names_the_known_ones():
    z = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown loss type 'kto'.*hinge, ipo, sigmoid"):
        preference_loss(z, z, z, z, beta=0.1, loss_type="kto")
    with pytest.raises(ValueError, match="ipo.*chosen_mass"):
        preference_loss(z, z, z, z, beta=0.1, loss_type="ipo")


# --------------------------------------------------------------------------------------------------
# selective_log_softmax against the naive log_softmax + gather


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_selective_log_softmax_matches_naive(dtype):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 50, generator=g, dtype=torch.float64) * 4).to(dtype)
    index = torch.randint(0, 50, (3, 5), generator=g)
    ours = selective_log_softmax(logits, index, rows_per_chunk=2)
    naive_same_dtype = torch.gather(logits.log_softmax(-1), -1, index[..., None])[..., 0]
    exact = torch.gather(logits.double().log_softmax(-1), -1, index[..., None])[..., 0]
    assert ours.shape == (3, 5)
    if dtype == torch.bfloat16:
        assert ours.dtype == torch.float32  # upcast: a bfloat16 logsumexp loses ~2 digits
        assert torch.allclose(ours.double(), exact, atol=1e-5)
        assert torch.allclose(ours, naive_same_dtype.float(), atol=0.2)  # bf16 spacing at |x| ~ 15 is 0.0625
    else:
        assert ours.dtype == dtype
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        assert torch.allclose(ours, naive_same_dtype, atol=tol)
        assert torch.allclose(ours.double(), exact, atol=tol)


# --------------------------------------------------------------------------------------------------
# Naive reference implementation (python loops, math module)


def naive_losses(pol, ref, w, beta, loss_type):
    """pol, ref, w: nested lists [2B][L] (chosen rows then rejected rows) -> list of B losses."""
    n = len(pol) // 2
    out = []
    for b in range(n):
        d, m = [], []
        for row in (b, b + n):
            d.append(sum(w[row][t] * (pol[row][t] - ref[row][t]) for t in range(len(pol[row]))))
            m.append(max(sum(w[row]), 1.0))
        margin = beta * (d[0] - d[1])
        if loss_type == "sigmoid":
            out.append(math.log1p(math.exp(-margin)))
        elif loss_type == "hinge":
            out.append(max(0.0, 1 - margin))
        else:
            out.append((d[0] / m[0] - d[1] / m[1] - 1 / (2 * beta)) ** 2)
    return out


@pytest.mark.parametrize("loss_type", sorted(PREFERENCE_LOSSES))
def test_matches_naive_loops(loss_type):
    g = torch.Generator().manual_seed(1)
    B, L = 3, 7
    pol = -torch.rand(2 * B, L, generator=g, dtype=torch.float64) * 3
    ref = -torch.rand(2 * B, L, generator=g, dtype=torch.float64) * 3
    w = torch.rand(2 * B, L, generator=g, dtype=torch.float64) * 2
    w[w < 0.5] = 0.0  # some tokens out of the loss
    pc, pr = weighted_logps(pol, w).chunk(2)
    rc, rr = weighted_logps(ref, w).chunk(2)
    mc, mr = w.sum(-1).chunk(2)
    losses, _, _ = preference_loss(pc, pr, rc, rr, 0.3, loss_type, mc, mr)
    expected = naive_losses(pol.tolist(), ref.tolist(), w.tolist(), 0.3, loss_type)
    assert losses.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Limits


def test_unit_weights_equal_plain_dpo_on_completion_tokens():
    g = torch.Generator().manual_seed(2)
    pol, ref = -torch.rand(4, 6, generator=g), -torch.rand(4, 6, generator=g)
    mask = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]])
    pc, pr = weighted_logps(pol, mask.float()).chunk(2)
    rc, rr = weighted_logps(ref, mask.float()).chunk(2)
    ours, _, _ = preference_loss(pc, pr, rc, rr, beta=0.1)
    # plain DPO: sums over the completion tokens, one sequence at a time
    sums = [pol[i][mask[i].bool()].sum() - ref[i][mask[i].bool()].sum() for i in range(4)]
    plain = [-torch.nn.functional.logsigmoid(0.1 * (sums[b] - sums[b + 2])) for b in range(2)]
    assert torch.allclose(ours, torch.stack(plain), atol=1e-7)


def test_weights_scale_like_beta():
    """r is linear in w: weights ≡ c give the same loss as w ≡ 1 with β·c."""
    g = torch.Generator().manual_seed(3)
    pol, ref = -torch.rand(2, 5, generator=g, dtype=torch.float64), -torch.rand(2, 5, generator=g, dtype=torch.float64)
    ones = torch.ones(2, 5, dtype=torch.float64)
    a = preference_loss(*weighted_logps(pol, 2 * ones).chunk(2), *weighted_logps(ref, 2 * ones).chunk(2), beta=0.1)[0]
    b = preference_loss(*weighted_logps(pol, ones).chunk(2), *weighted_logps(ref, ones).chunk(2), beta=0.2)[0]
    assert torch.allclose(a, b, atol=1e-15)


def test_zero_weight_tokens_get_exactly_zero_gradient():
    g = torch.Generator().manual_seed(4)
    N, T, V = 4, 6, 11
    logits = torch.randn(N, T, V, generator=g, requires_grad=True)
    ids = torch.randint(0, V, (N, T), generator=g)
    weights = torch.rand(N, T, generator=g)
    weights[:, :2] = 0.0  # prompt
    weights[0, 4] = weights[3, 3] = 0.0  # tokens outside the error region
    lp = token_logps(logits, ids)  # (N, T−1): column t scores ids[:, t+1] from logits[:, t]
    pc, pr = weighted_logps(lp, weights[:, 1:]).chunk(2)
    losses, _, _ = preference_loss(pc, pr, torch.zeros(2), torch.zeros(2), beta=0.5)
    losses.sum().backward()
    zero_rows = weights[:, 1:] == 0  # token t+1 has weight 0 -> logits row t gets no gradient
    grad = logits.grad[:, :-1]
    assert (grad[zero_rows] == 0).all()
    assert (grad[~zero_rows].abs().sum(-1) > 0).all()
    assert (logits.grad[:, -1] == 0).all()  # the last position predicts nothing


def test_finite_differences_float64_tiny_model():
    """Gradient of the full weighted loss (+ α·NLL) through a float64 Llama against finite differences."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float64).eval()
    ids = torch.randint(0, 16, (4, 6))
    weights = torch.tensor([[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 0, 1], [0, 0, 0, 1, 1, 1], [0, 0, 2, 0, 1, 1]],
                           dtype=torch.float64)
    ref_c, ref_r = torch.tensor([-8.0, -6.0], dtype=torch.float64), torch.tensor([-9.0, -5.0], dtype=torch.float64)
    # Llama's RMSNorm and rotary embedding compute in float32 even in a float64 model, so finite
    # differences are float64-exact only downstream of the last norm: the LM head and the norm scale.
    names = ["lm_head.weight", "model.norm.weight"]
    params = dict(model.named_parameters())

    def loss_of(*tensors):
        out = torch.func.functional_call(model, dict(zip(names, tensors)), (ids,))
        lp = token_logps(out.logits, ids)
        pc, pr = weighted_logps(lp, weights[:, 1:]).chunk(2)
        losses, _, _ = preference_loss(pc, pr, ref_c, ref_r, beta=0.7)
        mask = (weights[:2, 1:] > 0).double()
        return losses.mean() + 0.5 * nll_token_mean(chosen_nll(lp[:2], mask), mask)

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_selective_log_softmax_gradient_matches_naive(dtype):
    g = torch.Generator().manual_seed(5)
    base = torch.randn(4, 3, 40, generator=g, dtype=torch.float64) * 3
    index = torch.randint(0, 40, (4, 3), generator=g)
    upstream = torch.randn(4, 3, generator=g, dtype=torch.float64)
    ours_in = base.to(dtype).requires_grad_(True)
    naive_in = base.to(dtype).double().requires_grad_(True)  # the same values, exact arithmetic
    (selective_log_softmax(ours_in, index, rows_per_chunk=3).double() * upstream).sum().backward()
    (torch.gather(naive_in.log_softmax(-1), -1, index[..., None])[..., 0] * upstream).sum().backward()
    assert ours_in.grad.dtype == dtype
    tol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 2e-2}[dtype]  # bf16: the stored gradient
    assert torch.allclose(ours_in.grad.double(), naive_in.grad, atol=tol)


def test_selective_log_softmax_gradcheck_float64():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 3, 7, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 7, (2, 3), generator=g)
    assert torch.autograd.gradcheck(lambda x: selective_log_softmax(x, index), (logits,))
