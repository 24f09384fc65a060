"""Token-weighted preference losses: pure functions of tensors, unreduced.

The one loss behind every method of focalpo (DESIGN.md, "Every method is a weight scheme over one
loss"): with per-token weights w_t from a scheme (DPO: w = 1; Focused-DPO: w = 2 on the error-prone
middle; Target-DPO: rejected scored only on its error lines),

    r(y)  = β · Σ_t w_t · (log π_θ(y_t | x, y_<t) − log π_ref(y_t | x, y_<t))
    L_DPO = −log σ(r(y⁺) − r(y⁻))                            # Eq. 7 of arXiv 2305.18290
    L_RPO = L_DPO + α · NLL(y⁺)                               # RPO, arXiv 2404.19733; Target-RPO

Use:

    logps = token_logps(logits, input_ids)                    # (N, T-1) log π(y_t), float32 or float64
    chosen, rejected = weighted_logps(logps, weights[:, 1:]).chunk(2)   # (B,), (B,)
    losses, r_c, r_r = preference_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    loss = losses.mean()                                      # the caller reduces

Hand-checked numbers (also in tests/train/test_losses.py):

    chosen − ref_chosen = [1.0, 0.0], rejected − ref_rejected = [0.0, 2.0], β = 0.5
      -> rewards/chosen = [0.5, 0.0], rewards/rejected = [0.0, 1.0], margins = [0.5, −1.0]
      -> sigmoid: −log σ([0.5, −1.0]) = [0.474077, 1.313262]
      -> hinge:   relu(1 − [0.5, −1.0]) = [0.5, 2.0]

Loss types live in `PREFERENCE_LOSSES` (a dict of pure functions), so a new one is a new entry,
not a new branch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[..., torch.Tensor]

# --------------------------------------------------------------------------------------------------
# Per-token log-probabilities


class _SelectiveLogSoftmax(torch.autograd.Function):
    """log_softmax + gather whose backward builds one (…, V) gradient, chunk by chunk, in place.

    Autograd's own version of `gather(x) − logsumexp(x)` materialises the scatter of the gather, the
    softmax of the logsumexp and their sum: three logits-sized tensors at the backward peak.
    """

    @staticmethod
    def forward(ctx, logits, index, rows_per_chunk):
        out_dtype = logits.dtype if logits.dtype in (torch.float32, torch.float64) else torch.float32
        logps = torch.empty(index.shape, dtype=out_dtype, device=logits.device)
        lse = torch.empty_like(logps)
        for lg, ix, lp, ls in zip(*(t.split(rows_per_chunk) for t in (logits, index, logps, lse))):
            lg = lg.to(out_dtype)
            ls.copy_(torch.logsumexp(lg, dim=-1))
            lp.copy_(torch.gather(lg, -1, ix.unsqueeze(-1)).squeeze(-1) - ls)  # x_i − logsumexp(x)
        ctx.save_for_backward(logits, index, lse)
        ctx.rows_per_chunk = rows_per_chunk
        return logps

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        logits, index, lse = ctx.saved_tensors
        grad = torch.empty_like(logits)
        chunks = (t.split(ctx.rows_per_chunk) for t in (logits, index, lse, grad_out, grad))
        for lg, ix, ls, g, dst in zip(*chunks):
            g = g.to(ls.dtype).unsqueeze(-1)  # (n, T, 1)
            p = torch.exp(lg.to(ls.dtype) - ls.unsqueeze(-1))  # softmax (n, T, V)
            p.mul_(-g).scatter_add_(-1, ix.unsqueeze(-1), g)  # d/dx (x_i − lse) = onehot_i − softmax
            dst.copy_(p)
        return grad, None, None


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor, rows_per_chunk: int = 1) -> torch.Tensor:
    """log_softmax(logits)[..., index] without a second (…, V) tensor for the whole batch.

    logits: (N, T, V) (any leading shape with N first); index: (N, T) int64 -> (N, T).
    float32/float64 logits keep their dtype; float16/bfloat16 are upcast to float32 chunk by chunk
    (a logsumexp in bfloat16 loses ~2 digits), so the result is float32. Equals
    `torch.gather(logits.log_softmax(-1), -1, index[..., None])[..., 0]` up to rounding, and so does
    its gradient, which is computed `rows_per_chunk` rows at a time into a single buffer.
    """
    return _SelectiveLogSoftmax.apply(logits, index, rows_per_chunk)


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log π(input_ids[:, t] | input_ids[:, <t]) for t ≥ 1.

    logits: (N, T, V) from a causal LM over input_ids (N, T) -> (N, T−1); column j scores token j+1,
    so weights and masks of the same batch are sliced `[:, 1:]` to line up.
    """
    return selective_log_softmax(logits[:, :-1], input_ids[:, 1:])


# --------------------------------------------------------------------------------------------------
# Sequence scores and the NLL term


def weighted_logps(token_logps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_t w_t · log π(y_t): (N, L), (N, L) -> (N,).

    Weights are 0 on prompt and padding, so a w = 0 token gets exactly zero gradient.
    """
    return (token_logps * weights).sum(dim=-1)


def chosen_nll(chosen_token_logps: torch.Tensor, chosen_mask: torch.Tensor) -> torch.Tensor:
    """−Σ_t log π(y⁺_t) over the chosen completion tokens: (B, L), (B, L) -> (B,).

    Unnormalised on purpose: TRL 1.16's `sft` term (what `loss_type=["sigmoid", "sft"]` adds) is the
    mean over all chosen completion tokens of the micro-batch, `chosen_nll(...).sum() / mask.sum()`
    (see `nll_token_mean`), not a mean of per-sequence means.
    """
    return -(chosen_token_logps * chosen_mask).sum(dim=-1)


def nll_token_mean(nll_sums: torch.Tensor, chosen_mask: torch.Tensor) -> torch.Tensor:
    """Batch token mean of the chosen NLL: (B,), (B, L) -> () = Σ_b nll_b / Σ_b |y⁺_b|."""
    return nll_sums.sum() / chosen_mask.sum().clamp(min=1)


# --------------------------------------------------------------------------------------------------
# Loss types: f(chosen_logratios, rejected_logratios, beta, chosen_mass, rejected_mass) -> (B,)
# logratios = Σ_t w_t (log π_θ − log π_ref); mass = Σ_t w_t (the weighted length).


def sigmoid_loss(chosen_logratios, rejected_logratios, beta, chosen_mass=None, rejected_mass=None):
    """DPO: −log σ(β(Δ⁺ − Δ⁻)) -> (B,)."""
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))  # Eq. 7 of arXiv 2305.18290


def hinge_loss(chosen_logratios, rejected_logratios, beta, chosen_mass=None, rejected_mass=None):
    """SLiC-style hinge on the reward margin, relu(1 − β(Δ⁺ − Δ⁻)) -> (B,) (TRL's `hinge`)."""
    return torch.relu(1 - beta * (chosen_logratios - rejected_logratios))  # arXiv 2305.10425, δ = 1/β


def ipo_loss(chosen_logratios, rejected_logratios, beta, chosen_mass=None, rejected_mass=None):
    """IPO: ((Δ⁺/m⁺ − Δ⁻/m⁻) − 1/(2β))² -> (B,), Δ averaged over the weighted length m = Σ w.

    With w ≡ 1, m is the completion length and this is TRL 1.16's length-normalised `ipo`.
    """
    if chosen_mass is None or rejected_mass is None:
        raise ValueError("loss type 'ipo' needs chosen_mass and rejected_mass (Σ_t w_t per sequence)")
    h = chosen_logratios / chosen_mass.clamp(min=1.0) - rejected_logratios / rejected_mass.clamp(min=1.0)
    return (h - 1 / (2 * beta)) ** 2  # Eq. 17 of arXiv 2310.12036, τ = β


PREFERENCE_LOSSES: dict[str, LossFn] = {"sigmoid": sigmoid_loss, "hinge": hinge_loss, "ipo": ipo_loss}


def preference_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    chosen_mass: torch.Tensor | None = None,
    rejected_mass: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair loss and detached rewards from weighted sequence log-probs, all (B,).

    Returns (losses, chosen_rewards, rejected_rewards) with rewards β·Σ_t w_t(log π_θ − log π_ref),
    detached (they are for logging).
    """
    try:
        fn = PREFERENCE_LOSSES[loss_type]
    except KeyError:
        raise ValueError(f"unknown loss type {loss_type!r}; known: {', '.join(sorted(PREFERENCE_LOSSES))}") from None
    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    losses = fn(chosen_logratios, rejected_logratios, beta, chosen_mass, rejected_mass)
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()
