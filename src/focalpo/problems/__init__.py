"""The problem layer: benchmark files -> `Problem`s whose tests the sandbox runs as they are.

Loaders (each takes a path, gzip or plain JSONL, and returns problems in file order; a bad row
raises `ProblemFormatError`, a `ValueError` reading `file:line: field 'x': ...`):

    load_humaneval        original HumanEval, `check(candidate)` split into AssertTests
    load_humaneval_plus   HumanEval+ base/plus inputs -> CallTests (expected filled by groundtruth)
    load_mbpp_plus        MBPP+, with evalplus 0.3.1 input deserialisation and special oracles
    load_bigcodebench     one UnittestTest per test method
    load_livecodebench    LiveCodeBench code generation (stdin and functional tests)
    load_jsonl            focalpo's own format (`dump_jsonl` writes it)
    load_benchmark(name)  any of the above by name, default files from ../shared/data

Expected outputs of HumanEval+/MBPP+ come from running the reference solutions:
`focalpo.problems.groundtruth.fill_expected`.
"""

# First: registers the benchmarks' named oracles with the sandbox's judge (see its docstring), so
# a process that loads problems can judge them.
from focalpo.problems import oracles  # noqa: F401
from focalpo.problems.bigcodebench import load_bigcodebench
from focalpo.problems.evalplus import load_humaneval_plus, load_mbpp_plus
from focalpo.problems.humaneval import load_humaneval
from focalpo.problems.jsonl import dump_jsonl, load_jsonl, problem_to_dict
from focalpo.problems.livecodebench import decode_private_tests, load_livecodebench
from focalpo.problems.mbpp_inputs import deserialize_mbpp_input
from focalpo.problems.registry import BENCHMARKS, benchmark_path, load_benchmark
from focalpo.problems.rows import ProblemFormatError, dataset_hash
from focalpo.problems.types import Problem

__all__ = [
    "BENCHMARKS",
    "Problem",
    "ProblemFormatError",
    "benchmark_path",
    "dataset_hash",
    "decode_private_tests",
    "deserialize_mbpp_input",
    "dump_jsonl",
    "load_benchmark",
    "load_bigcodebench",
    "load_humaneval",
    "load_humaneval_plus",
    "load_jsonl",
    "load_livecodebench",
    "load_mbpp_plus",
    "problem_to_dict",
]
