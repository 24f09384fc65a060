"""Tests of focalpo.cli: one convention for every command (typed config, --config YAML, flags,
key=value overrides), errors as exit code 2 with the message, and a light import.

Run: .venv/bin/python -m pytest tests/test_cli.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from focalpo.cli import build_parser, main, take_overrides

# every command but `demo` (whose options are presets of the toy world) is a typed config
CONFIG_COMMANDS = ("eval", "sample", "localize", "train", "sft", "synth-prompts", "focused", "codeflow", "merge",
                   "analyze", "analyze continue", "view")


def _subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def test_every_command_takes_a_config_file_and_overrides():
    commands = _subcommands()
    assert set(CONFIG_COMMANDS) | {"demo"} == set(commands)
    for name in CONFIG_COMMANDS:
        args = commands[name].parse_args(["--config", "c.yaml", "a=1", "b.c=2"])
        for positional in ("runs", "samples", "pairs", "run"):  # merge RUN..., analyze FILE, view FILE, ... RUN
            if positional in vars(args):
                take_overrides(args, positional)
                assert getattr(args, positional) is None, name
        assert (args.config, args.overrides) == ("c.yaml", ["a=1", "b.c=2"]), name
    args = commands["merge"].parse_args(["runs/a", "runs/b=c/d", "out=runs/m"])  # a path is no override
    take_overrides(args, "runs")
    assert (args.runs, args.overrides) == (["runs/a", "runs/b=c/d"], ["out=runs/m"])


def test_flags_default_to_none_so_the_yaml_is_not_overridden():
    # a flag the user did not give must not replace the YAML's value with argparse's default
    for name in CONFIG_COMMANDS:
        args = vars(_subcommands()[name].parse_args([]))
        given = {k: v for k, v in args.items() if v not in (None, [], False) and k not in ("overrides", "func")}
        assert given == {}, (name, given)


def _pairs_input(tmp_path):
    src = tmp_path / "trl.jsonl"
    src.write_text(json.dumps({"prompt": "p", "chosen": "a = 1\nb = 2\n", "rejected": "a = 1\nb = 3\n"}) + "\n")
    return src


def test_yaml_then_flag_then_override(tmp_path, capsys):
    src = _pairs_input(tmp_path)
    out = tmp_path / "pairs.jsonl"
    config = tmp_path / "localize.yaml"
    config.write_text(f"input: {src}\nout: {out}\nmethod: prefix-suffix\nlines: content\n")
    # the flag beats the YAML (method), the override beats the flag (unit)
    assert main(["localize", "--config", str(config), "--method", "lcs", "--unit", "char", "unit=line"]) == 0
    meta = json.loads(out.read_text())["meta"]["localize"]
    assert (meta["method"], meta["unit"], meta["lines"]) == ("lcs", "line", "content")


def test_overrides_may_follow_flags_that_follow_a_positional(tmp_path, capsys):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "t", "programs": ["a = 1\n", "a = 2\n"], "correct": [True, False]}) + "\n")
    out = tmp_path / "t.csv"
    assert main(["analyze", str(samples), "--unit", "char", f"out={out}"]) == 0  # the override after --unit
    assert out.is_file()
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(samples), "--unit", "char", "not-an-override"])
    assert exc.value.code == 2 and "unrecognized arguments: not-an-override" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--output", str(tmp_path / "d"), "seeds=2"])  # demo takes no overrides


def test_errors_exit_2_naming_the_field_or_file(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("input: x.jsonl\nmethd: lcs\n")
    assert main(["localize", "--config", str(config)]) == 2
    assert f"{config}:2: unknown field 'methd' (did you mean method?)" in capsys.readouterr().err
    assert main(["localize", "--in", str(_pairs_input(tmp_path)), "--out", str(tmp_path / "o.jsonl"), "refine=maybe"]) == 2
    assert "override 'refine=maybe': field 'refine': expected bool" in capsys.readouterr().err
    missing = tmp_path / "nope.txt"
    assert main(["focused", "--out", str(tmp_path / "run"), "--backend", "scripted", "--program-template", str(missing)]) == 2
    assert f"--program-template {missing}: no such file" in capsys.readouterr().err


def test_repeated_base_url_reaches_the_backend_as_several_servers(tmp_path, capsys):
    from focalpo.problems.jsonl import dump_jsonl
    from focalpo.problems.types import Problem

    problems = tmp_path / "p.jsonl"
    dump_jsonl([Problem(task_id="t/0", prompt="Write f.", entry_point="f", canonical_solution="", tests={})], problems)
    a, b = "http://127.0.0.1:9/v1", "http://127.0.0.1:7/v1"  # nothing listens there: both refuse
    assert main(["sample", "--problems", str(problems), "--backend", "openai", "--model", "m", "--base-url", a,
                 "--base-url", b, "--backend-option", "max_retries=0", "--out", str(tmp_path / "s.jsonl"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert a in err and b in err and "all 2 servers are down" in err


def test_merge_and_analyze_read_their_inputs_from_the_yaml_too(tmp_path, capsys):
    config = tmp_path / "merge.yaml"
    config.write_text(f"runs: [{tmp_path / 'a'}, {tmp_path / 'b'}]\nout: {tmp_path / 'm'}\n")
    assert main(["merge", "--config", str(config)]) == 2  # the runs come from the YAML, and do not exist
    assert f"{tmp_path / 'a'}: not a run directory" in capsys.readouterr().err


def test_help_and_import_stay_light():
    code = "import sys, focalpo.cli as c; c.build_parser(); print(sorted(m for m in ('torch', 'transformers', 'numpy', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", CONFIG_COMMANDS + ("demo",))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and "usage: focalpo " + command in capsys.readouterr().out
