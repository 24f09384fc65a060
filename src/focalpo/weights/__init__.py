"""Weight schemes: localised pairs -> per-token weights, computed once per dataset (never in the forward pass).

    from focalpo.pairs import read_pairs
    from focalpo.weights import build_weighted_examples, weighted_token_fraction
    examples = build_weighted_examples(read_pairs("pairs.jsonl"), tokenizer, "target", max_length=2048)

- `schemes`: `SCHEMES` registry (dpo, rpo, target, target-rpo, focused, symmetric, diff-aug,
  hybrid) of pure functions pair -> character weights; `Scheme.nll` says whether to add α·NLL.
- `tokens`: TRL 1.16-identical tokenisation with offsets; character weights -> token weights.
- `build`: `build_weighted_examples` (cached on disk) and `weighted_token_fraction`.

Nothing heavy is imported here: the tokenizer is passed in, numpy loads when the cache is used.
"""

from focalpo.weights.build import (
    build_weighted_examples,
    compute_weighted_examples,
    weigh_tokenized,
    weighted_token_fraction,
)
from focalpo.weights.schemes import SCHEMES, CharWeights, PairWeights, Scheme, get_scheme
from focalpo.weights.tokens import TokenizedPair, token_weights, tokenize_pairs

__all__ = [
    "SCHEMES",
    "CharWeights",
    "PairWeights",
    "Scheme",
    "TokenizedPair",
    "build_weighted_examples",
    "compute_weighted_examples",
    "get_scheme",
    "token_weights",
    "tokenize_pairs",
    "weigh_tokenized",
    "weighted_token_fraction",
]
