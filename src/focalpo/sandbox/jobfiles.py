"""Checks of a job's module name and extra files (`Job.module`, `Job.files`), run in the parent.

    check_job_layout("fib", {"data.json": "[1, 2]", "lib/helper.py": "def h(): ..."})   # ok
    check_job_layout("fib", {"../x": ""})   # ValueError: Job.files: '../x' has a '..' component ...

The job writes the extra files into its fresh working directory itself (`_job._Runner`), so a path
must stay inside it: relative, no `..`, `.` or empty component, not the program's own
`<module>.py`, and no file may also be a directory of another file.
"""

from __future__ import annotations

import keyword
import sys
from collections.abc import Mapping

PROGRAM_MODULE = "solution"  # the default Job.module (also `_job.PROGRAM_MODULE`)

# Modules that the harness or coverage.py use while the program runs, and the names the harness
# gives test code: a program registered under one of these names in sys.modules would break them.
HARNESS_MODULES = frozenset({
    "focalpo", "coverage", "sys", "os", "io", "unittest", "pickle", "signal", "types", "builtins",
    "random", "resource", "threading", "time", "traceback", "warnings", "ctypes", "tempfile",
    "importlib", "encodings", "codecs", "abc", "site", "sqlite3", "numpy", "__main__",
    "test", "test_setup", "test_module",
})  # fmt: skip


def check_module_name(module: str) -> None:
    """ValueError unless `module` can name the program: an identifier (no dots), not a keyword,
    not a harness module nor a module compiled into the interpreter."""
    if not isinstance(module, str) or not module.isidentifier() or keyword.iskeyword(module):
        raise ValueError(f"Job.module {module!r} is not a Python identifier (the program's file is <module>.py)")
    if module in HARNESS_MODULES or module in sys.builtin_module_names:
        raise ValueError(f"Job.module {module!r} would shadow a module the sandbox needs; name the program differently")


def check_files(module: str, files: Mapping[str, str]) -> dict[str, str]:
    """A plain dict copy of `files` (relative path -> text); ValueError naming the first bad path."""
    if not isinstance(files, Mapping):
        raise ValueError(f"Job.files must map relative paths to text, not be a {type(files).__name__}")
    out: dict[str, str] = {}
    dirs: set[str] = set()
    for path, text in files.items():
        if not isinstance(path, str) or not path:
            raise ValueError(f"Job.files: {path!r} is not a file name")
        if path.startswith("/"):
            raise ValueError(f"Job.files: {path!r} is an absolute path; give a path relative to the job's directory")
        parts = path.split("/")
        for bad, why in (("..", "a '..' component"), (".", "a '.' component"), ("", "an empty component")):
            if bad in parts:
                raise ValueError(f"Job.files: {path!r} has {why}; give a plain relative path like 'data/input.json'")
        if "\0" in path:
            raise ValueError(f"Job.files: {path!r} contains a NUL character")
        if path == module + ".py":
            raise ValueError(f"Job.files: {path!r} is the program's own file; pass it as Job.program")
        if not isinstance(text, str):
            raise ValueError(f"Job.files: {path!r} must map to text (str), not {type(text).__name__}")
        out[path] = text
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = sorted(dirs & out.keys())
    if clash:
        raise ValueError(f"Job.files: {clash[0]!r} is both a file and the directory of another file")
    return out


def check_job_layout(module: str, files: Mapping[str, str] | None) -> dict[str, str] | None:
    """Checks both; returns the files as a plain dict (None when there are none)."""
    check_module_name(module)
    return check_files(module, files) if files else None
