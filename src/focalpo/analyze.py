"""Focused-DPO's error-concentration analysis: are errors concentrated in the middles of pairs?

    focalpo analyze samples.jsonl [--unit line|char] [--out table.csv [--overwrite]]

`samples.jsonl`: one problem per line, `{"task_id": ..., "programs": [str, ...], "correct": [bool, ...]}`,
or `"pass_matrix": [[bool, ...], ...]` instead of `"correct"` (then correctness is Focused-DPO's own:
PageRank ground truth, `focalpo.rank`). The `records.jsonl` of a `focalpo focused` run is such a
file (its records of problems without programs or tests are skipped). In Python:

    rows = error_concentration(records); print(format_table(rows)); write_csv(rows, "table.csv")

Focused-DPO (arXiv 2502.11475) motivates its method with a table: over sampled programs, the common
prefix and suffix of (correct, incorrect) pairs are nearly uncorrelated with correctness (Phi ≈ 0.07)
while the middles are strongly correlated (Phi ≈ 0.6). The paper leaves the exact protocol open;
the choices made here:

- Problems: those with at least one correct and one incorrect program; others are skipped.
- Pairs: every (correct, incorrect) pair of a problem whose texts differ (not only the pairs
  `focalpo.rank.select_pairs` would keep: the statistic should not depend on λ), split by
  `focalpo.localize.common_prefix_suffix` (lines by default) into prefix P, middles M+ / M-, suffix S.
- Segments of a pair and what "a program contains it" means (position matters, as in generation):
  `common_prefix`: starts with P; `common_suffix`: ends with S; `prefix+chosen_mid`: starts with
  P + M+; `prefix+rejected_mid`: starts with P + M-. An empty segment is skipped (every program
  contains it: it carries no information).
- For one (pair, segment) a 2x2 table over all programs of the problem, the pair's own two
  included: n11 = contains and correct, n10 = contains and incorrect, n01 = lacks and correct,
  n00 = lacks and incorrect. A row pools (sums) the tables of a segment over all pairs and problems:
  `correct_freq` = n11 / (n11 + n10), `incorrect_freq` = n10 / (n11 + n10), `phi` = Phi of the
  pooled table; `mean_phi` = mean of the per-table Phi (each pair weighs the same).
- Phi of a 2x2 table: (n11·n00 − n10·n01) / sqrt(n1.·n0.·n.1·n.0), 0 when a margin is 0; it equals
  the Pearson correlation of the two binary vectors.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from focalpo.io import atomic_path, iter_json_rows
from focalpo.localize import UNITS, common_prefix_suffix

UNRANKED = ("no_programs", "no_tests")  # statuses of focused records that have no pass matrix
SEGMENTS = ("common_prefix", "common_suffix", "prefix+chosen_mid", "prefix+rejected_mid")


@dataclass(frozen=True)
class Table2x2:
    """Program counts: n11 contains & correct, n10 contains & incorrect, n01 lacks & correct, n00 neither."""

    n11: int = 0
    n10: int = 0
    n01: int = 0
    n00: int = 0

    def __add__(self, other: Table2x2) -> Table2x2:
        return Table2x2(self.n11 + other.n11, self.n10 + other.n10, self.n01 + other.n01, self.n00 + other.n00)


@dataclass(frozen=True)
class ConcentrationRow:
    """One line of the error-concentration table (see module doc for each field)."""

    segment: str
    problems: int
    tables: int
    n11: int
    n10: int
    n01: int
    n00: int
    correct_freq: float
    incorrect_freq: float
    phi: float
    mean_phi: float


def phi_coefficient(t: Table2x2) -> float:
    """(n11·n00 − n10·n01) / sqrt(n1.·n0.·n.1·n.0); 0.0 when any margin is 0."""
    margins = (t.n11 + t.n10, t.n01 + t.n00, t.n11 + t.n01, t.n10 + t.n00)  # n1., n0., n.1, n.0
    if 0 in margins:
        return 0.0
    return (t.n11 * t.n00 - t.n10 * t.n01) / math.sqrt(math.prod(margins))


def contingency(contains: Sequence[bool], correct: Sequence[bool]) -> Table2x2:
    """The 2x2 table of two equally long boolean vectors."""
    if len(contains) != len(correct):
        raise ValueError(f"{len(contains)} 'contains' flags for {len(correct)} correctness labels")
    cells = [0, 0, 0, 0]
    for has, ok in zip(contains, correct):
        cells[(0 if has else 2) + (0 if ok else 1)] += 1
    return Table2x2(*cells)


def pair_segments(chosen: str, rejected: str, unit: str = "line") -> dict[str, tuple[str, str]]:
    """segment name -> ("starts" | "ends", text) for one (correct, incorrect) pair; empty segments left out."""
    ps = common_prefix_suffix(chosen, rejected, unit=unit)
    prefix = chosen[: ps.prefix_len]
    segments = {
        "common_prefix": ("starts", prefix),
        "common_suffix": ("ends", chosen[ps.chosen_suffix_start :]),
        "prefix+chosen_mid": ("starts", chosen[: ps.chosen_suffix_start]),
        "prefix+rejected_mid": ("starts", rejected[: ps.rejected_suffix_start]),
    }
    return {name: seg for name, seg in segments.items() if seg[1]}


def contains_segment(program: str, where: str, text: str) -> bool:
    return program.startswith(text) if where == "starts" else program.endswith(text)


def problem_tables(programs: Sequence[str], correct: Sequence[bool], unit: str = "line") -> dict[str, list[Table2x2]]:
    """segment -> one 2x2 table per (correct, incorrect) pair of this problem (empty if no such pair)."""
    tables: dict[str, list[Table2x2]] = {name: [] for name in SEGMENTS}
    good = [i for i, ok in enumerate(correct) if ok]
    bad = [i for i, ok in enumerate(correct) if not ok]
    for c in good:
        for r in bad:
            if programs[c] == programs[r]:
                continue
            for name, (where, text) in pair_segments(programs[c], programs[r], unit).items():
                tables[name].append(contingency([contains_segment(p, where, text) for p in programs], correct))
    return tables


def correctness(record: Mapping[str, Any], where: str) -> list[bool]:
    """The record's `correct` labels, or Focused-DPO's (PageRank ground truth) from its `pass_matrix`."""
    programs = record["programs"]
    if record.get("correct") is not None:
        labels = record["correct"]
        if len(labels) != len(programs) or not all(x in (True, False) for x in labels):
            raise ValueError(f"{where}: field 'correct': need {len(programs)} booleans, one per program")
        return [bool(x) for x in labels]
    if record.get("pass_matrix") is None:
        raise ValueError(f"{where}: needs field 'correct' (one boolean per program) or 'pass_matrix'")
    from focalpo.rank import classify, ground_truth_tests, pagerank_scores

    matrix = record["pass_matrix"]
    if len(matrix) != len(programs):
        raise ValueError(f"{where}: field 'pass_matrix': {len(matrix)} rows for {len(programs)} programs")
    try:
        good, _ = classify(matrix, ground_truth_tests(matrix, pagerank_scores(matrix)[0]))
    except ValueError as e:
        raise ValueError(f"{where}: field 'pass_matrix': {e}") from None
    good_set = set(good)
    return [i in good_set for i in range(len(programs))]


def error_concentration(problems_records: Sequence[Mapping[str, Any]], unit: str = "line") -> list[ConcentrationRow]:
    """One row per segment in SEGMENTS, pooled over all problems with >= 1 correct and >= 1 incorrect."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    pooled = {name: [] for name in SEGMENTS}
    problems = {name: 0 for name in SEGMENTS}
    for k, record in enumerate(problems_records):
        where = str(record.get("source", f"record {k} ({record.get('task_id', '?')})"))
        if record.get("status") in UNRANKED:  # a `focalpo focused` record without a pass matrix
            continue
        programs = record.get("programs")
        if not isinstance(programs, list) or not all(isinstance(p, str) for p in programs):
            raise ValueError(f"{where}: field 'programs': must be a list of strings")
        for name, tables in problem_tables(programs, correctness(record, where), unit).items():
            pooled[name].extend(tables)
            problems[name] += bool(tables)
    return [_row(name, problems[name], pooled[name]) for name in SEGMENTS]


def _row(name: str, problems: int, tables: list[Table2x2]) -> ConcentrationRow:
    total = sum(tables, Table2x2())
    with_segment = total.n11 + total.n10
    return ConcentrationRow(
        segment=name,
        problems=problems,
        tables=len(tables),
        n11=total.n11,
        n10=total.n10,
        n01=total.n01,
        n00=total.n00,
        correct_freq=total.n11 / with_segment if with_segment else 0.0,
        incorrect_freq=total.n10 / with_segment if with_segment else 0.0,
        phi=phi_coefficient(total),
        mean_phi=sum(map(phi_coefficient, tables)) / len(tables) if tables else 0.0,
    )


# --------------------------------------------------------------------------------------------------
# output


def format_table(rows: Sequence[ConcentrationRow]) -> str:
    """A fixed-width text table: segment, pairs, correct / incorrect frequency, pooled and mean Phi."""
    header = f"{'segment':<22}{'problems':>9}{'pairs':>7}{'correct':>9}{'incorrect':>11}{'phi':>8}{'mean_phi':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.segment:<22}{r.problems:>9}{r.tables:>7}{r.correct_freq:>9.3f}{r.incorrect_freq:>11.3f}"
            f"{r.phi:>8.3f}{r.mean_phi:>10.3f}"
        )
    return "\n".join(lines)


def write_csv(rows: Sequence[ConcentrationRow], path: str | os.PathLike) -> None:
    """All fields of every row, header first."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(ConcentrationRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


@dataclass
class AnalyzeConfig:
    """Options of `focalpo analyze` (flags, `--config` YAML, key=value overrides)."""

    samples: str = ""  # JSONL (or .json list): task_id, programs, correct or pass_matrix
    unit: str = "line"  # line | char
    out: str | None = None  # also write the table as CSV here
    overwrite: bool = False  # replace an existing `out`


def analyze(cfg: AnalyzeConfig) -> list[ConcentrationRow]:
    """`focalpo analyze`: the rows of the table for `cfg.samples`, written as CSV to `cfg.out` if set."""
    if not cfg.samples:
        raise ValueError("analyze config: samples: give a samples file")
    if cfg.unit not in UNITS:
        raise ValueError(f"analyze config: unit {cfg.unit!r}: one of {', '.join(UNITS)}")
    if cfg.out and os.path.exists(cfg.out) and not cfg.overwrite:
        raise FileExistsError(f"{cfg.out} exists; pass --overwrite to replace it, or --out another path")
    records = []
    for where, row in iter_json_rows(cfg.samples):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
        records.append({**row, "source": where})
    rows = error_concentration(records, unit=cfg.unit)
    if cfg.out:
        write_csv(rows, cfg.out)
    return rows
