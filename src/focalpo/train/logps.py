"""Per-token log-probs of preference batches, without the (2B, T, V) logits.

    out = pair_logps(model, batch)                           # padded or packed batch -> PairLogps
    out.chosen, out.rejected                                 # (B,), (B,)  Σ_t w_t log π(y_t), differentiable
    logps, s = batch_token_logps(model, padded_batch)        # (2B, T−s) per token, from token s on
    logps = packed_token_logps(model, packed_batch)          # (N,) per scored token (focalpo.train.packing)

At a real vocabulary the logits are the largest tensor of a DPO step: V = 151,936 and 2,048 tokens
make 1.2 GiB per sequence in float32, and autograd keeps a second copy for the backward. Here the
LM head is applied a chunk of tokens at a time inside one autograd function (`linear_token_logps`):
the forward keeps only log π(y_t) and the log-partition of each token, and the backward recomputes
each chunk's logits to form its gradient — the idea of Liger's fused linear cross-entropy, for log-probs
(a preference loss needs them per token, before any reduction). Peak extra memory: one chunk of
logits (`chunk_tokens` × V, ~256 MiB in float32 by default) instead of all of them. One more LM-head
matmul per step is the price.

The model is still called as a whole (its wrappers' hooks — DDP, FSDP, DeepSpeed ZeRO-3, PEFT —
all run): for the one call, its LM head module computes the log-probs instead of logits
(`_head_computes_logps`). Where that cannot be exact — a head that is not a plain `nn.Linear` (LoRA
on the LM head), or a model that changes its logits after the head (Gemma-2's soft-capping, Cohere's
logit scale: caught because what the model returns differs from what the head produced) — the batch is
scored from the full logits instead, with a warning, once per model.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from dataclasses import dataclass

import torch

from focalpo.train.losses import chosen_nll, nll_token_mean, selective_log_softmax, weighted_logps

DEFAULT_CHUNK_ELEMENTS = 1 << 26  # logits per chunk: 256 MiB in float32


def first_scored_token(batch: dict[str, torch.Tensor]) -> int:
    """Index of the first token any row needs a log-prob for: the earliest completion token (≥ 1).

    Tokens before it are prompt in every row, so the LM head never has to score them.
    """
    first = batch["completion_mask"].argmax(dim=-1)  # (2B,) first completion index of each row
    return max(int(first.min()), 1)


def weighted_pair_logps(logps: torch.Tensor, batch: dict[str, torch.Tensor], s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) Σ_t w_t log π(y_t), each (B,), from (2B, T−s) token log-probs starting at token s."""
    weights = batch["loss_weights"][:, s:].to(logps.dtype)  # (2B, T−s), aligned with logps
    return weighted_logps(logps, weights).chunk(2)


# --------------------------------------------------------------------------------------------------
# The chunked LM head


def _compute_dtype(hidden: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The dtype the head's matmul runs in: autocast's where it is on (as `nn.Linear` would), else the weight's."""
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


class _LinearTokenLogps(torch.autograd.Function):
    """log_softmax(h Wᵀ + b)[target] for N tokens, `chunk` tokens at a time, logits recomputed in backward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk):
        cdt = _compute_dtype(hidden, weight)
        acc = torch.float64 if cdt == torch.float64 else torch.float32  # log-sum-exp never in 16 bits
        w, b = weight.to(cdt), None if bias is None else bias.to(cdt)
        logps = torch.empty(targets.shape, dtype=acc, device=hidden.device)
        lse = torch.empty_like(logps)
        for s in range(0, len(targets), chunk):
            logits = torch.nn.functional.linear(hidden[s : s + chunk].to(cdt), w, b).to(acc)  # (n, V)
            lse[s : s + chunk] = torch.logsumexp(logits, dim=-1)
            logps[s : s + chunk] = logits.gather(-1, targets[s : s + chunk, None])[:, 0] - lse[s : s + chunk]
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.chunk, ctx.cdt = chunk, cdt
        return logps

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        cdt, chunk = ctx.cdt, ctx.chunk
        w, b = weight.to(cdt), None if bias is None else bias.to(cdt)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=lse.dtype, device=weight.device) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=lse.dtype, device=bias.device) if need_b else None
        with torch.autocast(hidden.device.type, enabled=False):
            for s in range(0, len(targets), chunk):
                h = hidden[s : s + chunk].to(cdt)
                g = grad_out[s : s + chunk].to(lse.dtype)[:, None]  # (n, 1)
                p = torch.nn.functional.linear(h, w, b).to(lse.dtype)
                p.sub_(lse[s : s + chunk, None]).exp_()  # softmax, in place
                p.mul_(-g).scatter_add_(-1, targets[s : s + chunk, None], g)  # d/dlogits = g (onehot − softmax)
                d = p.to(cdt)
                if need_h:
                    grad_h[s : s + chunk] = (d @ w).to(hidden.dtype)
                if need_w:
                    if d.dtype == grad_w.dtype:
                        grad_w.addmm_(d.t(), h)
                    else:  # 16-bit matmul, accumulated over chunks in float32
                        grad_w += (d.t() @ h).to(grad_w.dtype)
                if need_b:
                    grad_b += p.sum(0)
        return (grad_h, None if grad_w is None else grad_w.to(weight.dtype),
                None if grad_b is None else grad_b.to(bias.dtype), None, None)


def linear_token_logps(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       targets: torch.Tensor, chunk_tokens: int = 0) -> torch.Tensor:
    """log_softmax(hidden @ weightᵀ + bias)[..., targets] without the (…, V) logits of all tokens.

    hidden: (..., H); weight: (V, H); targets: (...) int64 -> (...) float32 (float64 for float64
    inputs). Equals `token_logps`-style materialised log-probs up to rounding, and so do the gradients
    of hidden, weight and bias. `chunk_tokens` ≤ 0: as many tokens as make DEFAULT_CHUNK_ELEMENTS logits.
    """
    shape = targets.shape
    chunk = chunk_tokens if chunk_tokens > 0 else max(1, DEFAULT_CHUNK_ELEMENTS // weight.shape[0])
    flat = _LinearTokenLogps.apply(hidden.reshape(-1, hidden.shape[-1]), weight, bias, targets.reshape(-1), chunk)
    return flat.reshape(shape)


# --------------------------------------------------------------------------------------------------
# Whole-model scoring


def _plain_head(model) -> torch.nn.Linear | None:
    """The model's LM head if it is a plain linear layer (through DDP/FSDP/DeepSpeed/PEFT wrappers), else None."""
    from accelerate.utils import extract_model_from_parallel

    inner = extract_model_from_parallel(model)
    get = getattr(inner, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if isinstance(head, torch.nn.Linear) and not hasattr(head, "base_layer"):
        return head
    return None


@contextlib.contextmanager
def _head_computes_logps(head: torch.nn.Linear, targets: torch.Tensor, chunk_tokens: int,
                         select: tuple[torch.Tensor, torch.Tensor] | None = None):
    """For the calls inside, `head(hidden)` returns log π(targets) scored by the hidden states at `select`
    ((rows, positions) index tensors), or by positions 0..n−2 of every row (the last scores nothing).
    The produced tensor is kept in the yielded dict to check what the model returned."""
    produced: dict[str, torch.Tensor] = {}

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        scoring = hidden[select] if select is not None else hidden[:, :-1]
        produced["logps"] = linear_token_logps(scoring, head.weight, head.bias, targets, chunk_tokens)
        return produced["logps"]

    head.forward = forward  # an instance attribute: the module's hooks (FSDP, ZeRO-3) still run around it
    try:
        yield produced
    finally:
        del head.forward


_UNFIT: weakref.WeakSet = weakref.WeakSet()  # models found unfit for the chunked head: warned once, not tried again


def _fall_back(model, why: str) -> None:
    _UNFIT.add(model)
    warnings.warn(f"chunked log-probs are not exact for this model ({why}); scoring from the full logits",
                  stacklevel=3)


def _model_logps(model, kwargs: dict, targets: torch.Tensor, select, chunked: bool, chunk_tokens: int):
    """log π(targets) from one call of the model: through the chunked head, or from the full logits (a
    model found unfit once goes straight there: a second forward every step would double its cost)."""
    chunked = chunked and model not in _UNFIT
    head = _plain_head(model) if chunked else None
    if chunked and head is None:
        _fall_back(model, "its LM head is not a plain nn.Linear")
    if head is not None:
        with _head_computes_logps(head, targets, chunk_tokens, select) as produced:
            out = model(**kwargs)
        mine = produced.get("logps")
        if mine is not None and out.logits.shape == mine.shape and torch.equal(out.logits, mine):
            return out.logits  # (a wrapper may return a copy: DDP does; it stays in the graph)
        _fall_back(model, "it transforms the LM head's output")
    logits = model(**kwargs).logits
    if select is not None:
        return selective_log_softmax(logits[select][None], targets[None])[0]
    return selective_log_softmax(logits[:, :-1], targets)


def batch_token_logps(model, batch: dict[str, torch.Tensor], *, chunked: bool = True,
                      chunk_tokens: int = 0) -> tuple[torch.Tensor, int]:
    """(logps, s): log π(y_t) for tokens t = s..T−1 of every row of a padded (2B, T) batch, (2B, T−s),
    s = first_scored_token.

    The model sees positions 0..T−1 and its head only positions s−1..T−1 (`logits_to_keep`), which
    spares it the shared prompt. `chunked` (default): the head scores the tokens `chunk_tokens` at a
    time without materialising the logits (module docstring); else from the (2B, T−s+1, V) logits.
    Slice weights and masks `[:, s:]` to line up.
    """
    s = first_scored_token(batch)
    ids = batch["input_ids"]
    kwargs = dict(input_ids=ids, attention_mask=batch["attention_mask"], use_cache=False, logits_to_keep=ids.shape[1] - s + 1)
    return _model_logps(model, kwargs, ids[:, s:], None, chunked, chunk_tokens), s


# --------------------------------------------------------------------------------------------------
# Per-pair sums, padded or packed


@dataclass
class PairLogps:
    """What the losses and metrics need from one forward of a batch of B pairs."""

    chosen: torch.Tensor  # (B,) Σ_t w_t log π(y⁺_t)
    rejected: torch.Tensor  # (B,) Σ_t w_t log π(y⁻_t)
    nll: torch.Tensor  # () −Σ log π(y⁺_t) / |y⁺| over the chosen completion tokens of the batch
    mass: tuple[torch.Tensor, torch.Tensor]  # (B,), (B,) Σ_t w_t per side, for length-normalised losses
    weighted_tokens: torch.Tensor  # () completion tokens with w ≠ 0, both sides
    completion_tokens: torch.Tensor  # ()
    focus: tuple[torch.Tensor, torch.Tensor] | None = None  # (B,) each, Σ over the localised tokens, no graph


def pair_logps(model, batch: dict[str, torch.Tensor], **logps_options) -> PairLogps:
    """Per-pair weighted log-probs of a padded batch (`PreferenceCollator`) or a packed one
    (`focalpo.train.packing.PackedPairCollator`); `logps_options`: `chunked`, `chunk_tokens`."""
    from focalpo.train.packing import PACKED_KEY

    if PACKED_KEY in batch:
        return _packed_pair_logps(model, batch, **logps_options)
    logps, s = batch_token_logps(model, batch, **logps_options)  # (2B, T−s)
    chosen, rejected = weighted_pair_logps(logps, batch, s)
    completion = batch["completion_mask"]
    chosen_mask = completion[:, s:].chunk(2)[0]
    focus = None
    if "focus_weights" in batch:
        focus = weighted_pair_logps(logps.detach(), {"loss_weights": batch["focus_weights"]}, s)
    return PairLogps(
        chosen, rejected, nll_token_mean(chosen_nll(logps.chunk(2)[0], chosen_mask), chosen_mask),
        tuple(batch["loss_weights"].sum(-1).chunk(2)),
        ((batch["loss_weights"] != 0) & completion.bool()).sum(), completion.sum(), focus,
    )


def attention_mask_for(model, mask: torch.Tensor) -> torch.Tensor:
    """The packed batch's boolean (R, 1, L, L) mask as the model's attention takes a custom 4D mask:
    boolean for SDPA, additive (0 / dtype min) for eager attention."""
    from accelerate.utils import extract_model_from_parallel

    inner = extract_model_from_parallel(model)
    impl = getattr(inner.config, "_attn_implementation", None) or "eager"
    if impl == "sdpa":
        return mask
    if impl == "eager":
        dtype = next(inner.parameters()).dtype
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
    raise ValueError(f"prefix sharing / padding-free batches need attn_implementation 'sdpa' or 'eager' (a custom "
                     f"4D mask), not {impl!r}; set prefix_sharing=false padding_free=false")


def packed_token_logps(model, batch: dict[str, torch.Tensor], *, chunked: bool = True,
                       chunk_tokens: int = 0) -> torch.Tensor:
    """log π of every scored token of a packed batch, (N,), in the batch's `score_*` order."""
    select = (batch["score_row"], batch["score_src"])
    kwargs = dict(input_ids=batch["input_ids"], attention_mask=attention_mask_for(model, batch["attention_mask"]),
                  position_ids=batch["position_ids"], use_cache=False)
    return _model_logps(model, kwargs, batch["score_tgt"], select, chunked, chunk_tokens)


def _packed_pair_logps(model, batch, **logps_options) -> PairLogps:
    logps = packed_token_logps(model, batch, **logps_options)  # (N,)
    n, pair = int(batch["num_pairs"]), batch["score_pair"]

    def per_pair(values: torch.Tensor) -> torch.Tensor:  # (N,) -> (B,): summed over each pair's tokens
        return values.new_zeros(n).index_add(0, pair, values)

    m_c, m_r = batch["chosen_mask"], batch["rejected_mask"]
    w_c, w_r = batch["chosen_weights"], batch["rejected_weights"]
    focus = None
    if "focus_chosen" in batch:
        seen = logps.detach()
        focus = (per_pair(batch["focus_chosen"].to(seen.dtype) * seen),
                 per_pair(batch["focus_rejected"].to(seen.dtype) * seen))
    return PairLogps(
        per_pair(w_c.to(logps.dtype) * logps), per_pair(w_r.to(logps.dtype) * logps),
        -(m_c.to(logps.dtype) * logps).sum() / m_c.sum().clamp(min=1), (per_pair(w_c), per_pair(w_r)),
        ((w_c != 0) & (m_c != 0)).sum() + ((w_r != 0) & (m_r != 0)).sum(), (m_c + m_r).sum().long(), focus,
    )
