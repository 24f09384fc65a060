"""The environment is the user's: jobs import what the pool's interpreter imports, wherever it lives
(a virtualenv or site dir under the temporary directory included), read-only; a module only the
jobs cannot import stops the run; a module missing everywhere is the sample's failure, named.

These are the tests that a checkout under /tmp would have failed before: the private /tmp of the
jobs once hid every import location below it.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import FAST, run_one, statuses

from focalpo.sandbox import CallTest, EnvironmentFault, ExecPool, Job, execute
from focalpo.sandbox.environment import not_found_modules
from focalpo.sandbox.isolation import import_locations
from focalpo.sandbox.types import ExecResult, Status, Verdict

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _need_private_tmp(pool: ExecPool) -> None:
    if not (pool.isolation["private_tmp"] and pool.isolation["job_uid"]):
        pytest.skip("no private /tmp or job uid here: " + "; ".join(pool.isolation["notes"]))


@pytest.fixture()
def temp_site(monkeypatch):
    """A site directory under the temporary directory (mode 755, as `python -m venv` makes them):
    a package in it, a `.pth` file adding a second directory (as an editable install does), and
    a secret file beside them that jobs must not read. Added to this process's sys.path."""
    root = Path(tempfile.mkdtemp(prefix="focalpo-env-", dir=tempfile.gettempdir()))
    tag = uuid.uuid4().hex[:8]
    sitedir, extra = root / "site-packages", root / "editable-src"
    for d in (root, sitedir, extra):
        d.mkdir(exist_ok=True)
        d.chmod(0o755)
    (sitedir / f"sitepkg_{tag}").mkdir(mode=0o755)
    (sitedir / f"sitepkg_{tag}" / "__init__.py").write_text("VALUE = 41\n")
    (extra / f"pthmod_{tag}.py").write_text("VALUE = 1\n")
    (sitedir / f"focalpo_test_{tag}.pth").write_text(str(extra) + "\n")
    (root / "secret.txt").write_text("not for jobs")
    monkeypatch.setattr(sys, "path", list(sys.path))
    site.addsitedir(str(sitedir))  # processes the .pth file, as at start-up
    yield root, tag
    subprocess.run(["rm", "-rf", str(root)], check=False)


def test_jobs_import_from_a_site_dir_and_pth_paths_under_the_temp_dir(temp_site):
    root, tag = temp_site
    program = textwrap.dedent(f"""
        import os
        import sitepkg_{tag}, pthmod_{tag}

        def value():
            return sitepkg_{tag}.VALUE + pthmod_{tag}.VALUE

        def attempts(site_dir, secret):
            out = {{}}
            for name, path in (("write_site", os.path.join(site_dir, "planted.py")), ("write_root", "{root}/planted.py")):
                try:
                    open(path, "w").close()
                    out[name] = "written"
                except OSError as e:
                    out[name] = type(e).__name__
            try:
                out["secret"] = open(secret).read()
            except OSError as e:
                out["secret"] = type(e).__name__
            return out
    """)
    with ExecPool(workers=1, limits=FAST) as pool:
        _need_private_tmp(pool)
        res = run_one(pool, program, [
            CallTest("import", "value", (), expected=42),
            CallTest("confined", "attempts", (str(root / "site-packages"), str(root / "secret.txt"))),
        ], return_outputs=True)  # fmt: skip
    assert statuses(res) == ["pass", "pass"], res.load_error or res.verdicts
    attempts = res.outputs[1]
    assert attempts["write_site"] in ("OSError", "PermissionError")  # read-only (EROFS) or not the job's
    assert attempts["write_root"] in ("OSError", "PermissionError", "FileNotFoundError")
    assert attempts["secret"] == "FileNotFoundError"  # the neighbours of an import location stay hidden
    assert not (root / "site-packages" / "planted.py").exists() and not (root / "planted.py").exists()
    assert res.missing_modules == []


def test_import_locations_cover_prefixes_site_dirs_pth_paths_and_editable_finders(temp_site, monkeypatch, tmp_path):
    root, _ = temp_site
    pkg = tmp_path / "mapped" / "editpkg"
    pkg.mkdir(parents=True)
    fake = type(sys)("__editable___fake_finder")
    fake.MAPPING = {"editpkg": str(pkg)}
    fake.NAMESPACES = {"ns": [str(tmp_path / "mapped")]}

    class Finder:
        find_spec = staticmethod(lambda *a, **k: None)

    Finder.__module__ = fake.__name__
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    locations = import_locations()
    for path in (sys.prefix, sys.base_prefix, root / "site-packages", root / "editable-src", pkg, tmp_path / "mapped"):
        assert os.path.realpath(path) in locations


def test_a_venv_under_the_temp_dir_imports_its_own_packages(tmp_path):
    """The reported bug itself: a pool run by a virtualenv's interpreter that lives under /tmp.
    The venv has a package only it holds, and (through a .pth file) this environment's
    site-packages, so its jobs import numpy from wherever this test's numpy lives."""
    np = pytest.importorskip("numpy")
    venv = Path(tempfile.mkdtemp(prefix="focalpo-venv-", dir=tempfile.gettempdir()))
    try:
        venv.chmod(0o755)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        (purelib,) = (venv / "lib").glob("python3*/site-packages")
        (purelib / "venvonly").mkdir()
        (purelib / "venvonly" / "__init__.py").write_text("ANSWER = 42\n")
        (purelib / "outer.pth").write_text(str(Path(np.__file__).parents[1]) + "\n")
        script = textwrap.dedent("""
            import json
            from focalpo.sandbox import CallTest, execute
            r = execute("import numpy, venvonly\\ndef f(): return int(numpy.int64(venvonly.ANSWER))",
                        [CallTest("t", "f", (), expected=42)])
            print(json.dumps({"status": r.status, "load_error": r.load_error, "private_tmp": r.isolation["private_tmp"],
                              "messages": [v.message for v in r.verdicts]}))
        """)
        env = {**os.environ, "PYTHONPATH": SRC}
        out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["status"] == "pass", got
    finally:
        subprocess.run(["rm", "-rf", str(venv)], check=False)


def test_a_module_only_the_parent_can_import_is_an_environment_fault(monkeypatch):
    """A directory on this process's sys.path that the jobs' unprivileged user cannot read (mode
    700 under the temporary directory): jobs fail to import from it, the pool stops with the
    module and the directory, and no result is returned to be scored."""
    hidden = Path(tempfile.mkdtemp(prefix="focalpo-hidden-", dir=tempfile.gettempdir()))  # mode 700
    name = f"parentonly_{uuid.uuid4().hex[:8]}"
    (hidden / f"{name}.py").write_text("X = 1\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(hidden)])
    try:
        with ExecPool(workers=1, limits=FAST) as pool:
            _need_private_tmp(pool)
            jobs = [Job(f"import {name}\ndef f(): return 1", [CallTest("t", "f", (), expected=1)]) for _ in range(3)]
            with pytest.raises(EnvironmentFault) as err:
                pool.map(jobs)
        assert err.value.module == name
        assert str(hidden) in str(err.value) and "mode 700" in str(err.value)
    finally:
        subprocess.run(["rm", "-rf", str(hidden)], check=False)


def test_a_module_missing_everywhere_is_the_samples_failure_and_named():
    name = f"not_installed_{uuid.uuid4().hex[:8]}"
    res = execute(f"import {name}\ndef f(): return 1", [CallTest("t", "f", (), expected=1)], FAST)
    assert res.status == Status.EXCEPTION and res.missing_modules == [name]
    inside = execute(f"def f():\n    import json, {name}.sub\n    return 1", [CallTest("t", "f", (), expected=1)], FAST)
    assert statuses(inside) == ["exception"] and inside.missing_modules == [name]


def test_a_program_that_raises_the_error_itself_is_not_an_environment_fault():
    """A forged 'No module named json' (json imports fine in jobs): the probe job finds json, so
    this is the program's failure, and nothing is reported missing."""
    forged = "def f():\n    raise ModuleNotFoundError(\"No module named 'json'\")"
    res = execute(forged, [CallTest("t", "f", (), expected=1)], FAST)
    assert statuses(res) == ["exception"] and res.missing_modules == []
    broken = "import sys\nsys.path.clear()\nsys.modules.pop('json', None)\nimport json\ndef f(): return 1"
    res = execute(broken, [CallTest("t", "f", (), expected=1)], FAST)
    assert res.load_error.startswith("ModuleNotFoundError") and res.missing_modules == []


def test_not_found_modules_reads_top_level_names_from_load_errors_and_verdicts():
    res = ExecResult(
        verdicts=[
            Verdict("a", Status.EXCEPTION, "ModuleNotFoundError: No module named 'pandas.io'"),
            Verdict("b", Status.WRONG_ANSWER, "ModuleNotFoundError: No module named 'ignored'"),
            Verdict("c", Status.EXCEPTION, "ModuleNotFoundError: No module named 'sklearn'"),
            Verdict("d", Status.EXCEPTION, "ModuleNotFoundError: No module named 'pandas'"),
        ],
        load_error="",
    )
    assert not_found_modules(res) == ["pandas", "sklearn"]
    loaded = ExecResult([Verdict("a", Status.EXCEPTION, "program failed to load: ModuleNotFoundError: No module named 'scipy'")],
                        load_error="ModuleNotFoundError: No module named 'scipy'")  # fmt: skip
    assert not_found_modules(loaded) == ["scipy"]


def test_a_private_working_directory_on_sys_path_does_not_hide_the_interpreter(monkeypatch):
    """`python -c` or a notebook started in the user's home (/root, mode 700, holding pyenv's
    interpreter): "" on sys.path makes that directory an import location jobs cannot read. It is
    covered like any such ancestor, and the interpreter's own directories inside it stay visible."""
    private = next((a for a in Path(os.path.realpath(sys.base_prefix)).parents
                    if a != Path("/") and not a.stat().st_mode & 0o001), None)  # fmt: skip
    if private is None:
        pytest.skip("the interpreter does not live under a directory closed to other users here")
    monkeypatch.chdir(private)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    with ExecPool(workers=1, limits=FAST) as pool:
        _need_private_tmp(pool)
        res = run_one(pool, "import json, decimal\ndef f(): return json.dumps([1])", [CallTest("t", "f", (), expected="[1]")])
        assert statuses(res) == ["pass"], res.load_error or res.verdicts
        assert f"import location {private} is not open to other users: jobs cannot read it" in pool.isolation["notes"]
