"""The `focalpo demo` report: the demo directory's numbers and plots through `focalpo.report`.

    from focalpo.toyworld.report import write_report
    paths = write_report(Path("focalpo-demo"), demo)   # demo: the dict run_demo writes as demo.json

What is specific to the demo lives here: where a seed's files are (`out` itself with one seed, else
out/seed-<s>), which metrics files the curves come from (models/<arm>/metrics.jsonl of the first seed),
and which pair viewer the report links to. The pair viewer itself is written by the demo's `view` stage
(`focalpo view data/pairs.jsonl`, `focalpo.report.viewer`); here only the page that stands in for it when
there is none (no pairs) or several (one per seed: an index linking to seed-<s>/pairs.html).

Files written into `out`, each atomically:
- report.md and report.html (`focalpo.report.render`), same blocks and numbers; the HTML is self-contained
  (inline CSS, plots as data: URIs) and links to pairs.html;
- pass_at_1.png and training_curves.png (`focalpo.report.plots`); a plot without data is not written
  (a stale one is removed) and the report says why;
- pairs.html only when the view stage did not write it: with one seed and no pairs, a page saying so;
  with several seeds, an index of the seeds' viewers.

matplotlib loads inside the plot functions; nothing here imports the demo or the CLI.
"""

from __future__ import annotations

from pathlib import Path

from focalpo.io import atomic_write_bytes
from focalpo.report.plots import plot_pass_at_1, plot_training_curves
from focalpo.report.render import CURVES_PNG, PASS_PNG, escape, html_page, markdown, render_html, report_blocks
from focalpo.report.stats import aggregate

VIEWER = "pairs.html"


def seed_dirs(out: Path, demo: dict) -> list[tuple[int, Path]]:
    """(seed, directory) of every seed: `out` itself with one seed, else out/seed-<s>."""
    seeds = [r["seed"] for r in demo["seeds"]]
    return [(s, out if len(seeds) == 1 else out / f"seed-{s}") for s in seeds]


def demo_arms(demo: dict) -> list[str]:
    """The arms the demo trained (its config's `arms`, else its `schemes` as in earlier demos), else every
    registered scheme."""
    config = demo.get("config", {})
    if config.get("arms"):
        return [name for name, _, _ in config["arms"]]
    if config.get("schemes"):
        return list(config["schemes"])
    from focalpo.weights import SCHEMES

    return list(SCHEMES)


def viewer_stand_in(out: Path, demo: dict) -> str | None:
    """pairs.html when the view stage wrote none for `out` (module doc), else None."""
    dirs = seed_dirs(out, demo)
    has_pairs = {s: (d / "data" / "pairs.jsonl").is_file() for s, d in dirs}
    if len(dirs) == 1 and has_pairs[dirs[0][0]]:
        return None
    if len(dirs) == 1:
        return html_page("focalpo demo: preference pairs", "<h1>Preference pairs</h1><p>No preference pairs to show "
                         f"(no {escape(str(dirs[0][1] / 'data' / 'pairs.jsonl'))}): neither pipeline produced a pair, "
                         "so nothing was trained.</p>")
    items = "".join(f'<li><a href="{escape(d.name)}/{VIEWER}">seed {s}</a></li>' if has_pairs[s] else
                    f"<li>seed {s}: no preference pairs</li>" for s, d in dirs)
    return html_page("focalpo demo: preference pairs", f"<h1>Preference pairs, one viewer per seed</h1><ul>{items}</ul>")


def write_report(out: Path, demo: dict) -> dict[str, Path]:
    """Write report.md, report.html, the two plots (when they have data) and, when needed, the pairs.html
    stand-in into `out`; returns name -> path of what was written."""
    out = Path(out)
    (first_seed, first_dir), *_ = seed_dirs(out, demo)
    metrics = {s: first_dir / "models" / s / "metrics.jsonl" for s in demo_arms(demo)}
    tasks = demo.get("config", {}).get("heldout_tasks")
    plots = {PASS_PNG: plot_pass_at_1(aggregate(demo["seeds"]), tasks=tasks),
             CURVES_PNG: plot_training_curves(metrics, first_seed)}
    blocks = report_blocks(demo, plots, viewer=VIEWER)
    files = {"report.md": markdown(blocks).encode(), "report.html": render_html(blocks).encode()}
    stand_in = viewer_stand_in(out, demo)
    if stand_in is not None:
        files[VIEWER] = stand_in.encode()
    for name, (png, _) in plots.items():
        if png:
            files[name] = png
        else:
            (out / name).unlink(missing_ok=True)  # a plot left by an earlier run would contradict the report
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return {name: out / name for name in files}
