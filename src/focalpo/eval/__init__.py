"""Benchmark evaluation: sample programs, run them on a benchmark's tests, report pass@k.

    focalpo sample --benchmark humaneval+ --backend hf --model PATH --n 10 --out samples.jsonl
    focalpo eval --benchmark humaneval+ --samples samples.jsonl      # -> samples.eval_results.json

- `run`: the engine of `focalpo eval` (`EvalConfig`, `evaluate_benchmark`): expected outputs, time
  limits, the sandbox, `results.json`;
- `sample`: `focalpo sample` (`SampleConfig`, `run_sample`): n programs per benchmark problem;
- `passk`: unbiased pass@k and summaries (pure);
- `errors`: error types of failing samples and the modules an environment lacks (pure).

Importing this package imports nothing heavy.
"""
