"""Traceback tails and line coverage of a job, built in the parent from what the job reported.

Both arrive as untrusted frames (see `_job.py`): a failing test's "tb" frame holds its frames in
the program, the test code and the extra files as (kind, file, line, function) plus the exception
text; "cov" frames hold line numbers of the program that ran. The parent checks their types,
caps their sizes, and formats the traceback with the source lines the *caller* gave (the test's
original code, not the rewritten asserts the job ran), so it reads like Python's own:

    Traceback (most recent call last):
      File "test.py", line 2, in <module>
        assert fib(-1) == 0
      File "fib.py", line 2, in fib
        assert n >= 0, "n must be non-negative"
    AssertionError: n must be non-negative

Coverage is the program file's statements (coverage.py's parser, on the program text) against the
union of the lines every job process of the run executed; `# pragma: no cover` is not honoured,
since the program is the model's and could exclude its own lines.
"""

from __future__ import annotations

from typing import Any, Callable

MAX_TRACEBACK = 2000  # characters of Verdict.traceback / ExecResult.load_traceback (the end is kept)
MAX_FRAMES = 8
_KINDS = ("program", "test", "file")


def parse_traceback(msg: tuple) -> tuple[list[tuple[str, str, int, str]], str] | None:
    """(frames, exception text) of a ("tb", index, frames, text) frame; None when malformed."""
    _, _, frames, text = msg
    if not isinstance(frames, list) or not isinstance(text, str):
        return None
    out = []
    for f in frames[-MAX_FRAMES:]:
        if not (isinstance(f, tuple) and len(f) == 4 and f[0] in _KINDS and isinstance(f[1], str)
                and type(f[2]) is int and isinstance(f[3], str)):  # fmt: skip
            return None
        out.append((f[0], f[1][:200], f[2], f[3][:200]))
    return out, text[-MAX_TRACEBACK:]


def format_traceback(frames: list[tuple[str, str, int, str]], text: str, source: Callable[[str, str], str]) -> str:
    """Python's traceback layout; `source(kind, file)` gives the text to take each frame's line
    from ("" when unknown). Capped to MAX_TRACEBACK characters, keeping the end."""
    lines = ["Traceback (most recent call last):\n"] if frames else []
    for kind, name, lineno, func in frames:
        lines.append(f'  File "{name}", line {lineno}, in {func}\n')
        code = source(kind, name).splitlines()
        if 0 < lineno <= len(code) and code[lineno - 1].strip():
            lines.append(f"    {code[lineno - 1].strip()}\n")
    out = "".join(lines) + (text if text.endswith("\n") or not text else text + "\n")
    out = out.rstrip("\n")
    return out if len(out) <= MAX_TRACEBACK else "...\n" + out[-(MAX_TRACEBACK - 4) :]


class CoverageLines:
    """The program lines that the job processes of one run reported as executed (their union: a
    run continues in a fresh process after a hard kill), or why coverage was not measured."""

    def __init__(self, program: str):
        self.program = program
        self.last_line = program.count("\n") + 1
        self.lines: set[int] = set()
        self.error = ""

    def add(self, payload: Any) -> bool:
        """Take one "cov" frame's payload (line numbers, or an error text); False when malformed."""
        if isinstance(payload, str):
            self.error = self.error or payload[:300]
            return True
        if not isinstance(payload, list):
            return False
        self.lines.update(n for n in payload if type(n) is int and 0 < n <= self.last_line)
        return True

    def report(self) -> dict[str, Any]:
        """{"statements", "executed", "missing", "percent"} of the program file, or {"error"}."""
        if self.error:
            return {"error": self.error}
        return line_coverage(self.program, self.lines)


def line_coverage(program: str, executed: set[int]) -> dict[str, Any]:
    """coverage.py's line report of `program` given the lines that ran (as `coverage report`:
    executed lines count at the first line of their statement; docstrings are not statements)."""
    if not program.strip():
        return {"statements": 0, "executed": [], "missing": [], "percent": 100.0}
    try:
        from coverage.parser import PythonParser
    except ImportError:
        return {"error": "coverage.py is not installed"}
    try:
        parser = PythonParser(text=program)
        parser.parse_source()
        statements = set(parser.statements)
        ran = parser.first_lines(executed) & statements
    except Exception as e:  # noqa: BLE001 - a program that does not parse, a coverage.py change
        return {"error": f"coverage.py could not analyse the program: {type(e).__name__}: {e}"[:300]}
    return {
        "statements": len(statements),
        "executed": sorted(ran),
        "missing": sorted(statements - ran),
        "percent": 100.0 * len(ran) / len(statements) if statements else 100.0,
    }
