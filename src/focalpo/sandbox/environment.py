"""Environment faults: a module a job cannot import is the program's failure only when this
environment lacks it too.

A job imports what the interpreter running the pool imports (`isolation.import_locations`), so a
`ModuleNotFoundError` in a job means one of three things, told apart here in the trusted parent:

- the module is not installed here at all: the sample fails, as in evalplus, and its result
  names the module (`ExecResult.missing_modules`) so that summaries can say that the score
  measures this environment, not the model (`12 samples failed on modules not installed here:
  pandas (9), sklearn (3)`);
- this process finds the module but jobs do not: an infrastructure fault. A probe job
  (`importlib.util.find_spec` inside the sandbox) confirms it, and `EnvironmentFault` stops the run
  with the module and the location jobs could not see, rather than score every sample that
  imports it as wrong;
- both find it: the program broke its own imports (or raised the error itself), its failure.

Only the top-level name is looked up (`find_spec("numpy")` runs no package code in this process);
a missing submodule of an installed package (`sklearn.externals.joblib`) is the program's failure.
Each name is classified once per pool.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import sys
import threading
from typing import Callable

from focalpo.sandbox.isolation import SCRATCH_DIRS
from focalpo.sandbox.types import CallTest, ExecResult, Status

_NOT_FOUND = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")

# Run inside a job: where the job's interpreter finds a top-level module ("" for a namespace
# package), or None.
PROBE_PROGRAM = """
import importlib.util


def locate(name):
    spec = importlib.util.find_spec(name)
    return None if spec is None else (spec.origin or "")
"""


class EnvironmentFault(RuntimeError):
    """A job could not import a module that the pool's own process imports: the sandbox or the
    environment is at fault, not the program under test."""

    def __init__(self, module: str, origin: str, why: str):
        self.module, self.origin = module, origin
        super().__init__(
            f"environment fault, not a wrong program: module {module!r} imports in this process "
            f"(from {origin}) but not inside the sandbox: {why}. No sample was scored on it."
        )


def not_found_modules(result: ExecResult) -> list[str]:
    """Top-level names of the modules whose absence failed this result's load or tests, in order."""
    texts = [result.load_error] if result.load_error else []
    texts += [v.message for v in result.verdicts if v.status == Status.EXCEPTION and "ModuleNotFound" in v.message]
    names = (m.group(1).split(".")[0] for t in texts for m in _NOT_FOUND.finditer(t))
    return list(dict.fromkeys(n for n in names if n.isidentifier()))


class ModuleCheck:
    """Classifies the modules jobs failed to import (once per name) and marks results.

    `probe(job)` runs a job in the sandbox: the pool's way to ask whether jobs find a module.
    Thread-safe: the pool's slot threads share one check.
    """

    def __init__(self) -> None:
        self._known: dict[str, str | EnvironmentFault] = {}  # name -> "missing" | "program" | the fault
        self._lock = threading.Lock()

    def check(self, result: ExecResult, probe: Callable[..., ExecResult]) -> None:
        """Set `result.missing_modules`; raise EnvironmentFault for a module only jobs lack."""
        if result.passed:
            return
        missing = []
        for name in not_found_modules(result):
            verdict = self._classify(name, probe)
            if isinstance(verdict, EnvironmentFault):
                raise verdict
            if verdict == "missing":
                missing.append(name)
        result.missing_modules = missing

    def _classify(self, name: str, probe: Callable[..., ExecResult]) -> str | EnvironmentFault:
        with self._lock:
            known = self._known.get(name)
        if known is not None:
            return known
        spec = _find_here(name)
        if spec is None:
            verdict: str | EnvironmentFault = "missing"
        else:
            seen = probe(PROBE_PROGRAM, [CallTest("locate", "locate", (name,))])
            found_in_job = seen.passed and seen.outputs is not None and seen.outputs[0] is not None
            origin = spec.origin or ", ".join(spec.submodule_search_locations or []) or "a built-in"
            if found_in_job:
                verdict = "program"
            else:
                where = seen.load_error or (seen.verdicts[0].message if not seen.passed else "")
                verdict = EnvironmentFault(name, origin, _why_hidden(origin) + (f" (the probe job: {where})" if where else ""))
        with self._lock:
            self._known.setdefault(name, verdict)
        return verdict


def _find_here(name: str):
    """This process's spec of top-level module `name`, or None (no package code runs)."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _why_hidden(origin: str) -> str:
    """Why jobs may not see the sys.path entry holding `origin`, as far as this process can tell."""
    real = os.path.realpath(origin)
    entries = sorted((os.path.realpath(p or os.getcwd()) for p in sys.path), key=len, reverse=True)
    entry = next((e for e in entries if real == e or real.startswith(e.rstrip("/") + "/")), os.path.dirname(real))
    if entry in SCRATCH_DIRS:
        return f"its location {entry} is a per-job scratch directory in the sandbox; install or run from elsewhere"
    mode = stat.S_IMODE(os.stat(entry).st_mode) if os.path.isdir(entry) else None
    if mode is not None and mode & 0o005 != 0o005:
        return (
            f"jobs cannot read {entry} (mode {mode:o}): they run as an unprivileged user of their own; "
            "make it readable by others, or install the environment elsewhere"
        )
    return f"jobs cannot see {entry}"
