"""The demo report as blocks, rendered to markdown and to self-contained HTML; the page helpers of the viewer.

    blocks = report_blocks(demo, plots)     # [("h", 1, "focalpo demo"), ("table", header, rows), ...]
    markdown(blocks)                        # report.md  (== format_report(demo, plots))
    render_html(blocks)                     # report.html: inline CSS, plots as data: URIs, no script
    format_table(aggregate(seeds))          # the pass@k table alone, markdown (printed by `focalpo demo`)

A block is (kind, ...): ("h", level, text), ("p", text with `code`), ("table", header, rows),
("img", name, alt, png bytes), ("link", href, text). `demo` is the dict `run_demo` writes as demo.json:
{"preset", "config" (its "arms"), "seeds": [{"seed", "results", "results_oracle", "pairs", "summaries", "audit",
"continuation", "training" (per arm, its "validation"), "stage_seconds", "training_skipped"}], "paired",
"paired_oracle", "wall_seconds"}. Every text is escaped in HTML; `html_page` and `json_in_script`
are shared with `focalpo.report.viewer` so that both pages look alike and never let data close a tag.
"""

from __future__ import annotations

import base64
import html
import json
import re
import statistics
from typing import Any

from focalpo.report.stats import aggregate

PASS_PNG, CURVES_PNG = "pass_at_1.png", "training_curves.png"
PIPELINES = ("focused", "codeflow")

escape = html.escape


# --------------------------------------------------------------------------------------------------
# tables


def _fmt(cell: dict | None, n_seeds: int) -> str:
    if cell is None:
        return "-"
    s = f"{100 * cell['mean']:.1f}"
    if cell.get("ci95") is not None:
        s += f" ± {100 * cell['ci95']:.1f}"
    return s + (f" (n={len(cell['values'])})" if len(cell["values"]) < n_seeds else "")


_PAIRED_NOTE = ("Greedy pass@1 of each method minus a baseline's on the same held-out tasks and seeds, in points: the "
                "mean difference, its 95 % paired-bootstrap interval (units: seed x task), the exact sign test's "
                "p-value over the tasks where the two differ (McNemar), the tasks better / worse, and the smallest "
                "difference these tasks would detect with 80 % power (MDD). `dpo` is the DPO arm trained on the same "
                "pipeline's pairs as the method.")


def paired_rows(paired: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the paired comparison table (`focalpo.report.stats.paired_table`), in points."""
    header = ["method", "vs", "mean diff", "95 % CI", "p", "better / worse", "units", "MDD (80 %)"]
    rows = []
    for method, by_base in paired.items():
        for base, c in by_base.items():
            lo, hi = c["ci95"]
            mdd = f"{100 * c['mdd80']:.1f}" if c.get("mdd80") is not None else "–"
            rows.append([method, base, f"{100 * c['mean_diff']:+.1f}", f"[{100 * lo:+.1f}, {100 * hi:+.1f}]",
                         f"{c['p_value']:.3g}", f"{c['better']} / {c['worse']}", str(c["units"]), mdd])
    return header, rows


def validation_rows(seeds: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the arms' validation metrics (seeds[i].training[arm].validation), mean over seeds."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in seeds:
        for arm, t in (r.get("training") or {}).items():
            for k, v in (t.get("validation") or {}).items():
                values.setdefault(arm, {}).setdefault(k, []).append(v)
    keys = ("eval_localized/margins", "eval_localized/accuracies", "eval_rewards/accuracies", "eval_loss")
    rows = [[arm, *(f"{statistics.fmean(m[k]):.3f}" if k in m else "-" for k in keys), str(max(map(len, m.values())))]
            for arm, m in values.items()]
    return ["arm", "localised margin", "localised accuracy", "accuracy (weighted)", "loss", "seeds"], rows


def table_rows(table: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the pass@k table in percent: "mean ± 95 % CI half-width" when several seeds."""
    n = max((len(c["values"]) for m in table.values() for c in m.values()), default=1)
    metrics = sorted({k for m in table.values() for k in m})
    header = ["method", *(f"{k} (mean ± 95 % CI)" if n > 1 else k for k in metrics)]
    return header, [[m, *(_fmt(table[m].get(k), n) for k in metrics)] for m in table]


def format_table(table: dict) -> str:
    """The pass@k table (percent) in markdown; "mean ± 95 % CI half-width" when several seeds."""
    return markdown([("table", *table_rows(table))]).rstrip("\n")


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


# --------------------------------------------------------------------------------------------------
# the report as blocks


def _plot_blocks(plots: dict, name: str, alt: str) -> list[tuple]:
    png, note = plots.get(name, (None, "not drawn"))
    return [("img", name, alt, png)] if png else [("p", f"No plot `{name}`: {note}.")]


def report_blocks(demo: dict, plots: dict | None = None, *, viewer: str | None = "pairs.html") -> list[tuple]:
    """The report as (kind, ...) blocks. `plots`: name -> (png or None, note); `viewer`: href of the pair
    viewer (None: no viewer was written, the report says so)."""
    seeds, plots = demo["seeds"], plots or {}
    n = len(seeds)
    ci = (", mean ± half-width of the 95 % Student-t confidence interval over seeds (n: seeds that have "
          "the method, when fewer)") if n > 1 else ""
    empty = [(run, [r["seed"] for r in seeds if not r["pairs"].get(run)]) for run in PIPELINES]
    blocks: list[tuple] = [
        ("h", 1, "focalpo demo"),
        *(("p", f"WARNING: `focalpo {run}` gave no preference pair in seed(s) {', '.join(map(str, which))}: "
                f"nothing in this report was trained on {run} pairs there.") for run, which in empty if which),
        ("p", f"Preset `{demo.get('preset', 'custom')}`, {n} seed(s)"
              + (" of one policy and teacher (the first seed's SFT runs)" if demo.get("config", {}).get("share_sft")
                 and n > 1 else "")
              + f"; pass@k in percent on held-out toy tasks{ci}. "
              "The numbers of a tiny model say the pipeline runs, not which scheme is better."),
        ("table", *table_rows(aggregate(seeds))),
    ]
    if plots:
        blocks += _plot_blocks(plots, PASS_PNG, "greedy pass@1 per method")
    arms = demo.get("config", {}).get("arms")
    if arms:
        by_pipeline: dict[str, list[str]] = {}
        for name, _, pipeline in arms:
            by_pipeline.setdefault(pipeline, []).append(f"`{name}`")
        blocks.append(("p", "Each arm is one weight scheme trained from the SFT policy on one pipeline's pairs, as in "
                            "its paper: " + "; ".join(f"{', '.join(names)} on the {pipeline} pairs"
                                                      for pipeline, names in by_pipeline.items()) + "."))
    if demo.get("paired"):
        blocks += [("h", 2, "Paired differences"), ("p", _PAIRED_NOTE), ("table", *paired_rows(demo["paired"]))]
    validation = validation_rows(seeds)
    if validation[1]:
        blocks += [("h", 2, "Validation pairs: localised-token margin"),
                   ("p", "Held-out pairs of each arm's pipeline (every 5th), scored after training: β·(Σ over the "
                         "localised tokens of log π − log π_ref, chosen minus rejected), and the share of pairs where "
                         "it is positive; mean over seeds. Unlike the training margins it weighs every scheme's "
                         "tokens alike, so arms compare on one scale."),
                   ("table", *validation)]
    cont = [r for r in seeds if r.get("continuation")]
    if cont:
        blocks += [("h", 2, "Continuation test (Focused-DPO)"),
                   ("p", "The policy continues each focused pair's answer from the common prefix + the chosen middle, "
                         "and from the common prefix + the rejected middle (greedy, `focalpo analyze continue`); "
                         "the programs run on the reference tests. Focused-DPO reports 90.02 % vs 3.17 %."),
                   ("table", ["seed", "pairs", "pass@1 from chosen middle", "pass@1 from rejected middle",
                              "chosen better / worse"],
                    [[str(r["seed"]), str(r["continuation"]["pairs"]), f"{100 * r['continuation']['chosen_mid']:.1f}",
                      f"{100 * r['continuation']['rejected_mid']:.1f}",
                      f"{r['continuation']['chosen_better']} / {r['continuation']['rejected_better']}"] for r in cont])]
    oracle = [{"results": r["results_oracle"]} for r in seeds if r.get("results_oracle")]
    if oracle:
        counts = ", ".join(str(r["pairs"].get("oracle", 0)) for r in seeds)
        blocks += [("h", 2, "Trained on oracle-filtered pairs"),
                   ("p", "The same arms, budgets and seeds, trained on the pairs whose labels the toy world's "
                         f"reference tests confirm (chosen correct, rejected wrong): {counts} pairs per seed; greedy "
                         "pass@1 only. Beside the table above it separates label quality from token weighting."),
                   ("table", *table_rows(aggregate(oracle)))]
        if demo.get("paired_oracle"):
            blocks.append(("table", *paired_rows(demo["paired_oracle"])))
    pair_rows = [[str(r["seed"]), *(str(r["pairs"].get(k, 0)) for k in (*PIPELINES, "total"))] for r in seeds]
    if n > 1:
        pair_rows.append(["mean", *(f"{statistics.fmean(r['pairs'].get(k, 0) for r in seeds):.1f}"
                                    for k in (*PIPELINES, "total"))])
    blocks += [("h", 2, "Preference pairs"), ("table", ["seed", *PIPELINES, "total"], pair_rows)]
    blocks.append(("link", viewer, "Pair viewer (focalpo view): every pair, chosen vs rejected, character diff, "
                                   "token weights per scheme, the evidence behind each pair") if viewer else
                  ("p", "No pair viewer: no preference pairs."))
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


# --------------------------------------------------------------------------------------------------
# markdown


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown(blocks: list[tuple]) -> str:
    """The blocks in markdown (an image is referenced by its file name)."""
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
    return markdown(report_blocks(demo, plots))


# --------------------------------------------------------------------------------------------------
# HTML

CSS = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f3f3f3}pre{background:#fafafa;border:1px solid #ddd;padding:6px;white-space:pre-wrap;margin:0}
img{max-width:100%}code{background:#f3f3f3}"""


def html_page(title: str, body: str, css: str = "", script: str = "") -> str:
    """A whole HTML document: inline CSS (shared `CSS` + `css`), `body` and `script` as given (already HTML)."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}{css}</style></head>\n<body>\n{body}\n{script}</body></html>\n")


def json_in_script(value: Any) -> str:
    """JSON safe inside <script>: "</" cannot close the element, "<!--" cannot open a comment."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\u0021--")


def inline_code(text: str) -> str:
    """Escaped text whose `x` spans (markdown code) become <code>x</code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def render_html(blocks: list[tuple], title: str = "focalpo demo report") -> str:
    """The blocks as one self-contained HTML page (plots as data: URIs, no script)."""
    out: list[str] = []
    for kind, *a in blocks:
        if kind == "h":
            out.append(f"<h{a[0]}>{escape(a[1])}</h{a[0]}>")
        elif kind == "p":
            out.append(f"<p>{inline_code(a[0])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{escape(c)}</th>" for c in a[0])
            rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>\n" for row in a[1])
            out.append(f"<table><tr>{head}</tr>\n{rows}</table>")
        elif kind == "img":
            data = base64.b64encode(a[2]).decode("ascii")
            out.append(f'<p><img alt="{escape(a[1])}" src="data:image/png;base64,{data}"></p>')
        elif kind == "link":
            out.append(f'<p><a href="{escape(a[0])}">{escape(a[1])}</a></p>')
    return html_page(title, "\n".join(out))
