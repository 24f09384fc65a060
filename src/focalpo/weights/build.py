"""Per-token weights for a whole dataset, computed once and cached on disk: the trainer's input.

    examples = build_weighted_examples(read_pairs("pairs.jsonl"), tokenizer, "target", max_length=2048)
    weighted_token_fraction(examples)   # {"chosen": 1.0, "rejected": 0.08}

Each example is a dict with TRL 1.16's ids under the names the trainer's collator pads —
`prompt_input_ids`, `chosen_input_ids`, `rejected_input_ids` (list[int]; TRL calls them
prompt_ids / chosen_ids / rejected_ids) — plus `chosen_weights`, `rejected_weights` (list[float],
one per completion id), `nll` (bool: add α·NLL on the chosen) and `pair_index`.

Truncation mirrors TRL 1.16: with `max_length`, prompt + completion keeps its first `max_length`
tokens (`truncation_mode="keep_start"`, done by TRL's collator) and pairs whose prompt alone has
`max_length` tokens or more are dropped (as TRL's dataset preparation does; `pair_index` says
which survived). `max_prompt_length` is *not* a TRL 1.16 option: when set, the prompt keeps its
last `max_prompt_length` tokens (older TRL's behaviour); leave it None to match TRL 1.16 exactly.

Cache: `$FOCALPO_CACHE` (default ~/.cache/focalpo)/weights/<key>.npz, key = sha256 of the tokenizer
(serialised backend, chat template, special tokens, library versions), the pairs (prompt,
completions, regions, order), the scheme, its resolved options, max lengths and seed. A JSON file
with the same key holds those settings in readable form. Writes are atomic (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from focalpo.io import atomic_write_bytes
from focalpo.pairs import PreferencePair
from focalpo.weights.schemes import line_spans_claim, resolve_options
from focalpo.weights.tokens import TokenizedPair, token_weights, tokenize_pairs

CACHE_FORMAT = 1
# the keys of a weighted example (`focalpo.train.collate` reads them)
ID_KEYS = ("prompt_input_ids", "chosen_input_ids", "rejected_input_ids")
WEIGHT_KEYS = ("chosen_weights", "rejected_weights")


def default_cache_dir() -> Path:
    return Path(os.environ.get("FOCALPO_CACHE") or Path.home() / ".cache" / "focalpo") / "weights"


def pair_rng(seed: int, index: int) -> random.Random:
    """The random source of pair `index`: independent of the other pairs and of the run."""
    return random.Random(f"focalpo-weights:{seed}:{index}")


def _check_needs(pairs: Sequence[PreferencePair], scheme: str, needs: tuple[str, ...]) -> None:
    for i, pair in enumerate(pairs):
        for name in needs:
            if getattr(pair, name) is None:
                source = pair.meta.get("source")
                where = f"pair {i}" + (f" ({source})" if source else "")
                raise ValueError(
                    f"{where}: field {name!r}: missing, and weight scheme {scheme!r} needs it; "
                    "localise the pairs first (focalpo localize)"
                )


def _truncate(ex: dict[str, Any], max_length: int | None, max_prompt_length: int | None) -> dict[str, Any] | None:
    if max_prompt_length is not None and len(ex["prompt_input_ids"]) > max_prompt_length:
        ex["prompt_input_ids"] = ex["prompt_input_ids"][len(ex["prompt_input_ids"]) - max_prompt_length :]
    if max_length is None:
        return ex
    room = max_length - len(ex["prompt_input_ids"])
    if room <= 0:  # TRL drops these: keep_start truncation would leave no completion token
        return None
    for side in ("chosen", "rejected"):
        ex[f"{side}_input_ids"] = ex[f"{side}_input_ids"][:room]
        ex[f"{side}_weights"] = ex[f"{side}_weights"][:room]
    return ex


def _example(index: int, tok: TokenizedPair, weights, nll: bool) -> dict[str, Any]:
    return {
        "prompt_input_ids": tok.prompt_ids,
        "chosen_input_ids": tok.chosen_ids,
        "rejected_input_ids": tok.rejected_ids,
        "chosen_weights": token_weights(tok.chosen_offsets, weights.chosen, tok.chosen_end, tok.chosen_origin),
        "rejected_weights": token_weights(tok.rejected_offsets, weights.rejected, tok.rejected_end, tok.rejected_origin),
        "nll": nll,
        "pair_index": index,
    }


def compute_weighted_examples(
    pairs: Sequence[PreferencePair],
    tokenizer,
    scheme: str = "dpo",
    *,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    seed: int = 0,
    **scheme_options: Any,
) -> list[dict[str, Any]]:
    """`build_weighted_examples` without the cache."""
    _, _, needs, _ = resolve_options(scheme, scheme_options)  # fail before tokenizing
    _check_needs(pairs, scheme, needs)
    return weigh_tokenized(
        pairs, tokenize_pairs(pairs, tokenizer), scheme,
        max_length=max_length, max_prompt_length=max_prompt_length, seed=seed, **scheme_options,
    )  # fmt: skip


def weigh_tokenized(
    pairs: Sequence[PreferencePair],
    tokenized: Sequence[TokenizedPair],
    scheme: str = "dpo",
    *,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    seed: int = 0,
    **scheme_options: Any,
) -> list[dict[str, Any]]:
    """The examples of already tokenized pairs (`tokenize_pairs`): scheme, token rule, truncation."""
    scheme_obj, options, needs, _ = resolve_options(scheme, scheme_options)
    _check_needs(pairs, scheme, needs)
    out = []
    for i, tok in enumerate(tokenized):
        weights = scheme_obj.weigh(pairs[i], pair_rng(seed, i), **options)
        ex = _truncate(_example(i, tok, weights, weights.nll), max_length, max_prompt_length)
        if ex is not None:
            out.append(ex)
    return out


def build_weighted_examples(
    pairs: Sequence[PreferencePair],
    tokenizer,
    scheme: str = "dpo",
    *,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    **scheme_options: Any,
) -> list[dict[str, Any]]:
    """TRL-identical ids and per-token weights of `scheme` for every pair; cached (see module docstring).

    Raises ValueError for an unknown scheme or option, or a pair lacking a field the scheme needs
    ("pair 3 (data.jsonl:4): field 'rejected_spans': missing, ...").
    """
    pairs = list(pairs)
    _, options, _, _ = resolve_options(scheme, scheme_options)  # fail fast, and key on the defaults too
    if not use_cache:
        return compute_weighted_examples(
            pairs, tokenizer, scheme, max_length=max_length, max_prompt_length=max_prompt_length, seed=seed, **options
        )
    settings = {
        "format": CACHE_FORMAT,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "data": pairs_fingerprint(pairs),
        "scheme": scheme,
        "options": options,
        "max_length": max_length,
        "max_prompt_length": max_prompt_length,
        "seed": seed,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode()).hexdigest()[:32]
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = load_examples(path / f"{key}.npz")
    if cached is not None:
        return cached
    examples = compute_weighted_examples(
        pairs, tokenizer, scheme, max_length=max_length, max_prompt_length=max_prompt_length, seed=seed, **options
    )
    save_examples(path / f"{key}.npz", examples)
    atomic_write_bytes(path / f"{key}.json", json.dumps(settings, indent=1, sort_keys=True, default=repr).encode())
    return examples


# --------------------------------------------------------------------------------------------------
# fingerprints


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of everything that decides the ids and offsets: backend JSON, template, specials, versions."""
    import tokenizers
    import transformers

    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    parts = [
        backend.to_str() if backend is not None else repr(tokenizer.get_vocab()),
        str(getattr(tokenizer, "chat_template", None)),
        json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str),
        type(tokenizer).__name__,
        transformers.__version__,
        tokenizers.__version__,
    ]
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def pairs_fingerprint(pairs: Sequence[PreferencePair]) -> str:
    """sha256 of the pairs in order (texts, regions, and which tokens their lines claim; the rest of
    `meta` does not count)."""
    h = hashlib.sha256()
    for p in pairs:
        record = p.to_json()
        record.pop("meta", None)
        record["focal_by"] = line_spans_claim(p)
        h.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# on-disk format: flat arrays + lengths in one .npz (no pickle)


def save_examples(path: Path, examples: list[dict[str, Any]]) -> None:
    import io

    import numpy as np

    arrays: dict[str, Any] = {}
    for key in ID_KEYS + WEIGHT_KEYS:
        seqs = [ex[key] for ex in examples]
        arrays[f"{key}.len"] = np.array([len(s) for s in seqs], dtype=np.int64)
        flat = [x for s in seqs for x in s]
        arrays[key] = np.array(flat, dtype=np.int64 if key in ID_KEYS else np.float64)
    arrays["nll"] = np.array([ex["nll"] for ex in examples], dtype=bool)
    arrays["pair_index"] = np.array([ex["pair_index"] for ex in examples], dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_examples(path: Path) -> list[dict[str, Any]] | None:
    """The examples saved at `path`, or None if there is no (readable) cache file."""
    import numpy as np

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            columns = {key: _split(data[key].tolist(), data[f"{key}.len"].tolist()) for key in ID_KEYS + WEIGHT_KEYS}
            nll, index = data["nll"].tolist(), data["pair_index"].tolist()
    except (OSError, KeyError, ValueError):  # a damaged file is recomputed, not trusted
        return None
    return [{**{k: columns[k][i] for k in columns}, "nll": nll[i], "pair_index": index[i]} for i in range(len(nll))]


def _split(flat: list, lengths: list[int]) -> list[list]:
    out, pos = [], 0
    for n in lengths:
        out.append(flat[pos : pos + n])
        pos += n
    return out


def weighted_token_fraction(examples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Fraction of completion tokens with a non-zero weight, pooled over examples, per side."""
    out = {}
    for side in ("chosen", "rejected"):
        total = sum(len(ex[f"{side}_weights"]) for ex in examples)
        nonzero = sum(1 for ex in examples for w in ex[f"{side}_weights"] if w != 0)
        out[side] = nonzero / total if total else 0.0
    return out
