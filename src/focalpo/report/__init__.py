"""Reports and the pair viewer: what a run produced, in numbers, tables, plots and HTML.

- `stats`: `t_critical`, `mean_ci` (mean ± 95 % Student-t half-width), `aggregate` (method -> metric -> cell);
- `render`: the demo report as blocks (`report_blocks`) rendered to markdown (`format_report`,
  `format_table`) and self-contained HTML (`render_html`), and the page helpers the viewer shares
  (`html_page`, `json_in_script`, `CSS`);
- `plots`: matplotlib PNGs (pass@1 with error bars, training curves); matplotlib loads inside the functions;
- `viewer`: `focalpo view PAIRS.jsonl`: one self-contained HTML page of any pairs file (focused,
  codeflow, localize), with `diffview` (character-level diff, localised regions, token markup of one
  completion), `weightview` (token weights per scheme, identical schemes) and `evidence` (pass matrix,
  PageRank, consensus tests, thin-evidence flags, debugging history).

Nothing heavy is imported here or at the top of any module of the package (no matplotlib,
transformers, torch or yaml): `focalpo --help` and `focalpo view` without a tokenizer stay light.
"""
