"""The dataset card of a pipeline run directory: `README.md` in the Hugging Face Hub's format.

    write_card("runs/cf", pipeline="codeflow", config=config, summary=summary, data_file="pairs.parquet")
    # then: huggingface-cli upload ORG/NAME runs/cf --repo-type dataset

The card's YAML header gives the licence, tags and the data file of the default config (so the Hub
viewer shows the pairs, not the records); its body the command that wrote it, the counts, the
filters (and those that could not run), the source problems and their licence, and the resolved
config. `focalpo focused`, `focalpo codeflow` and `focalpo merge` rewrite it with the other
derived files. The command is the one `focalpo.cli.main` ran (`record_command`); a run started from
Python says so.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Sequence

from focalpo.io import atomic_path

CARD_FILE = "README.md"

# licences of the benchmarks' problems (../shared/data/README.md), as Hub licence ids
SOURCE_LICENSES = {
    "humaneval": "mit", "humaneval+": "apache-2.0", "mbpp+": "apache-2.0", "bigcodebench": "apache-2.0",
    "bigcodebench-complete": "apache-2.0", "bigcodebench-instruct": "apache-2.0",
}
METHODS = {"focused": ("Focused-DPO", "arXiv 2502.11475"), "codeflow": ("Target-DPO (CodeFlow)", "arXiv 2503.02783")}

_command: list[str] | None = None


def record_command(argv: Sequence[str]) -> None:
    """Remember the command line of this process (`focalpo.cli.main` calls it) for the cards it writes."""
    global _command
    _command = ["focalpo", *argv]


def source_license(config: dict) -> tuple[str, str]:
    """(Hub licence id, sentence) for the run's source problems."""
    bench = config.get("benchmark")
    given = config.get("instructions") or config.get("problems")
    if given or bench not in SOURCE_LICENSES:
        what = given or bench
        return "other", (f"unknown: the problems come from `{what}`; set `license` in this card to theirs "
                         "before publishing")
    return SOURCE_LICENSES[bench], f"{SOURCE_LICENSES[bench]} (the licence of the {bench} problems)"


def dataset_card(*, pipeline: str, config: dict, summary: dict, data_file: str) -> str:
    """The card's text (module doc)."""
    import yaml

    license_id, license_text = source_license(config)
    method, paper = METHODS.get(pipeline, (pipeline, ""))
    header = {
        "license": license_id,
        "tags": ["focalpo", "dpo", "code", pipeline],
        "task_categories": ["text-generation"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_file}]}],
    }
    command = shlex.join(_command) if _command else "(run from Python, not from the command line)"
    counts = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
        f"# {method} preference pairs made with focalpo", "",
        f"Pairs for {method} ({paper}) written by `focalpo {pipeline}`: `{data_file}` holds TRL's `prompt`, "
        "`chosen`, `rejected` columns (DPOTrainer reads them as they are) and the localisation as character "
        "spans into the completions (`chosen_spans`, `rejected_spans`, `prefix_len`, `chosen_suffix_start`, "
        "`rejected_suffix_start`); `records.jsonl` holds every problem's full record.", "",
        "## Command", "", "```", command, "```", "",
        "## Counts", "", "| | |", "|---|---|", *[f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                                               for k, v in counts.items()], "",
    ]
    if "filters" in summary:
        lines += ["## Filters", "", "Pairs removed by each filter (a pair may fail several):", "",
                  *[f"- {k}: {v}" for k, v in summary["filters"].items()], ""]
    for name, why in (summary.get("filters_not_run") or {}).items():
        lines += [f"**Warning: filter `{name}` did not run on {why['pairs']} candidate pairs:** {why['reason']}.", ""]
    lines += ["## Source problems and licence", "",
              f"Problems: `{config.get('instructions') or config.get('problems') or config.get('benchmark')}` "
              f"(benchmark `{config.get('benchmark')}`). Licence: {license_text}.", "",
              "## Resolved config", "", "```json", json.dumps(config, indent=1, ensure_ascii=False, default=str), "```", ""]
    return "\n".join(lines)


def write_card(out: str | os.PathLike, *, pipeline: str, config: dict, summary: dict, data_file: str) -> Path:
    """Write `out/README.md` atomically; returns its path."""
    path = Path(out) / CARD_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(dataset_card(pipeline=pipeline, config=config, summary=summary, data_file=data_file),
                       encoding="utf-8")
    return path


__all__ = ["CARD_FILE", "dataset_card", "record_command", "source_license", "write_card"]
