"""`load_benchmark(name, path=None)`: a benchmark by name, from a given path or the default file.

Default files are looked up, in this order, in `$FOCALPO_DATA_DIR/<file>`, then in
`<dir>/shared/data/<file>` for every directory `<dir>` above this package and above the current
working directory (the repository keeps its benchmark copies in `../shared/data`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from focalpo.datasets_io import Source, source_kind
from focalpo.problems.bigcodebench import load_bigcodebench
from focalpo.problems.evalplus import load_humaneval_plus, load_mbpp_plus
from focalpo.problems.humaneval import load_humaneval
from focalpo.problems.jsonl import load_jsonl
from focalpo.problems.livecodebench import load_livecodebench
from focalpo.problems.select import select_problems
from focalpo.problems.types import Problem

DATA_DIR_ENV = "FOCALPO_DATA_DIR"


@dataclass(frozen=True)
class Benchmark:
    """A named loader and the file it reads by default (None: a path must be given)."""

    loader: Callable[..., list[Problem]]
    default_file: str | None = None
    splits: bool = False  # the loader takes `splits=` (only build those test splits)


BENCHMARKS: dict[str, Benchmark] = {
    "humaneval": Benchmark(load_humaneval, "HumanEval.jsonl.gz"),
    "humaneval+": Benchmark(load_humaneval_plus, "HumanEvalPlus-v0.1.10.jsonl.gz", splits=True),
    "mbpp+": Benchmark(load_mbpp_plus, "MbppPlus-v0.2.0.jsonl.gz", splits=True),
    "bigcodebench": Benchmark(load_bigcodebench, "BigCodeBench-v0.1.0.jsonl.gz"),
    "bigcodebench-complete": Benchmark(load_bigcodebench, "BigCodeBench-v0.1.0.jsonl.gz"),
    "bigcodebench-instruct": Benchmark(
        lambda p: load_bigcodebench(p, prompt="instruct"), "BigCodeBench-v0.1.0.jsonl.gz"
    ),
    "livecodebench": Benchmark(load_livecodebench),
    "jsonl": Benchmark(load_jsonl),
}


def load_benchmark(
    name: str, path: str | os.PathLike | Source | None = None, splits: Sequence[str] | None = None,
    limit: int | None = None, *, task_ids: str | os.PathLike | None = None, since: str | None = None,
    until: str | None = None,
) -> list[Problem]:
    """Problems of benchmark `name` (see `BENCHMARKS`) from `path` or its default file.

    `splits` (e.g. `["base"]`): keep only these test splits; the evalplus loaders then do not
    even build the others. `task_ids` (a file, one id per line), `since`, `until` (contest dates):
    a subset (`focalpo.problems.select`). `limit`: then only the first `limit` problems, in file order."""
    problems = select_problems(_load(name, path, splits), task_ids=task_ids, since=since, until=until)
    return problems[:limit] if limit is not None else problems


def _load(name: str, path: str | os.PathLike | Source | None, splits: Sequence[str] | None) -> list[Problem]:
    bench = BENCHMARKS[_check_name(name)]
    if splits is None:
        return bench.loader(benchmark_path(name, path))
    if bench.splits:
        return bench.loader(benchmark_path(name, path), splits=splits)
    problems = bench.loader(benchmark_path(name, path))
    for p in problems:
        p.tests = {k: v for k, v in p.tests.items() if k in splits}
    return problems


def benchmark_path(name: str, path: str | os.PathLike | Source | None = None) -> Path | Source:
    """`path` when given (a file, a `save_to_disk` directory or a Hub id; a `Source` with a split or a
    column mapping is returned as it is), else the benchmark's default file, found as documented."""
    bench = BENCHMARKS[_check_name(name)]
    if path is not None:
        try:
            kind = source_kind(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"benchmark {name!r}: {path}: no such file or directory "
                                    "(nor a Hub dataset id)") from None
        if isinstance(path, Source):
            return path
        return Path(path).expanduser() if kind != "hub" else Source(str(path))
    if bench.default_file is None:
        raise ValueError(f"benchmark {name!r} has no default file; pass a path")
    tried = candidate_paths(bench.default_file)
    for p in tried:
        if p.is_file():
            return p
    lines = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"benchmark {name!r}: {bench.default_file} not found; tried:\n  {lines}\n"
        f"pass a path or set {DATA_DIR_ENV} to the folder holding it"
    )


def candidate_paths(filename: str) -> list[Path]:
    """Where a default benchmark file may be, in lookup order (duplicates removed)."""
    out: list[Path] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        out.append(Path(env).expanduser() / filename)
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        out.extend(d / "shared" / "data" / filename for d in (start, *start.parents))
    return list(dict.fromkeys(out))


def _check_name(name: str) -> str:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return name
