"""Run evalplus 0.3.1 and `focalpo eval` on one samples file and read back per-sample verdicts.

Measures the wall-clock time of each tool's command-line run (process start to exit) with
`time.perf_counter`; imported by `bench/evalplus_compare.py`, not run alone.

evalplus: `bench/.venv-evalplus/bin/evalplus.evaluate --dataset D --samples S --parallel N
[--base_only]`, data from HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH (it reads the shipped .gz
directly; its ground-truth cache is keyed by the md5 of that file). Besides the exit time we record
`results_s`, the moment its `*_eval_results.json` is written: after that the 0.3.1 CLI only waits for
its non-daemon "stucking checker" thread, which sleeps in 20 s steps, so exit time overstates its work
by 0-20 s. Speed-ups are reported against both (`results_s` is the stricter baseline).

focalpo: `<repo>/.venv/bin/focalpo eval --benchmark B --samples S --out R --workers N [--base-only]`.

With another interpreter (`evalplus_compare.py --python PY`), both tools run from venvs of PY:
`bench/.venv-evalplus-<tag>` and `bench/.venv-focalpo-<tag>` (see `interpreter_tag`).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import samples as bench_samples

BENCH = Path(__file__).resolve().parent
EVALPLUS_VERSION = "0.3.1"
RUN_TIMEOUT_S = 3600


@dataclass
class Verdict:
    """One sample's verdict, normalised across tools. `passed` is what agreement compares."""

    task_id: str
    passed: bool
    base_status: str | None
    plus_status: str | None
    detail: dict = field(default_factory=dict)  # tool-specific: fail tests / failure reasons


@dataclass
class Run:
    tool: str
    wall_s: float
    verdicts: list[Verdict]
    results_s: float | None = None  # evalplus only: results file written
    other_cpu_s: float = 0.0  # CPU seconds used by unrelated processes during the run
    summary: dict = field(default_factory=dict)

    @property
    def n_pass(self) -> int:
        return sum(v.passed for v in self.verdicts)

    def failing(self) -> list[str]:
        return [v.task_id for v in self.verdicts if not v.passed]


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat; 0 where unavailable)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> tuple[float, float]:
    """Run to completion; returns (wall seconds, CPU seconds used meanwhile by processes not ours).

    The second figure flags runs that shared the machine with other work (timings then overstate).
    """
    busy0, ours0 = _busy_cpu_s(), _children_cpu_s()
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                              timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    other = max(0.0, (_busy_cpu_s() - busy0) - (_children_cpu_s() - ours0))
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}; log {log}:\n{tail}")
    return wall, other


def interpreter_tag(python: str) -> str:
    """A name for an interpreter's helper venvs: its version and a hash of its real path
    (two builds of one version, e.g. pyenv's and Debian's 3.11, get different venvs)."""
    exe = os.path.realpath(shutil.which(python) or python)
    got = subprocess.run([exe, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True)
    return f"{got.stdout.strip()}-{hashlib.sha1(exe.encode()).hexdigest()[:8]}"


class Evalplus:
    def __init__(self, venv: Path = BENCH / ".venv-evalplus", data_dir: Path = bench_samples.DEFAULT_DATA_DIR,
                 base_python: str = sys.executable):
        self.venv = venv
        self.data_dir = Path(data_dir)
        self.python = venv / "bin" / "python"
        self.base_python = base_python  # what the venv is created from

    def ensure_venv(self, log=print) -> None:
        """Create the venv once; reuse it while it holds evalplus==0.3.1."""
        probe = [str(self.python), "-c", "import importlib.metadata as m; print(m.version('evalplus'))"]
        if self.python.exists():
            got = subprocess.run(probe, capture_output=True, text=True)
            if got.returncode == 0 and got.stdout.strip() == EVALPLUS_VERSION:
                return
            log(f"{self.venv}: evalplus missing or wrong version ({got.stdout.strip() or got.stderr[-200:]}); rebuilding")
            shutil.rmtree(self.venv)
        log(f"creating {self.venv} with evalplus=={EVALPLUS_VERSION} (once, ~1 min)")
        subprocess.run([self.base_python, "-m", "venv", str(self.venv)], check=True)
        subprocess.run([str(self.python), "-m", "pip", "install", "-q", f"evalplus=={EVALPLUS_VERSION}"], check=True)

    def env(self) -> dict:
        env = dict(os.environ)
        for _, (_, fname, var) in bench_samples.BENCHMARKS.items():
            env[var] = str(self.data_dir / fname)
        # 0.3.1 does min(os.getenv(...), float) on this one (crashes if set); keep its defaults.
        env.pop("EVALPLUS_TIMEOUT_PER_TASK", None)
        env.pop("EVALPLUS_MAX_MEMORY_BYTES", None)
        return env

    def cache_file(self, benchmark: str) -> Path:
        digest = hashlib.md5(bench_samples.data_file(benchmark, self.data_dir).read_bytes()).hexdigest()
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return root / "evalplus" / f"{digest}.pkl"

    def warm(self, benchmark: str, log=print) -> None:
        if self.cache_file(benchmark).exists():
            return
        dataset = bench_samples.BENCHMARKS[benchmark][0]
        log(f"evalplus: computing ground truth for {benchmark} (cached afterwards)")
        subprocess.run([str(self.python), str(BENCH / "_evalplus_driver.py"), "warm", "--dataset", dataset],
                       env=self.env(), check=True, stdout=subprocess.DEVNULL)

    def run(self, samples: Path, benchmark: str, base_only: bool, workers: int, workdir: Path) -> Run:
        """One CLI run in a fresh folder (0.3.1 reuses an existing results file instead of evaluating)."""
        workdir.mkdir(parents=True)
        local = workdir / "samples.jsonl"
        shutil.copyfile(samples, local)
        dataset = bench_samples.BENCHMARKS[benchmark][0]
        cmd = [str(self.venv / "bin" / "evalplus.evaluate"), "--dataset", dataset, "--samples", str(local),
               "--parallel", str(workers)] + (["--base_only"] if base_only else [])
        start_epoch = time.time()
        wall, other = _run(cmd, workdir / "evalplus.log", env=self.env(), cwd=workdir)
        result_path = workdir / "samples_eval_results.json"
        results_s = result_path.stat().st_mtime - start_epoch
        return Run("evalplus", wall, self.read(local, result_path, base_only), results_s=results_s, other_cpu_s=other)

    @staticmethod
    def read(samples: Path, result_path: Path, base_only: bool) -> list[Verdict]:
        """Map evalplus's per-task lists (ordered by completion id) back to input order."""
        results = json.loads(result_path.read_text())["eval"]
        seen: dict[str, int] = defaultdict(int)
        out = []
        with open(samples) as f:
            for line in f:
                if not line.strip():
                    continue
                task_id = json.loads(line)["task_id"]
                rec = results[task_id][seen[task_id]]
                seen[task_id] += 1
                base, plus = rec["base_status"], rec["plus_status"]
                passed = base == "pass" and (base_only or plus == "pass")
                detail = {"base_fail_tests": _clip(rec["base_fail_tests"]),
                          "plus_fail_tests": _clip(rec["plus_fail_tests"])}
                out.append(Verdict(task_id, passed, base, plus, detail))
        return out

    def reference_times(self, benchmark: str) -> dict[str, list[float]]:
        """task_id -> [sum of base reference times, sum of plus reference times] (evalplus's cache)."""
        dataset = bench_samples.BENCHMARKS[benchmark][0]
        proc = subprocess.run([str(self.python), str(BENCH / "_evalplus_driver.py"), "reftime", "--dataset", dataset],
                              env=self.env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"evalplus reftime failed:\n{proc.stderr[-3000:]}")
        line = next(l for l in proc.stdout.splitlines() if l.startswith('{"reftime"'))
        return json.loads(line)["reftime"]

    def recheck(self, samples: Path, benchmark: str, runs: int, base_only: bool, workers: int) -> list[dict]:
        """Re-judge samples `runs` times via evalplus's own check_correctness (see _evalplus_driver)."""
        dataset = bench_samples.BENCHMARKS[benchmark][0]
        cmd = [str(self.python), str(BENCH / "_evalplus_driver.py"), "recheck", "--dataset", dataset,
               "--samples", str(samples), "--runs", str(runs), "--base-only", str(int(base_only)),
               "--workers", str(workers)]
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"evalplus recheck failed:\n{proc.stderr[-3000:]}")
        return [json.loads(l) for l in proc.stdout.splitlines() if l.startswith('{"task_id"')]


class Focalpo:
    def __init__(self, repo: Path = bench_samples.REPO, data: Path | None = None, venv: Path | None = None,
                 base_python: str | None = None):
        """`venv`: the project venv by default; with `base_python`, a venv of the bench's own
        (`bench/.venv-focalpo-<interpreter>`, created from it once, `pip install -e <repo>`)."""
        self.repo = repo
        self.venv = venv or repo / ".venv"
        self.base_python = base_python
        self.python = self.venv / "bin" / "python"
        self.exe = self.venv / "bin" / "focalpo"
        self.data = data

    def ensure_venv(self, log=print) -> None:
        """With `base_python`: create the venv once and (re)install the checkout into it."""
        if self.base_python is None:
            return
        if not self.python.exists():
            log(f"creating {self.venv} from {self.base_python} (once)")
            subprocess.run([self.base_python, "-m", "venv", str(self.venv)], check=True)
        subprocess.run([str(self.python), "-m", "pip", "install", "-q", "-e", str(self.repo)], check=True)

    def available(self) -> tuple[bool, str]:
        """(True, "") when `focalpo eval` exists; else (False, why)."""
        cli = self.repo / "src" / "focalpo" / "cli.py"
        if not cli.exists():
            return False, f"{cli} does not exist yet"
        if not self.exe.exists():
            return False, f"{self.exe} not installed"
        probe = subprocess.run([str(self.exe), "eval", "--help"], capture_output=True, text=True)
        if probe.returncode != 0:
            return False, f"`focalpo eval --help` exited {probe.returncode}: {(probe.stderr or probe.stdout)[-300:]}"
        self.compile_bytecode()
        return True, ""

    def compile_bytecode(self) -> None:
        """Write the package's bytecode, as `pip install` does (and as evalplus's venv has it).
        An editable install under PYTHONDONTWRITEBYTECODE=1 never writes it, so every timed run,
        its zygotes included, would compile focalpo's modules again (~0.5 s of a p2 run here)."""
        subprocess.run([str(self.python), "-m", "compileall", "-q", str(self.repo / "src")], check=True, capture_output=True)

    def run(self, samples: Path, benchmark: str, base_only: bool, workers: int, workdir: Path,
            details: bool = False) -> Run:
        workdir.mkdir(parents=True)
        out = workdir / "results.json"
        cmd = [str(self.exe), "eval", "--benchmark", benchmark, "--samples", str(samples), "--out", str(out),
               "--workers", str(workers), "--no-progress"]
        cmd += ["--base-only"] if base_only else []
        cmd += ["--details"] if details else []
        cmd += ["--data", str(self.data)] if self.data else []
        wall, other = _run(cmd, workdir / "focalpo.log", cwd=workdir)
        doc = json.loads(out.read_text())
        verdicts = []
        for rec in doc["samples"]:
            base, plus, status = rec.get("base_status"), rec.get("plus_status"), rec.get("status")
            passed = status == "pass" if status is not None else (base == "pass" and (base_only or plus == "pass"))
            failures = [{k: f.get(k) for k in ("test", "status", "message")} for f in rec.get("failures") or []]
            verdicts.append(Verdict(rec["task_id"], passed, base, plus,
                                    {"status": status, "failure_statuses": sorted({f["status"] for f in failures}),
                                     "failures": _clip(failures)}))
        return Run("focalpo", wall, verdicts, other_cpu_s=other,
                   summary={"timings": doc.get("timings", {})})


    def zero_overhead(self, case: str, workers: int, data_dir: Path) -> dict:
        """`compute_floor.py`: the case's tests run in-process on `workers` forked processes, no
        sandbox, no judging (what no evaluator can beat on this machine)."""
        cmd = [str(self.python), str(BENCH / "compute_floor.py"), "--case", case, "--workers", str(workers),
               "--data-dir", str(data_dir), "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"compute_floor failed:\n{proc.stderr[-3000:]}")
        return json.loads(next(l for l in proc.stdout.splitlines() if l.startswith('{"floor"')))["floor"]


def _clip(x, limit: int = 600):
    """Keep JSON small: long test inputs become a truncated repr."""
    text = json.dumps(x, default=repr)
    return x if len(text) <= limit else text[: limit - 3] + "..."
