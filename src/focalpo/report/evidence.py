"""The evidence behind a pair, from its meta and its pipeline's record: what the viewer shows under the code.

    flags = thin_evidence(record, pair.meta)      # [] when the pair is well supported
    focused_html(record, pair.meta), codeflow_html(record, pair.meta)

Focused (`focalpo focused` records: programs, tests, pass_matrix, reasons, code_scores, test_scores, ranks,
ground_truth_tests; pair meta: chosen_index, rejected_index, ranks, scores). The record's
`ground_truth_tests` are **consensus tests**, not ground truth: the tests passed by the top-ranked program
(PageRank over the code-test graph, `focalpo.rank`), written by the same model as the programs. The page
says so wherever it shows them. `thin_evidence` flags a pair when
- the chosen program passes a test that no other program passes (nothing else confirms that test);
- the consensus is a single test (correct/incorrect rest on one model-written assert);
- PageRank scores tie (equal after rounding to `focalpo.rank.TIE_DECIMALS`, then ordered by index):
  chosen and rejected, the top program with one whose pass row differs (the consensus itself was picked by
  index), or the chosen / rejected program with others (its rank, which enters Diff, is by index).
Without a record only the meta's scores and counts are checked.

CodeFlow (`focalpo codeflow` records: versions with solution, passed, error_type, feedback, load_error; a
format error instead of a solution; test_file, test_code): the debugging history, chosen and rejected
iterations marked. Every text is escaped.
"""

from __future__ import annotations

import html
import json

from focalpo.rank import TIE_DECIMALS, rank_order

_e = html.escape


def _key(score: float) -> float:
    return round(score, TIE_DECIMALS)


def _names(indices) -> str:
    return ", ".join(f"p{i}" for i in indices)


def thin_evidence(record: dict | None, meta: dict) -> list[str]:
    """Why a focused pair's labels rest on little (module doc); [] when well supported or not focused."""
    c, r = meta.get("chosen_index"), meta.get("rejected_index")
    if c is None:
        return []
    flags: list[str] = []
    matrix = (record or {}).get("pass_matrix")
    scores = (record or {}).get("code_scores")
    if matrix and scores and c < len(matrix) and (r is None or r < len(matrix)):
        solo = [j for j, ok in enumerate(matrix[c]) if ok and not any(row[j] for i, row in enumerate(matrix) if i != c)]
        if solo:
            flags.append(f"the chosen program p{c} is the only program passing {', '.join(f't{j}' for j in solo)}: "
                         "no other program confirms that test")
        gt = record.get("ground_truth_tests") or []
        if len(gt) == 1:
            flags.append(f"the consensus is one test (t{gt[0]}): correct and incorrect rest on that single assert")
        top = rank_order(scores)[0]
        tied_top = [i for i in range(len(scores)) if i != top and _key(scores[i]) == _key(scores[top])
                    and list(matrix[i]) != list(matrix[top])]
        if tied_top:
            flags.append(f"PageRank tie at the top: p{top} and {_names(tied_top)} score {scores[top]:.4g} but pass "
                         f"different tests; the consensus tests are p{top}'s only because its index is lower")
        if r is not None and _key(scores[c]) == _key(scores[r]):
            flags.append(f"chosen p{c} and rejected p{r} have equal PageRank scores ({scores[c]:.4g})")
        for role, idx in (("chosen", c), ("rejected", r)):
            if idx is None:
                continue
            tied = [i for i in range(len(scores)) if i not in (idx, c if role == "rejected" else r)
                    and _key(scores[i]) == _key(scores[idx])]
            if tied:
                flags.append(f"{role} p{idx} ties in PageRank with {_names(tied)}: its rank {meta.get(f'{role}_rank')} "
                             "among equal scores is by index, and the rank difference enters Diff")
        return flags
    cs, rs = meta.get("chosen_score"), meta.get("rejected_score")
    if cs is not None and rs is not None and _key(cs) == _key(rs):
        flags.append(f"chosen p{c} and rejected p{r} have equal PageRank scores ({cs:.4g})")
    if meta.get("n_ground_truth_tests") == 1:
        flags.append("the consensus is one test: correct and incorrect rest on that single assert")
    return flags


CONSENSUS_NOTE = ("c = consensus test: passed by the top-ranked program {top} (PageRank over the code-test graph). "
                  "The pipeline judges every program by these tests (its record calls them ground_truth_tests); "
                  "they are not ground truth, but tests written by the same model as the programs.")


def focused_html(rec: dict, meta: dict) -> str:
    """Pass matrix (programs x tests, consensus tests marked), PageRank scores and ranks, tests, programs."""
    if not rec.get("pass_matrix"):
        return f"<p>No pass matrix in the record (status {_e(str(rec.get('status')))}).</p>"
    gt = set(rec.get("ground_truth_tests", []))
    role = {meta.get("chosen_index"): " chosen", meta.get("rejected_index"): " rejected"}
    scores, ranks = rec.get("code_scores") or [], rec.get("ranks") or []
    top = f"p{rank_order(scores)[0]}" if scores else "?"
    correct = rec.get("correct") or []
    head = "".join(f'<th title="{_e(t)}">t{j}{" (c)" if j in gt else ""}</th>' for j, t in enumerate(rec["tests"]))
    rows = []
    for i, row in enumerate(rec["pass_matrix"]):
        reasons = (rec.get("reasons") or [[]] * len(rec["pass_matrix"]))[i]
        cells = "".join(f'<td class="{"pass" if ok else "fail"}" title="{_e((reasons[j] if j < len(reasons) else "") or "pass")}">'
                        f'{"✓" if ok else "✗"}</td>' for j, ok in enumerate(row))
        label = "" if i >= len(correct) else " correct" if correct[i] else " incorrect"
        score = f"{scores[i]:.3g}" if i < len(scores) else "-"
        rows.append(f"<tr><th>p{i}{role.get(i, '')}</th><td>{score}</td><td>{ranks[i] if i < len(ranks) else '-'}</td>"
                    f"<td>{label.strip()}</td>{cells}</tr>")
    tscores = rec.get("test_scores") or []
    scores_row = "".join(f"<td>{v:.3g}</td>" for v in tscores)
    tests = "".join(f"<li><pre>{_e(t)}</pre> PageRank {s:.3g}{' · consensus' if j in gt else ''}</li>"
                    for j, (t, s) in enumerate(zip(rec["tests"], tscores)))
    programs = "".join(f"<li><pre>{_e(p)}</pre></li>" for p in rec.get("programs", []))
    return (f"<h4>Pass matrix (programs × tests) and PageRank scores</h4>"
            f'<p class="note">{_e(CONSENSUS_NOTE.format(top=top))}</p>'
            f'<table class="matrix"><tr><th>program</th><th>PageRank</th><th>rank</th><th>label</th>{head}</tr>'
            f'{"".join(rows)}<tr><th>test PageRank</th><td></td><td></td><td></td>{scores_row}</tr></table>'
            f'<details><summary>tests</summary><ol start="0">{tests}</ol></details>'
            f'<details><summary>all programs</summary><ol start="0">{programs}</ol></details>')


def focused_meta_html(meta: dict) -> str:
    """What a focused pair's meta alone says (no record found)."""
    keys = ("chosen_rank", "rejected_rank", "chosen_score", "rejected_score", "chosen_passes", "rejected_passes",
            "n_tests", "n_ground_truth_tests", "diff", "common_length")
    cells = "".join(f"<tr><th>{_e(k.replace('n_ground_truth_tests', 'consensus tests (n_ground_truth_tests)'))}"
                    f"</th><td>{_e(json.dumps(meta[k]))}</td></tr>" for k in keys if k in meta)
    return (f"<h4>Ranking (pair meta; no record)</h4><table>{cells}</table>"
            f'<p class="note">{_e(CONSENSUS_NOTE.format(top="(see the record)"))}</p>' if cells else "")


def codeflow_html(rec: dict, meta: dict) -> str:
    """The test file and every version: code, verdict, the feedback sent back; chosen / rejected marked."""
    out = [f"<details><summary>test file {_e(str(rec.get('test_file', '')))}</summary>"
           f"<pre>{_e(rec.get('test_code', '') or '')}</pre></details>", "<h4>Debugging history</h4>"]
    role = {meta.get("chosen_iteration"): " (chosen)", meta.get("rejected_iteration"): " (rejected)"}
    versions = rec.get("versions") or []
    if not versions:
        out.append(f"<p>The record holds no versions (status {_e(str(rec.get('status')))}).</p>")
    for v in versions:
        it = v.get("iteration")
        if "format_error" in v:
            out.append(f"<h5>iteration {it}{role.get(it, '')}: format error {_e(str(v['format_error']))}</h5>"
                       f"<pre>{_e(str(v.get('message', '')))}</pre>")
            continue
        verdict = "passed" if v.get("passed") else f"failed ({_e(str(v.get('error_type', '')))})"
        out.append(f"<h5>iteration {it}{role.get(it, '')}: {verdict}</h5><pre>{_e(v.get('solution', '') or '')}</pre>")
        if v.get("feedback") or v.get("load_error"):
            out.append(f'<pre class="feedback">{_e(v.get("feedback") or v.get("load_error"))}</pre>')
    return "".join(out)
