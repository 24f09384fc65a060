"""`focalpo view PAIRS.jsonl`: one self-contained HTML page of any pairs file, every pair in it.

    focalpo view runs/fd/pairs.jsonl                                  # -> runs/fd/pairs.html
    focalpo view data/pairs.jsonl --tokenizer models/sft --scheme dpo --scheme focused --out pairs.html
    focalpo view data/pairs.jsonl --records runs/focused/records.jsonl,runs/codeflow/records.jsonl

    from focalpo.report.viewer import ViewConfig, view
    view(ViewConfig(pairs="runs/fd/pairs.jsonl"))   # {"out": ".../pairs.html", "pairs": 17, ...}

Works on what `focalpo focused`, `focalpo codeflow` and `focalpo localize` write. A pair's pipeline comes
from its meta (`chosen_index`: focused, `chosen_iteration`: codeflow, else other: localize or unknown);
its record is the row with the same `task_id` and pipeline in the records files (default: records.jsonl
beside the pairs file, when there is one). The page has
- an index of every pair (file line, pipeline, task, record status, audit verdict when the meta or record
  carries `audit`, evidence flags), with filters, a search over task ids and paging: a small inline
  script over an inline JSON payload; without the script every pair is shown;
- per pair: chosen beside rejected with the characters that differ marked inside changed lines
  (`diffview.char_diff`), the localised regions (LCS spans; the prefix/suffix middle), and with
  `tokenizer` every completion token coloured by its weight under the scheme picked, the value printed
  after the token; one line per scheme saying what it does, and which schemes give identical weights on
  these pairs (compared, not assumed: dpo and rpo differ by a loss term, α·NLL on the chosen);
- the evidence (`evidence`): pass matrix and PageRank with the consensus tests (not ground truth) and
  thin-evidence flags for focused pairs, the debugging history for CodeFlow pairs.

Weights are those training computes (`focalpo.weights`: TRL tokenisation, the scheme, `scheme_options`
per scheme, `seed` for the random schemes diff-aug and hybrid, with the pair's index in this file), with no
truncation. A scheme that needs a field a pair lacks (not localised) shows "-" for that pair.
One file, no external reference: inline CSS, script and data; model output is escaped everywhere and
"</" is escaped inside the JSON. The page is written atomically; an existing file is replaced only when
it is a page `focalpo view` wrote, or with `overwrite`. transformers loads only with a tokenizer.
Size: about 60 bytes per token per side with a tokenizer (the weights of every scheme ride on the token).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focalpo.io import atomic_write_bytes, iter_json_rows
from focalpo.pairs import PreferencePair
from focalpo.report import diffview, evidence
from focalpo.report.render import html_page, inline_code, json_in_script
from focalpo.report.weightview import Tokens, load_tokenizer, scheme_lines, token_views

GENERATOR = '<meta name="generator" content="focalpo view">'
_e = html.escape


@dataclass
class ViewConfig:
    """Options of `focalpo view` (module doc)."""

    pairs: str = ""
    out: str = ""  # "": <pairs without .jsonl>.html beside the pairs file
    tokenizer: str | None = None  # local directory or hub id: colour tokens by weight
    schemes: list[str] = field(default_factory=list)  # empty: every scheme of focalpo.weights.SCHEMES
    records: list[str] = field(default_factory=list)  # paths, or comma-separated lists; empty: records.jsonl beside the pairs file
    scheme_options: dict = field(default_factory=dict)  # scheme -> {option: value}, as `focalpo train` takes them
    seed: int = 0  # `focalpo train` seed: the random draws of diff-aug and hybrid
    page_size: int = 20
    title: str = ""
    overwrite: bool = False  # replace `out` even when it is not a page `focalpo view` wrote


@dataclass
class Shown:
    """One pair of the file: where it is, its pipeline, its record (or None), its evidence flags."""

    index: int
    where: str
    pair: PreferencePair
    pipeline: str  # focused | codeflow | other
    record: dict | None
    flags: list[str]

    @property
    def key(self) -> str:
        return f"p{self.index}"


def pipeline_of(meta: dict) -> str:
    return "focused" if "chosen_index" in meta else "codeflow" if "chosen_iteration" in meta else "other"


def _record_kind(row: dict) -> str:
    return "focused" if "pass_matrix" in row or "programs" in row else "codeflow" if "versions" in row else "other"


def default_out(pairs: Path) -> Path:
    name = pairs.name
    for ext in (".jsonl.gz", ".jsonl", ".json"):
        if name.endswith(ext):
            return pairs.with_name(name[: -len(ext)] + ".html")
    return pairs.with_name(name + ".html")


def load_records(paths: list[Path]) -> dict[tuple[str, Any], dict]:
    """(pipeline, task_id) -> record over the records files (a later row of the same task wins)."""
    out: dict[tuple[str, Any], dict] = {}
    for path in paths:
        for where, row in iter_json_rows(path):
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object (a pipeline record), got {type(row).__name__}")
            if "task_id" not in row:
                raise ValueError(f"{where}: field 'task_id': missing (not a focused or codeflow record?)")
            out[(_record_kind(row), row["task_id"])] = row
    return out


def load_pairs(path: Path, records: dict) -> list[Shown]:
    """Every pair of `path` (validated; errors name file:line and field) with its record and flags."""
    shown = []
    for i, (where, row) in enumerate(iter_json_rows(path)):
        pair = PreferencePair.from_json(row, where=where)
        pipeline = pipeline_of(pair.meta)
        record = records.get((pipeline, pair.meta.get("task_id")))
        flags = evidence.thin_evidence(record, pair.meta) if pipeline == "focused" else []
        shown.append(Shown(i, where, pair, pipeline, record, flags))
    if not shown:
        raise ValueError(f"{path}: no pairs")
    return shown


# --------------------------------------------------------------------------------------------------
# the page


def side_marks(pair: PreferencePair) -> dict[str, dict[str, tuple]]:
    """side -> mark -> spans: dc (characters that differ), sp (localised spans), mid (prefix/suffix middle)."""
    dc = diffview.char_diff(pair.chosen_text, pair.rejected_text)
    out = {}
    for k, side in enumerate(("chosen", "rejected")):
        mid = ()
        if pair.prefix_len is not None:
            mid = ((pair.prefix_len, getattr(pair, f"{side}_suffix_start")),)
        out[side] = {"dc": dc[k], "sp": getattr(pair, f"{side}_spans") or (), "mid": mid}
    return out


def _prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt)


def _label(s: Shown, side: str) -> str:
    meta, label = s.pair.meta, side
    if s.pipeline == "focused" and f"{side}_index" in meta:
        label += f": program p{meta[f'{side}_index']}, rank {meta.get(f'{side}_rank')}"
    elif s.pipeline == "codeflow" and f"{side}_iteration" in meta:
        label += f": iteration {meta[f'{side}_iteration']}"
    spans = getattr(s.pair, f"{side}_spans")
    if spans is not None:
        label += f" · {len(spans)} localised span(s) ({'D+' if side == 'chosen' else 'D-'})"
    return label


def _status(s: Shown) -> str:
    return str((s.record or {}).get("status", "-"))


def _audit(s: Shown) -> str:
    audit = s.pair.meta.get("audit", (s.record or {}).get("audit"))
    if audit is None:
        return ""
    return audit if isinstance(audit, str) else json.dumps(audit, sort_keys=True)


def pair_html(s: Shown, tokens: Tokens | None, schemes: list[str]) -> str:
    meta, task = s.pair.meta, s.pair.meta.get("task_id", "?")
    marks = side_marks(s.pair)
    sides = []
    for side in ("chosen", "rejected"):
        text = getattr(s.pair, f"{side}_text")
        pieces = weights = None
        if tokens is not None:
            pieces = tokens.pieces[s.index][side]
            weights = [(tokens.weights[n][s.index] or {}).get(side) for n in schemes]
        code = diffview.code_html(text, marks[side], pieces, weights, 0)
        sides.append(f'<div><h4>{_e(_label(s, side))}</h4><pre class="code" data-side="{side}">{code}</pre></div>')
    flags = "".join(f"<li>{_e(f)}</li>" for f in s.flags)
    if s.record is not None:
        extra = (evidence.focused_html if s.pipeline == "focused" else evidence.codeflow_html)(s.record, meta) \
            if s.pipeline in ("focused", "codeflow") else ""
    elif s.pipeline == "focused":
        extra = f"<p>No focused record with task_id {_e(str(task))}.</p>" + evidence.focused_meta_html(meta)
    elif s.pipeline == "codeflow":
        extra = f"<p>No codeflow record with task_id {_e(str(task))}: no debugging history.</p>"
    else:
        extra = ""
    audit = _audit(s)
    return (f'<section id="{s.key}" class="pair"><h3>{_e(s.where)} · {_e(s.pipeline)} · task {_e(str(task))} · '
            f"status {_e(_status(s))}{' · audit ' + _e(audit) if audit else ''}</h3>"
            + (f'<ul class="flags"><li><b>thin evidence</b></li>{flags}</ul>' if flags else "")
            + f"<details><summary>prompt and meta</summary><pre>{_e(_prompt_text(s.pair.prompt))}</pre>"
            f"<pre>{_e(json.dumps(meta, indent=1, ensure_ascii=False))}</pre></details>"
            f'<div class="sides">{"".join(sides)}</div>{extra}</section>')


def index_payload(shown: list[Shown]) -> list[dict]:
    """One row per pair for the script's index: key, file line, pipeline, task, status, audit, flag count."""
    return [{"k": s.key, "w": s.where.rsplit(":", 1)[-1], "p": s.pipeline, "t": str(s.pair.meta.get("task_id", "")),
             "s": _status(s), "a": _audit(s), "f": len(s.flags)} for s in shown]


VIEWER_CSS = """.sides{display:grid;grid-template-columns:1fr 1fr;gap:1em}.sides>div{min-width:0}
section.pair{border-top:2px solid #888;margin-top:1.5em}.pass{background:#c8f0c8}.fail{background:#f6caca}
.dc{color:#b00000;font-weight:bold;text-decoration:underline wavy #b00000}.sp{box-shadow:inset 0 -3px #e0a800}
.mid{box-shadow:inset 0 2px #7a5cff}.sp.mid{box-shadow:inset 0 -3px #e0a800,inset 0 2px #7a5cff}
.plain .sp{background:#fff3c4}.t.special{border:1px dashed #888;font-size:80%}
sub.w{font-size:65%;color:#333;vertical-align:sub;margin:0 1px 0 0}.hidew sub.w{display:none}
.w0{background:#dddddd}.wl{background:rgba(66,135,245,.3)}.w1{background:rgba(66,135,245,.12)}
.wh{background:rgba(245,130,32,.55)}.wn{background:#fff}.flags{background:#fff4d6;border:1px solid #e0a800}
.feedback{background:#fff4f0}.note{font-size:90%;color:#444}#index td{cursor:pointer}
.legend span{padding:0 6px;margin-right:4px}#controls label{margin-right:1em}"""

# The only script: builds the index from the payload (filters, search, paging), shows the page's pairs,
# and repaints tokens (class + printed value) from their data-w for the scheme picked.
VIEWER_JS = """<script>
const ROWS = JSON.parse(document.getElementById('payload').textContent);
const SCHEMES = JSON.parse(document.getElementById('schemes').textContent);
const $ = id => document.getElementById(id);
let page = 0;
function cls(w) { return w === '-' ? 'wn' : +w <= 0 ? 'w0' : +w < 1 ? 'wl' : +w === 1 ? 'w1' : 'wh'; }
function fill(id, key) {
  const sel = $(id); if (!sel) return;
  [...new Set(ROWS.map(r => r[key]))].sort().forEach(v => { const o = document.createElement('option');
    o.value = o.textContent = v; sel.appendChild(o); });
}
function matches(r) {
  const q = $('q').value.trim().toLowerCase();
  return (!$('fp').value || r.p === $('fp').value) && (!$('fs').value || r.s === $('fs').value)
    && (!$('fa') || !$('fa').value || r.a === $('fa').value) && (!$('ff').checked || r.f > 0)
    && (!q || r.t.toLowerCase().includes(q));
}
function paint(sec) {
  const k = SCHEMES.indexOf($('scheme') ? $('scheme').value : '');
  if (k < 0) return;
  sec.querySelectorAll('span.t[data-w]').forEach(t => {
    const w = t.dataset.w.split(' ')[k];
    t.className = 't' + (t.classList.contains('special') ? ' special ' : ' ') + cls(w);
    const sub = t.querySelector('sub.w'); if (sub) sub.textContent = w;
  });
}
function render() {
  const size = +$('size').value, rows = ROWS.filter(matches);
  const pages = Math.max(1, Math.ceil(rows.length / size)); page = Math.min(page, pages - 1);
  const shown = rows.slice(page * size, (page + 1) * size), keys = new Set(shown.map(r => r.k));
  $('count').textContent = rows.length + ' of ' + ROWS.length + ' pairs match; page ' + (page + 1) + ' of ' + pages;
  const body = $('index').tBodies[0]; body.textContent = '';
  shown.forEach(r => { const tr = body.insertRow();
    [r.w, r.p, r.t, r.s, r.a, r.f ? r.f + ' flag(s)' : ''].forEach(v => { tr.insertCell().textContent = v; });
    tr.onclick = () => $(r.k).scrollIntoView(); });
  document.querySelectorAll('section.pair').forEach(s => { s.hidden = !keys.has(s.id); if (!s.hidden) paint(s); });
}
['fp', 'fs', 'fa', 'ff', 'q', 'size', 'scheme'].forEach(id => { const el = $(id);
  if (el) el.addEventListener('input', () => { page = 0; render(); }); });
$('prev').onclick = () => { page = Math.max(0, page - 1); render(); };
$('next').onclick = () => { page += 1; render(); };
if ($('showw')) $('showw').addEventListener('change', e => document.body.classList.toggle('hidew', !e.target.checked));
fill('fs', 's'); fill('fa', 'a'); $('controls').hidden = false; render();
</script>
"""


def _controls(shown: list[Shown], schemes: list[str], page_size: int) -> str:
    audits = any(_audit(s) for s in shown)
    sizes = "".join(f"<option{' selected' if n == page_size else ''}>{n}</option>"
                    for n in sorted({10, 20, 50, 100, page_size}))
    scheme = (f'<label>weights of <select id="scheme">{"".join(f"<option>{_e(n)}</option>" for n in schemes)}'
              '</select></label><label><input type="checkbox" id="showw" checked> print each token\'s weight</label>'
              if schemes else "")
    return ('<div id="controls" hidden><p><label>pipeline <select id="fp"><option value="">all</option>'
            '<option>focused</option><option>codeflow</option><option value="other">other (localize / unknown)'
            '</option></select></label><label>status <select id="fs"><option value="">all</option></select></label>'
            + ('<label>audit <select id="fa"><option value="">all</option></select></label>' if audits else "")
            + '<label><input type="checkbox" id="ff"> thin evidence only</label>'
            '<label>task id <input id="q" type="search" placeholder="search"></label>'
            f'<label>per page <select id="size">{sizes}'
            f'</select></label>{scheme}</p><p><button id="prev">previous</button> <button id="next">next</button> '
            '<span id="count"></span></p><table id="index"><thead><tr><th>line</th><th>pipeline</th><th>task</th>'
            '<th>status</th><th>audit</th><th>evidence</th></tr></thead><tbody></tbody></table></div>'
            "<noscript><p>Without scripts every pair is shown below; the index, filters and the scheme switch need "
            "scripts.</p></noscript>")


def page_html(cfg: ViewConfig, shown: list[Shown], tokens: Tokens | None, schemes: list[str],
              notes: list[str]) -> str:
    path = Path(cfg.pairs)
    counts = {p: sum(s.pipeline == p for s in shown) for p in ("focused", "codeflow", "other")}
    legend = ('<span class="dc">bold red</span> characters that differ (inside changed lines) · '
              '<span class="sp">underlined</span> localised span (LCS D+ / D-) · '
              '<span class="mid">overlined</span> prefix/suffix middle (Focused-DPO)')
    if tokens is not None:
        legend += (' · token weight: <span class="t w0">0</span><span class="t wl">&lt;1</span>'
                   '<span class="t w1">1</span><span class="t wh">&gt;1</span><span class="t wn">- not weighed</span>; '
                   "the small number after each token is its weight under the scheme picked "
                   f"(first: {_e(schemes[0]) if schemes else '-'}); dashed boxes are tokens past the text (EOS / end of turn)")
    body = [f"<h1>{_e(cfg.title or f'Preference pairs: {path.name}')}</h1>",
            f"<p>{len(shown)} pairs from {_e(str(path))}: " + ", ".join(f"{n} {p}" for p, n in counts.items() if n)
            + ".</p>", f'<p class="legend">{legend}</p>',
            *(f'<p class="note">{inline_code(n)}</p>' for n in notes),
            _controls(shown, schemes, cfg.page_size),
            *(pair_html(s, tokens, schemes) for s in shown),
            f'<script type="application/json" id="payload">{json_in_script(index_payload(shown))}</script>',
            f'<script type="application/json" id="schemes">{json_in_script(schemes)}</script>']
    page = html_page(cfg.title or f"pairs: {path.name}", "\n".join(body), VIEWER_CSS, VIEWER_JS)
    page = page.replace("<head>", "<head>" + GENERATOR, 1)
    return page if tokens is not None else page.replace("<body>", '<body class="plain">', 1)


def view(cfg: ViewConfig) -> dict:
    """Write the page (module doc); returns {"out", "pairs", "records", "schemes", "notes"}."""
    if not cfg.pairs:
        raise ValueError("pairs: give the pairs file (focalpo view PAIRS.jsonl)")
    pairs_path = Path(cfg.pairs)
    if not pairs_path.is_file():
        raise FileNotFoundError(f"{pairs_path}: no such file")
    out = Path(cfg.out) if cfg.out else default_out(pairs_path)
    if out.resolve() == pairs_path.resolve():
        raise ValueError(f"out: {out} is the pairs file")
    if out.exists() and not cfg.overwrite and GENERATOR not in out.read_text(errors="replace")[:2000]:
        raise FileExistsError(f"{out} exists and is not a page focalpo view wrote; pass overwrite=true to replace it")
    given = [r for item in cfg.records for r in item.split(",") if r]  # --records a --records b,c
    record_paths = [Path(r) for r in given] or [p for p in [pairs_path.parent / "records.jsonl"] if p.is_file()]
    shown = load_pairs(pairs_path, load_records(record_paths))
    notes = [f"Records: {', '.join(str(p) for p in record_paths)} "
             f"({sum(s.record is not None for s in shown)} of {len(shown)} pairs have one)."
             if record_paths else "No records file: pass matrices and debugging histories are not shown."]
    tokens, schemes = None, []
    if cfg.tokenizer:
        from focalpo.weights import SCHEMES

        schemes = list(cfg.schemes) or list(SCHEMES)
        unknown = sorted(set(cfg.scheme_options) - set(schemes))
        if unknown:
            raise ValueError(f"scheme_options: {unknown[0]!r} is not a scheme shown (schemes: {', '.join(schemes)})")
        tokens = token_views([s.pair for s in shown], load_tokenizer(cfg.tokenizer), schemes, cfg.scheme_options,
                             cfg.seed)
        notes += [f"Token weights with tokenizer `{cfg.tokenizer}`, TRL tokenisation, no truncation, seed {cfg.seed}."]
        notes += scheme_lines(tokens, cfg.scheme_options, len(shown))
    elif cfg.schemes:
        raise ValueError("schemes: token weights need a tokenizer (--tokenizer PATH)")
    else:
        notes.append("No tokenizer: tokens and their weights are not shown (pass --tokenizer PATH).")
    atomic_write_bytes(out, page_html(cfg, shown, tokens, schemes, notes).encode("utf-8"))
    return {"out": str(out), "pairs": len(shown), "records": [str(p) for p in record_paths], "schemes": schemes,
            "notes": notes}
