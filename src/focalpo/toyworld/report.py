"""The `focalpo demo` report: pass@k over seeds with 95 % confidence intervals, plots, and a static pair viewer.

    from focalpo.toyworld.report import write_report
    paths = write_report(Path("focalpo-demo"), demo)   # demo: the dict run_demo writes as demo.json

Files written into `out`, each atomically (a seed's directory is `out` itself with one seed, else
out/seed-<s>):
- report.md and report.html, same blocks and numbers: pass@k per method in percent (with several seeds
  mean ± half-width of the 95 % Student-t interval, t_{0.975,n-1}·s/√n), pairs per pipeline, the
  pipelines' status and filter counts, wall time per stage. The HTML is self-contained (inline CSS, plots
  as data: URIs) and links to pairs.html;
- pass_at_1.png (greedy pass@1 per method, error bars = 95 % CI) and training_curves.png (loss and
  rewards/margins per step of each scheme's run, first seed). A plot without data is not written (a
  stale one is removed) and the report says why;
- pairs.html: up to 12 pairs of data/pairs.jsonl, both pipelines when present, chosen beside rejected,
  every completion token coloured by its weight under a scheme picked in a <select>
  (`focalpo.weights` with the seed's SFT tokenizer and each run's scheme options), plus the focused
  record's pass matrix and PageRank scores or the CodeFlow record's debugging history, found by the
  pair's meta task_id. Model output is escaped everywhere; the only script is the scheme switch.

matplotlib, yaml and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import random
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from focalpo.io import atomic_write_bytes

PASS_PNG, CURVES_PNG = "pass_at_1.png", "training_curves.png"
PIPELINES = ("focused", "codeflow")
# two-sided 95 %: t_{0.975, df} for df = 1..30; beyond, the normal 1.96 (2.040 at df 31: at most 4 % narrow)
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
         2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
         2.0518, 2.0484, 2.0452, 2.0423)


# --------------------------------------------------------------------------------------------------
# numbers


def t_critical(df: int) -> float:
    """t_{0.975, df}, the two-sided 95 % critical value of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return T_975[df - 1] if df <= len(T_975) else 1.96


def mean_ci(values: list[float]) -> dict:
    """mean, sample std, ci95 (half-width t_{0.975,n-1}·s/√n; None for one value) and the values."""
    n = len(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std,
            "ci95": t_critical(n - 1) * std / math.sqrt(n) if n > 1 else None, "values": list(values)}


def aggregate(seeds: list[dict]) -> dict:
    """method -> metric -> mean_ci over the seeds that have it."""
    table: dict = {}
    for r in seeds:
        for method, scores in r["results"].items():
            for metric, v in scores.items():
                table.setdefault(method, {}).setdefault(metric, []).append(v)
    return {m: {k: mean_ci(v) for k, v in metrics.items()} for m, metrics in table.items()}


def _fmt(cell: dict | None, n_seeds: int) -> str:
    if cell is None:
        return "-"
    s = f"{100 * cell['mean']:.1f}"
    if cell.get("ci95") is not None:
        s += f" ± {100 * cell['ci95']:.1f}"
    return s + (f" (n={len(cell['values'])})" if len(cell["values"]) < n_seeds else "")


def _table_rows(table: dict) -> tuple[list[str], list[list[str]]]:
    n = max((len(c["values"]) for m in table.values() for c in m.values()), default=1)
    metrics = sorted({k for m in table.values() for k in m})
    header = ["method", *(f"{k} (mean ± 95 % CI)" if n > 1 else k for k in metrics)]
    return header, [[m, *(_fmt(table[m].get(k), n) for k in metrics)] for m in table]


def format_table(table: dict) -> str:
    """The pass@k table (percent) in markdown; "mean ± 95 % CI half-width" when several seeds."""
    return _markdown([("table", *_table_rows(table))]).rstrip("\n")


# --------------------------------------------------------------------------------------------------
# the report as blocks, rendered to markdown and to HTML


def _counts_rows(seeds: list[dict]) -> tuple[list[str], list[list[str]]]:
    keys = {"focused": (("problems", "with_correct", "pairs"), ("status", "dropped")),
            "codeflow": (("problems", "reached_sandbox", "candidate_pairs", "pairs_kept"),
                         ("status", "rejected_reasons", "filters"))}
    columns: list[dict[str, Any]] = []
    for r in seeds:
        col: dict[str, Any] = {}
        for run, (scalars, groups) in keys.items():
            summary = r.get("summaries", {}).get(run, {})
            col.update({f"{run} {k}": summary[k] for k in scalars if k in summary})
            col.update({f"{run} {g}: {k}": v for g in groups for k, v in (summary.get(g) or {}).items()})
        columns.append(col)
    names = list(dict.fromkeys(k for col in columns for k in col))
    rows = [[k, *(str(col.get(k, 0 if ":" in k else "-")) for col in columns)] for k in names]
    return ["count", *(f"seed {r['seed']}" for r in seeds)], rows


def _stage_rows(seeds: list[dict]) -> tuple[list[str], list[list[str]]]:
    stages = list(dict.fromkeys(s for r in seeds for s in r.get("stage_seconds", {})))
    if len(seeds) == 1:
        return ["stage", "seconds"], [[s, f"{seeds[0]['stage_seconds'][s]:.1f}"] for s in stages]
    rows = []
    for s in stages:
        per_seed = [r.get("stage_seconds", {}).get(s) for r in seeds]
        mean = statistics.fmean(v for v in per_seed if v is not None)
        rows.append([s, f"{mean:.1f}", *("-" if v is None else f"{v:.1f}" for v in per_seed)])
    return ["stage", "mean s", *(f"seed {r['seed']}" for r in seeds)], rows


def _plot_blocks(plots: dict, name: str, alt: str) -> list[tuple]:
    png, note = plots.get(name, (None, "not drawn"))
    return [("img", name, alt, png)] if png else [("p", f"No plot `{name}`: {note}.")]


def report_blocks(demo: dict, plots: dict | None = None) -> list[tuple]:
    """The report as (kind, ...) blocks: h, p, table, img, link. `plots`: name -> (png or None, note)."""
    seeds, plots = demo["seeds"], plots or {}
    n = len(seeds)
    ci = (", mean ± half-width of the 95 % Student-t confidence interval over seeds (n: seeds that have "
          "the method, when fewer)") if n > 1 else ""
    blocks: list[tuple] = [
        ("h", 1, "focalpo demo"),
        ("p", f"Preset `{demo.get('preset', 'custom')}`, {n} seed(s); pass@k in percent on held-out toy tasks{ci}. "
              "The numbers of a tiny model say the pipeline runs, not which scheme is better."),
        ("table", *_table_rows(aggregate(seeds))),
    ]
    if plots:
        blocks += _plot_blocks(plots, PASS_PNG, "greedy pass@1 per method")
    pair_rows = [[str(r["seed"]), *(str(r["pairs"].get(k, 0)) for k in (*PIPELINES, "total"))] for r in seeds]
    if n > 1:
        pair_rows.append(["mean", *(f"{statistics.fmean(r['pairs'].get(k, 0) for r in seeds):.1f}"
                                    for k in (*PIPELINES, "total"))])
    blocks += [("h", 2, "Preference pairs"), ("table", ["seed", *PIPELINES, "total"], pair_rows),
               ("link", "pairs.html", "Pair viewer: chosen vs rejected, token weights per scheme, records")]
    audit_rows = [[str(r["seed"]), run, str(a["pairs"]), str(a["chosen_correct"]), str(a["rejected_incorrect"])]
                  for r in seeds for run, a in (r.get("audit") or {}).items()]
    if audit_rows:
        blocks += [("p", "Pair labels checked against the toy world's reference tests (the pipelines only see "
                         "model-written tests): chosen programs that are really correct, rejected ones that are "
                         "really wrong."),
                   ("table", ["seed", "pipeline", "pairs", "chosen correct", "rejected incorrect"], audit_rows)]
    blocks += [("p", f"Seed {r['seed']}: training skipped: {r['training_skipped']}.")
               for r in seeds if r.get("training_skipped")]
    blocks += [("h", 2, "Pipeline status and filter counts"), ("table", *_counts_rows(seeds))]
    if plots:
        blocks += [("h", 2, "Training curves"), *_plot_blocks(plots, CURVES_PNG, "loss and reward margin per step")]
    blocks += [("h", 2, "Wall time per stage" + (" (mean over seeds)" if n > 1 else "")),
               ("table", *_stage_rows(seeds))]
    if "wall_seconds" in demo:
        blocks.append(("p", f"Total wall time: {demo['wall_seconds']:.1f} s."))
    return blocks


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _markdown(blocks: list[tuple]) -> str:
    out: list[str] = []
    for kind, *a in blocks:
        if kind == "h":
            out.append("#" * a[0] + " " + a[1])
        elif kind == "p":
            out.append(a[0])
        elif kind == "table":
            out += [_md_row(a[0]), "|---" * len(a[0]) + "|", *map(_md_row, a[1])]
        elif kind == "img":
            out.append(f"![{a[1]}]({a[0]})")
        elif kind == "link":
            out.append(f"[{a[1]}]({a[0]})")
        out.append("")
    return "\n".join(out)


def format_report(demo: dict, plots: dict | None = None) -> str:
    """report.md: the blocks of `report_blocks` in markdown (plots referenced by file name)."""
    return _markdown(report_blocks(demo, plots))


_e = html.escape
CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f3f3f3}pre{background:#fafafa;border:1px solid #ddd;padding:6px;white-space:pre-wrap;margin:0}
img{max-width:100%}code{background:#f3f3f3}"""


def _html_page(title: str, body: str, css: str = "", script: str = "") -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{CSS}{css}</style></head>\n<body>\n{body}\n{script}</body></html>\n")


def _html(blocks: list[tuple]) -> str:
    out: list[str] = []
    for kind, *a in blocks:
        if kind == "h":
            out.append(f"<h{a[0]}>{_e(a[1])}</h{a[0]}>")
        elif kind == "p":  # `x` is markdown code
            out.append("<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(a[0])) + "</p>")
        elif kind == "table":
            head = "".join(f"<th>{_e(c)}</th>" for c in a[0])
            rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>\n" for row in a[1])
            out.append(f"<table><tr>{head}</tr>\n{rows}</table>")
        elif kind == "img":
            data = base64.b64encode(a[2]).decode("ascii")
            out.append(f'<p><img alt="{_e(a[1])}" src="data:image/png;base64,{data}"></p>')
        elif kind == "link":
            out.append(f'<p><a href="{_e(a[0])}">{_e(a[1])}</a></p>')
    return _html_page("focalpo demo report", "\n".join(out))


# --------------------------------------------------------------------------------------------------
# plots (matplotlib's Figure + the Agg canvas it picks for PNG: no pyplot, no global backend)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def plot_pass_at_1(table: dict) -> tuple[bytes | None, str]:
    """(PNG, "") of greedy pass@1 per method with 95 % CI error bars, or (None, why not)."""
    methods = [m for m in table if "pass@1" in table[m]]
    if not methods:
        return None, "no pass@1 result"
    from matplotlib.figure import Figure

    cells = [table[m]["pass@1"] for m in methods]
    several = any(c.get("ci95") is not None for c in cells)
    fig = Figure(figsize=(1.5 + 0.9 * len(methods), 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(methods, [100 * c["mean"] for c in cells], color="#4c72b0",
           yerr=[100 * (c.get("ci95") or 0.0) for c in cells] if several else None, capsize=4)
    ax.set_ylabel("greedy pass@1 (%)")
    ax.set_ylim(bottom=0)
    ax.set_title("held-out pass@1" + (" (mean ± 95 % CI over seeds)" if several else ""), fontsize=10)
    return _png(fig), ""


def plot_training_curves(seed_dir: Path, schemes: list[str], seed: int = 0) -> tuple[bytes | None, str]:
    """(PNG, "") of loss and rewards/margins per step for each scheme's metrics.jsonl, or (None, why not)."""
    from focalpo.train.run import read_metrics

    runs = {}
    for s in schemes:
        path = seed_dir / "models" / s / "metrics.jsonl"
        rows = [r for r in read_metrics(path) if "loss" in r and "rewards/margins" in r] if path.is_file() else []
        if rows:
            runs[s] = rows
    if not runs:
        return None, f"no training metrics in {seed_dir / 'models'}/<scheme>/metrics.jsonl (training skipped?)"
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for scheme, rows in runs.items():
        steps = [r.get("step", i + 1) for i, r in enumerate(rows)]
        for ax, key in zip(axes, ("loss", "rewards/margins")):
            ax.plot(steps, [r[key] for r in rows], label=scheme)
    for ax, key in zip(axes, ("loss", "rewards/margins")):
        ax.set_xlabel("step")
        ax.set_title(f"{key} (seed {seed})", fontsize=10)
    axes[0].legend(fontsize=8)
    return _png(fig), ""


# --------------------------------------------------------------------------------------------------
# pair viewer


def _read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file, [] when it does not exist; a bad row raises naming file:line."""
    from focalpo.io import iter_json_rows

    return [row for _, row in iter_json_rows(path)] if path.is_file() else []


def seed_dirs(out: Path, demo: dict) -> list[tuple[int, Path]]:
    """(seed, directory) of every seed: `out` itself with one seed, else out/seed-<s>."""
    seeds = [r["seed"] for r in demo["seeds"]]
    return [(s, out if len(seeds) == 1 else out / f"seed-{s}") for s in seeds]


@dataclass
class ShownPair:
    """A pair of a seed's data/pairs.jsonl (row `index`, 0-based), its pipeline and that pipeline's record."""

    seed: int
    index: int
    pair: Any  # focalpo.pairs.PreferencePair
    pipeline: str  # focused | codeflow | unknown
    record: dict | None

    @property
    def key(self) -> str:
        return f"s{self.seed}-p{self.index}"


def load_pairs(seed: int, d: Path) -> list[ShownPair]:
    """Every pair of d/data/pairs.jsonl with its record, found by meta task_id in runs/<pipeline>/records.jsonl."""
    from focalpo.pairs import read_pairs

    path = d / "data" / "pairs.jsonl"
    if not path.is_file():
        return []
    records = {p: {r.get("task_id"): r for r in _read_jsonl(d / "runs" / p / "records.jsonl")} for p in PIPELINES}
    out = []
    for i, pair in enumerate(read_pairs(path)):
        task = pair.meta.get("task_id")
        pipeline = next((p for p in PIPELINES if task in records[p]), None) or (
            "focused" if "chosen_index" in pair.meta else "codeflow" if "chosen_iteration" in pair.meta else "unknown")
        out.append(ShownPair(seed, i, pair, pipeline, records.get(pipeline, {}).get(task)))
    return out


def pick_pairs(items: list[ShownPair], n: int) -> list[ShownPair]:
    """Up to `n` pairs, taken in turn from each pipeline's seeded shuffle (deterministic), in (seed, row) order."""
    groups: dict[str, list[ShownPair]] = {}
    for it in items:
        groups.setdefault(it.pipeline, []).append(it)
    for name, group in groups.items():
        group.sort(key=lambda s: (s.seed, s.index))
        random.Random(f"focalpo-report:{name}").shuffle(group)
    picked: list[ShownPair] = []
    while len(picked) < n and any(groups.values()):
        for name in sorted(groups):
            if groups[name] and len(picked) < n:
                picked.append(groups[name].pop(0))
    return sorted(picked, key=lambda s: (s.seed, s.index))


def _scheme_options(d: Path, scheme: str) -> dict:
    """The scheme options the demo trained `scheme` with (models/<scheme>/train_config.yaml), else {}."""
    path = d / "models" / scheme / "train_config.yaml"
    if not path.is_file():
        return {}
    import yaml

    return (yaml.safe_load(path.read_text()) or {}).get("scheme_options") or {}


def _pieces(text: str, offsets, origin: int, end: int, tokens: list[str]) -> list[tuple[str, str]]:
    """(kind, text) pieces of one completion: "tok" per token (its characters of the completion), "special"
    per token past the text or zero-width (shown as the token), "gap" for characters no token covers."""
    out, pos = [], 0
    for (s, e), token in zip(offsets, tokens):
        if s - origin >= end or e == s:
            out.append(("special", token))
            continue
        a, b = max(s - origin, pos), min(e - origin, end)
        if a > pos:
            out.append(("gap", text[pos:a]))
        out.append(("tok", text[a:b] if b > a else ""))
        pos = max(pos, b)
    return out + ([("gap", text[pos:end])] if pos < end else [])


def token_views(d: Path, shown: list[ShownPair], schemes: list[str]) -> tuple[dict, dict, list[str]]:
    """(pieces: key -> side -> pieces, weights: key -> scheme -> side -> token weights, notes) for one seed,
    with the SFT model's tokenizer; no tokenizer: empty dicts and a note."""
    sft = d / "models" / "sft"
    if not shown:
        return {}, {}, []
    if not sft.is_dir():
        return {}, {}, [f"no tokenizer at {sft}: token weights not shown for seed {shown[0].seed}"]
    from focalpo.weights import tokenize_pairs, weigh_tokenized

    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(sft))
        tokenized = tokenize_pairs([s.pair for s in shown], tokenizer)
    except (OSError, ValueError) as e:
        return {}, {}, [f"cannot tokenize with {sft} ({e}): token weights not shown for seed {shown[0].seed}"]
    pieces, weights, notes = {}, {s.key: {} for s in shown}, []
    for s, t in zip(shown, tokenized):
        pieces[s.key] = {side: _pieces(getattr(s.pair, f"{side}_text"), getattr(t, f"{side}_offsets"),
                                       getattr(t, f"{side}_origin"), getattr(t, f"{side}_end"),
                                       tokenizer.convert_ids_to_tokens(getattr(t, f"{side}_ids")))
                         for side in ("chosen", "rejected")}
    for scheme in schemes:
        # max_length None: every token, none truncated (training may cut long pairs). The demo's schemes draw
        # nothing at random; diff-aug / hybrid would draw per position in `shown`, not in the training file.
        try:
            examples = weigh_tokenized([s.pair for s in shown], tokenized, scheme, **_scheme_options(d, scheme))
        except ValueError as e:
            notes.append(f"scheme {scheme} not shown for seed {shown[0].seed}: {e}")
            continue
        for s, ex in zip(shown, examples):
            weights[s.key][scheme] = {"chosen": ex["chosen_weights"], "rejected": ex["rejected_weights"]}
    return pieces, weights, notes


def _code_html(key: str, side: str, text: str, pieces: list | None) -> str:
    if pieces is None:
        return f"<pre>{_e(text)}</pre>"
    spans, i = [], 0
    for kind, piece in pieces:
        if kind == "gap":
            spans.append(_e(piece))
        else:
            cls = "tok special" if kind == "special" else "tok"
            spans.append(f'<span class="{cls}" data-i="{i}">{_e(piece)}</span>')
            i += 1
    return f'<pre class="code" data-pair="{key}" data-side="{side}">{"".join(spans)}</pre>'


def _prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt)


def _focused_html(rec: dict, meta: dict) -> str:
    if not rec.get("pass_matrix"):
        return f"<p>No pass matrix in the record (status {_e(str(rec.get('status')))}).</p>"
    gt, role = set(rec.get("ground_truth_tests", [])), {meta.get("chosen_index"): " chosen",
                                                        meta.get("rejected_index"): " rejected"}
    head = "".join(f'<th title="{_e(t)}">t{j}{" (gt)" if j in gt else ""}</th>' for j, t in enumerate(rec["tests"]))
    rows = []
    for i, row in enumerate(rec["pass_matrix"]):
        cells = "".join(f'<td class="{"pass" if ok else "fail"}" title="{_e(rec["reasons"][i][j] or "pass")}">'
                        f'{"✓" if ok else "✗"}</td>' for j, ok in enumerate(row))
        rows.append(f"<tr><th>p{i}{role.get(i, '')}</th><td>{rec['code_scores'][i]:.3g}</td>"
                    f"<td>{rec['ranks'][i]}</td>{cells}</tr>")
    scores = "".join(f"<td>{v:.3g}</td>" for v in rec["test_scores"])
    tests = "".join(f"<li><pre>{_e(t)}</pre> PageRank {s:.3g}</li>" for t, s in zip(rec["tests"], rec["test_scores"]))
    programs = "".join(f"<li><pre>{_e(p)}</pre></li>" for p in rec["programs"])
    return (f"<h4>Pass matrix (programs × tests; gt = ground-truth test) and PageRank scores</h4>"
            f'<table class="matrix"><tr><th>program</th><th>PageRank</th><th>rank</th>{head}</tr>{"".join(rows)}'
            f'<tr><th>test PageRank</th><td></td><td></td>{scores}</tr></table>'
            f'<details><summary>tests</summary><ol start="0">{tests}</ol></details>'
            f'<details><summary>all programs</summary><ol start="0">{programs}</ol></details>')


def _codeflow_html(rec: dict, meta: dict) -> str:
    out = [f"<details><summary>test file {_e(str(rec.get('test_file', '')))}</summary>"
           f"<pre>{_e(rec.get('test_code', ''))}</pre></details>", "<h4>Debugging history</h4>"]
    role = {meta.get("chosen_iteration"): " (chosen)", meta.get("rejected_iteration"): " (rejected)"}
    for v in rec.get("versions", []):
        it = v.get("iteration")
        if "format_error" in v:
            out.append(f"<h5>iteration {it}: format error {_e(str(v['format_error']))}</h5>"
                       f"<pre>{_e(v.get('message', ''))}</pre>")
            continue
        verdict = "passed" if v.get("passed") else f"failed ({_e(str(v.get('error_type', '')))})"
        out.append(f"<h5>iteration {it}{role.get(it, '')}: {verdict}</h5><pre>{_e(v.get('solution', ''))}</pre>")
        if v.get("feedback") or v.get("load_error"):
            out.append(f'<pre class="feedback">{_e(v.get("feedback") or v.get("load_error"))}</pre>')
    return "".join(out)


def _pair_html(s: ShownPair, pieces: dict | None) -> str:
    meta, labels = s.pair.meta, {"chosen": "chosen", "rejected": "rejected"}
    for side in labels:
        if s.pipeline == "focused" and f"{side}_index" in meta:
            labels[side] += f": program p{meta[f'{side}_index']}, rank {meta.get(f'{side}_rank')}"
        elif s.pipeline == "codeflow" and f"{side}_iteration" in meta:
            labels[side] += f": iteration {meta[f'{side}_iteration']}"
    sides = "".join(f"<div><h4>{_e(labels[side])}</h4>"
                    f"{_code_html(s.key, side, getattr(s.pair, f'{side}_text'), (pieces or {}).get(side))}</div>"
                    for side in ("chosen", "rejected"))
    task = meta.get("task_id", "?")
    if s.record is None:
        extra = f"<p>No {s.pipeline} record with task_id {_e(str(task))}.</p>"
    else:
        extra = (_focused_html if s.pipeline == "focused" else _codeflow_html)(s.record, meta)
    return (f'<section id="{s.key}"><h3>seed {s.seed} · data/pairs.jsonl line {s.index + 1} · {_e(s.pipeline)} · '
            f"task {_e(str(task))}</h3><details><summary>prompt and meta</summary>"
            f"<pre>{_e(_prompt_text(s.pair.prompt))}</pre><pre>{_e(json.dumps(meta, indent=1))}</pre></details>"
            f'<div class="sides">{sides}</div>{extra}</section>')


VIEWER_CSS = """.sides{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.tok.special{border:1px dashed #888;font-size:80%}.pass{background:#c8f0c8}.fail{background:#f6caca}section{border-top:2px solid #888;margin-top:1.5em}
.legend span{display:inline-block;padding:0 8px;margin-right:4px}.feedback{background:#fff4f0}"""
# The only script: paint each token (and legend swatch) from the selected scheme's precomputed weights.
VIEWER_JS = """<script>
const W = JSON.parse(document.getElementById('weights').textContent);
function colour(w) { return w <= 0 ? '#dddddd' : w <= 1 ? 'rgba(66,135,245,' + (0.15 + 0.35 * w) + ')'
                                                   : 'rgba(245,130,32,' + Math.min(0.3 + 0.2 * w, 0.9) + ')'; }
function paint() {
  const scheme = document.getElementById('scheme').value;
  document.querySelectorAll('.legend span').forEach(s => { s.style.background = colour(+s.dataset.w); });
  document.querySelectorAll('pre.code').forEach(pre => {
    const ws = ((W[pre.dataset.pair] || {})[scheme] || {})[pre.dataset.side] || [];
    pre.querySelectorAll('span.tok').forEach(t => {
      const w = ws[+t.dataset.i];
      t.style.background = w === undefined ? '' : colour(w);
      t.title = JSON.stringify(t.textContent) + '  weight ' + (w === undefined ? '-' : w);
    });
  });
}
document.getElementById('scheme').addEventListener('change', paint);
paint();
</script>
"""


def _json_in_script(value: Any) -> str:
    """JSON safe inside <script>: "</" cannot close the element."""
    return json.dumps(value).replace("</", "<\\/")


def pairs_html(out: Path, demo: dict, *, max_pairs: int = 12) -> str:
    """pairs.html (module doc): up to `max_pairs` pairs over all seeds, token weights of the demo's schemes."""
    from focalpo.toyworld.demo import SCHEMES

    schemes = list(demo.get("config", {}).get("schemes") or SCHEMES)
    loaded = [(seed, d, load_pairs(seed, d)) for seed, d in seed_dirs(out, demo)]
    picked = pick_pairs([s for _, _, items in loaded for s in items], max_pairs)
    counts = "; ".join(f"seed {seed}: {len(items)} pairs" if items else f"seed {seed}: no pairs in {d / 'data'}"
                       for seed, d, items in loaded)
    if not picked:
        return _html_page("focalpo demo: preference pairs", "<h1>Preference pairs</h1><p>No preference pairs to "
                          f"show ({_e(counts)}): neither pipeline produced a pair, so nothing was trained.</p>")
    pieces, weights, notes = {}, {}, []
    for seed, d, _ in loaded:
        seed_pieces, seed_weights, seed_notes = token_views(d, [s for s in picked if s.seed == seed], schemes)
        pieces.update(seed_pieces)
        weights.update(seed_weights)
        notes.extend(seed_notes)
    shown_schemes = [s for s in schemes if any(s in w for w in weights.values())]
    default = "focused" if "focused" in shown_schemes else (shown_schemes or [""])[0]
    options = "".join(f'<option{" selected" if s == default else ""}>{_e(s)}</option>' for s in shown_schemes)
    legend = "".join(f'<span data-w="{w}">{w}</span>' for w in (0, 0.5, 1, 2))
    body = [f"<h1>Preference pairs</h1><p>{len(picked)} pairs ({_e(counts)}), picked in turn from each pipeline "
            "(seeded, deterministic). Each completion token is coloured by its weight under the selected scheme "
            "(SFT tokenizer, TRL tokenisation, the run's scheme options, no truncation); hover for the token and "
            "its weight; dashed boxes are tokens past the text (end of turn / EOS).</p>",
            f'<p><label>Weight scheme <select id="scheme">{options}</select></label> '
            f'<span class="legend">weight: {legend}</span></p>',
            *(f"<p>{_e(n)}</p>" for n in notes), *(_pair_html(s, pieces.get(s.key)) for s in picked),
            f'<script type="application/json" id="weights">{_json_in_script(weights)}</script>']
    return _html_page("focalpo demo: preference pairs", "\n".join(body), VIEWER_CSS, VIEWER_JS)


# --------------------------------------------------------------------------------------------------
# entry point


def write_report(out: Path, demo: dict, *, max_pairs: int = 12) -> dict[str, Path]:
    """Write report.md, report.html, the two plots (when they have data) and pairs.html into `out`;
    returns name -> path of what was written."""
    out = Path(out)
    from focalpo.toyworld.demo import SCHEMES

    (first_seed, first_dir), *_ = seed_dirs(out, demo)
    schemes = list(demo.get("config", {}).get("schemes") or SCHEMES)
    plots = {PASS_PNG: plot_pass_at_1(aggregate(demo["seeds"])),
             CURVES_PNG: plot_training_curves(first_dir, schemes, first_seed)}
    blocks = report_blocks(demo, plots)
    files = {"report.md": _markdown(blocks).encode(), "report.html": _html(blocks).encode(),
             "pairs.html": pairs_html(out, demo, max_pairs=max_pairs).encode()}
    for name, (png, _) in plots.items():
        if png:
            files[name] = png
        else:
            (out / name).unlink(missing_ok=True)  # a plot left by an earlier run would contradict the report
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return {name: out / name for name in files}
