"""`focalpo <command>`: the command-line entry point.

    focalpo eval --benchmark humaneval+ --samples samples.jsonl [--out results.json] [--workers N]
    focalpo eval --benchmark humaneval+ --canonical          # the reference solutions as samples
    focalpo sample --benchmark humaneval+ --backend hf --model PATH --n 1 --temperature 0 --out greedy.jsonl
    focalpo localize --in trl.jsonl --method lcs --out pairs.jsonl   # D+/D- or prefix/suffix regions
    focalpo train --model PATH --data pairs.jsonl --scheme target-rpo --output runs/a [key=value ...]
    focalpo sft --model PATH --data chats.jsonl --output runs/sft    # NLL on the last assistant turn
    focalpo synth-prompts --source-dir REPO --out problems.jsonl --backend openai --model M --base-url URL
    focalpo focused --benchmark mbpp+ --backend hf --model PATH --out runs/fd [--shard 0/4] [--resume]
    focalpo codeflow --instructions tasks.jsonl --backend openai --model M --base-url URL --out runs/cf
    focalpo merge runs/fd-0 runs/fd-1 --out runs/fd           # shards of one pipeline run
    focalpo analyze runs/fd/records.jsonl [--out table.csv]   # error concentration (Phi)

Each command imports its machinery lazily, so `focalpo --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def _add_eval(sub) -> None:
    from focalpo.problems.registry import BENCHMARKS

    p = sub.add_parser("eval", help="pass@k of samples on a benchmark, executed in the sandbox")
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", help="evalplus-format JSONL (task_id + solution|completion) or sample dir")
    src.add_argument("--canonical", action="store_true", help="evaluate the benchmark's reference solutions")
    p.add_argument("--data", help="benchmark file (default: the bundled copy in ../shared/data)")
    p.add_argument("--out", help="results JSON (default: <samples>.eval_results.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    p.add_argument("--workers", type=int, default=None, help="sandbox workers (default: all cores)")
    p.add_argument("--base-only", action="store_true", help="skip the plus tests")
    p.add_argument("--details", action="store_true", help="run every test instead of stopping at the first failure")
    p.add_argument("--min-time-limit", type=float, default=1.0, help="seconds; per-test limit floor")
    p.add_argument("--time-factor", type=float, default=4.0, help="per-test limit = max(min, factor x reference time)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per test without a reference time")
    p.add_argument("--sample-time-cap", type=float, default=None,
                   help="seconds: cap of the whole-sample time limit the benchmark's harness applies (evalplus: "
                        "min(cap, sum of per-test limits) + 2 s, cap 60; BigCodeBench: cap + 2 s, cap 240); "
                        "0 = per-test limits only")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_eval)


def _canonical_samples(benchmark: str, data: str | None) -> str:
    import json

    from focalpo.problems import load_benchmark

    problems = load_benchmark(benchmark, data)
    fd, path = tempfile.mkstemp(prefix=f"{benchmark.replace('+', 'plus')}-canonical-", suffix=".jsonl")
    with open(fd, "w") as f:
        for p in problems:
            f.write(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n")
    return path


def _cmd_eval(args) -> int:
    samples = args.samples
    out = args.out
    if args.canonical:
        samples = _canonical_samples(args.benchmark, args.data)
        out = out or str(Path(samples).with_suffix(".eval_results.json"))
    try:
        return _evaluate(args, samples, out)
    finally:
        if args.canonical:  # the reference solutions' temp file; the results keep each program
            Path(samples).unlink(missing_ok=True)


def _evaluate(args, samples: str, out: str | None) -> int:
    from focalpo.eval.run import EvalConfig, evaluate_benchmark, print_report

    cfg = EvalConfig(
        benchmark=args.benchmark,
        samples=samples,
        data=args.data,
        out=out,
        workers=args.workers,
        base_only=args.base_only,
        details=args.details,
        min_time_limit=args.min_time_limit,
        time_factor=args.time_factor,
        test_time=args.timeout,
        sample_time_cap=args.sample_time_cap,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    result = evaluate_benchmark(cfg)
    print_report(result)
    return 0


def _add_localize(sub) -> None:
    p = sub.add_parser("localize", help="TRL prompt/chosen/rejected rows -> pair records with D+/D- or prefix/suffix spans")
    p.add_argument("--in", dest="in_path", required=True, help="TRL preference rows: .jsonl, .jsonl.gz or a .json list")
    p.add_argument("--out", required=True, help="pair records (JSONL)")
    p.add_argument("--method", choices=["lcs", "prefix-suffix"], default="lcs", help="Target-DPO LCS lines or Focused-DPO prefix/suffix")
    p.add_argument("--unit", choices=["line", "char"], default="line", help="prefix/suffix granularity")
    p.add_argument("--refine", action="store_true", help="lcs: narrow changed lines to the differing words")
    p.add_argument("--no-fences", action="store_true", help="lcs: compare whole texts, not the fenced code")
    p.add_argument("--line-spans", choices=["whole", "content"], default="whole",
                   help="lcs: a changed line's span is the whole line (indentation, content, newline; as the "
                        "official Target-DPO code) or its content from the first non-blank character")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cmd_localize)


def _cmd_localize(args) -> int:
    from focalpo.localize import localize_file

    stats = localize_file(
        args.in_path, args.out, method=args.method, overwrite=args.overwrite,
        unit=args.unit, refine=args.refine, fenced=not args.no_fences, lines=args.line_spans,
    )  # fmt: skip
    print(stats.summary(args.method, args.out))
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="preference-train a policy with the token-weighted DPO loss (transformers.Trainer)",
        description="Flags and key=value overrides (any TrainConfig field, e.g. warmup_ratio=0.03 "
        "scheme_options.w_focused=2 training_args.optim=adamw_torch) override the --config recipe.",
    )
    p.add_argument("--model", help="policy: local HF model directory")
    p.add_argument("--ref-model", help="reference model (default: the initial policy)")
    p.add_argument("--data", help="pairs JSONL (focalpo.pairs) or pre-weighted examples JSONL")
    p.add_argument("--scheme", help="weight scheme: dpo, rpo, focused, target, target-rpo, ... (default dpo)")
    p.add_argument("--output", help="run directory: checkpoints, metrics.jsonl, final model")
    p.add_argument("--config", help="YAML recipe (e.g. configs/target_dpo.yaml)")
    p.add_argument("--beta", type=float)
    p.add_argument("--alpha", type=float, help="weight of the NLL term of rpo / target-rpo (default 1.0)")
    p.add_argument("--loss-type", help="sigmoid (default), ipo, hinge")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--per-device-batch-size", type=int)
    p.add_argument("--reference", choices=["precompute", "live"], help="reference log-probs: cached once, or a live frozen model")
    p.add_argument("--lora", action="store_true", default=None, help="train a LoRA adapter (reference = adapter disabled)")
    p.add_argument("--report-to", help="comma-separated: tensorboard, wandb, none")
    p.add_argument("--resume", action="store_true", default=None, help="continue from the last checkpoint in --output")
    p.add_argument("--overwrite", action="store_true", default=None, help="reuse a non-empty --output (drops its checkpoints and metrics)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, applied last")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from focalpo.config import load_config
    from focalpo.train.config import TrainConfig
    from focalpo.train.run import train

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "func", "config", "overrides")}
    cfg = load_config(TrainConfig, args.config, args.overrides, flags=flags)
    result = train(cfg)
    if result.is_main_process:
        print(f"trained {result.global_step} steps (mean loss {result.train_loss:.4f}); model in {result.output}, "
              f"metrics in {result.metrics}")
    return 0


def _add_focused(sub) -> None:
    from focalpo.problems.registry import BENCHMARKS

    p = sub.add_parser(
        "focused", help="Focused-DPO data: sample k programs and k tests, run them, rank by PageRank, pair",
        description="Flags and key=value overrides (any FocusedConfig field, e.g. lam=2 "
        "backend_options.dtype=bfloat16) override the --config YAML. Outputs records.jsonl, "
        "pairs.jsonl and summary.json in --out.",
    )
    p.add_argument("--config", help="YAML with FocusedConfig fields")
    p.add_argument("--out", help="run directory (records.jsonl, pairs.jsonl, summary.json, config.json)")
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="problem loader (default jsonl)")
    p.add_argument("--problems", help="problem file for the loader (default: the benchmark's bundled copy)")
    p.add_argument("--limit", type=int, help="only the first N problems")
    _add_backend_args(p, "hf")
    p.add_argument("--k", type=int, help="programs per problem (default 10)")
    p.add_argument("--k-tests", type=int, help="test answers per problem (default 10)")
    p.add_argument("--temperature", type=float, help="default 1.5")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--prompt-style", choices=["instruct", "complete"])
    p.add_argument("--program-template", metavar="FILE", help="program prompt template ({prompt}, {entry_point})")
    p.add_argument("--test-template", metavar="FILE", help="test prompt template ({prompt}, {entry_point})")
    p.add_argument("--timeout", type=float, help="seconds per test in the sandbox (default 2)")
    p.add_argument("--lam", type=float, help="λ of Diff = rank difference + λ·common length (default 1)")
    p.add_argument("--max-pairs", type=int, help="pairs per problem (default 1)")
    _add_run_args(p)
    p.set_defaults(func=_cmd_focused)


def _add_backend_args(p, default: str) -> None:
    """The generation-backend flags of the commands that sample from a model."""
    others = ", ".join(b for b in ("hf", "openai", "scripted") if b != default)
    p.add_argument("--backend", help=f"generation backend: {default} (default), {others}")
    p.add_argument("--model", help="hf: local directory or hub id; openai: served model name")
    p.add_argument("--base-url", help="openai backend: server URL up to /v1 (API key from $OPENAI_API_KEY)")
    p.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend keyword option, repeatable (dtype=bfloat16, batch_size=16, max_concurrency=64)")


def _add_run_args(p) -> None:
    """The flags every data pipeline shares: workers, seed, sharding, resume, progress, overrides."""
    p.add_argument("--workers", type=int, help="sandbox workers (default: all cores)")
    p.add_argument("--seed", type=int)
    p.add_argument("--shard", help="i/N: run the i-th of N shards (merge them with focalpo merge)")
    p.add_argument("--batch-problems", type=int, help="problems per generation call (default 16)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--overwrite", action="store_true", help="discard the run in --out and start afresh")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, applied last")


def _pipeline_config(cls, args, template_flags: tuple[str, ...]):
    """A pipeline's config from --config YAML < flags (template flags read from their files) <
    --backend-option < key=value overrides."""
    import json

    from focalpo.generate.base import parse_backend_option
    from focalpo.config import load_config

    skip = ("command", "func", "config", "overrides", "resume", "overwrite", "backend_option", *template_flags)
    flags = {k: v for k, v in vars(args).items() if k not in skip}
    for name in template_flags:
        if getattr(args, name):
            flags[name] = Path(getattr(args, name)).read_text(encoding="utf-8")
    overrides = [f"backend_options.{k}={json.dumps(v)}" for k, v in map(parse_backend_option, args.backend_option)]
    return load_config(cls, args.config, overrides + args.overrides, flags=flags)


def _print_run(summary: dict, out: str) -> None:
    import json

    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=1))
    print(f"pairs: {Path(out) / 'pairs.jsonl'}; records: {Path(out) / 'records.jsonl'}")


def _cmd_focused(args) -> int:
    from focalpo.pipelines.focused import FocusedConfig, run_focused

    cfg = _pipeline_config(FocusedConfig, args, ("program_template", "test_template"))
    _print_run(run_focused(cfg, resume=args.resume, overwrite=args.overwrite), cfg.out)
    return 0


def _add_codeflow(sub) -> None:
    from focalpo.problems.registry import BENCHMARKS

    p = sub.add_parser(
        "codeflow", help="Target-DPO CodeFlow data: a teacher writes code and tests, fixes it from execution "
        "feedback; LCS-localised pairs",
        description="Flags and key=value overrides (any CodeflowConfig field, e.g. rejected=last "
        "max_rejected_lines=30) override the --config YAML. Outputs records.jsonl, pairs.jsonl, "
        "summary.json and report.txt in --out.",
    )
    p.add_argument("--config", help="YAML with CodeflowConfig fields")
    p.add_argument("--out", help="run directory")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--instructions", help="JSONL of {task_id, instruction}")
    src.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="instructions from a benchmark's problems")
    p.add_argument("--problems", help="problem file for --benchmark (default: the bundled copy)")
    p.add_argument("--limit", type=int, help="only the first N instructions")
    _add_backend_args(p, "openai")
    p.add_argument("--max-iterations", type=int, help="answers per problem, first included (default 5)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--teacher-template", metavar="FILE", help="first prompt template ({instruction})")
    p.add_argument("--fix-template", metavar="FILE", help="feedback turn template ({feedback})")
    p.add_argument("--rejected", choices=["random", "first", "last"], help="which failing version to pair (default random)")
    p.add_argument("--tokenizer", help="tokenizer of the 2048-token rule (default: the hf teacher's; else off)")
    p.add_argument("--judge", action="store_true", default=None, help="also apply the LLM-judge filter")
    p.add_argument("--judge-model", help="judge model (default: the teacher)")
    p.add_argument("--judge-template", metavar="FILE", help="judge prompt template ({instruction}, {chosen}, {rejected})")
    p.add_argument("--timeout", type=float, help="seconds per test (default 4)")
    _add_run_args(p)
    p.set_defaults(func=_cmd_codeflow)


def _cmd_codeflow(args) -> int:
    from focalpo.pipelines.codeflow import CodeflowConfig, run_codeflow
    from focalpo.pipelines.codeflow_report import format_report

    cfg = _pipeline_config(CodeflowConfig, args, ("teacher_template", "fix_template", "judge_template"))
    summary = run_codeflow(cfg, resume=args.resume, overwrite=args.overwrite)
    print(format_report(summary), end="")
    print(f"pairs: {Path(cfg.out) / 'pairs.jsonl'}; records: {Path(cfg.out) / 'records.jsonl'}")
    return 0


def _add_merge(sub) -> None:
    p = sub.add_parser("merge", help="merge the shard runs of a data pipeline into one run directory")
    p.add_argument("runs", nargs="+", help="shard run directories (--out of each --shard i/N run)")
    p.add_argument("--out", required=True, help="merged run directory")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.set_defaults(func=_cmd_merge)


def _cmd_merge(args) -> int:
    from focalpo.pipelines.runner import merge_runs

    result = merge_runs(args.runs, args.out, overwrite=args.overwrite)
    print(f"merged {result['records']} records from {len(args.runs)} runs into {args.out} "
          f"({result['summary']['pairs']} pairs)")
    if result["missing_shards"]:
        print(f"warning: shards {', '.join(result['missing_shards'])} are missing", file=sys.stderr)
    return 0


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="Focused-DPO's error-concentration table (Phi of prefix/middle/suffix)")
    p.add_argument("samples", help="JSONL: task_id, programs, correct or pass_matrix (a focused run's records.jsonl)")
    p.add_argument("--unit", choices=["line", "char"], default="line")
    p.add_argument("--out", help="also write the table as CSV")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args) -> int:
    from focalpo.analyze import main as analyze_main

    argv = [args.samples, "--unit", args.unit] + (["--out", args.out] if args.out else [])
    return analyze_main(argv + (["--overwrite"] if args.overwrite else []))


def _add_synth_prompts(sub) -> None:
    from focalpo.pipelines.synth import add_arguments

    p = sub.add_parser("synth-prompts", help="Focused-DPO phase 0: problems from concepts (APIs, documented "
                       "functions) in Python sources, written by a model")
    add_arguments(p)
    p.set_defaults(func=_cmd_synth_prompts)


def _cmd_synth_prompts(args) -> int:
    from focalpo.pipelines.synth import run

    return run(args)


def _add_sft(sub) -> None:
    p = sub.add_parser(
        "sft", help="supervised fine-tuning: NLL on the last assistant message of chat JSONL (transformers.Trainer)",
        description="Flags and key=value overrides (any SFTConfig field, e.g. warmup_ratio=0.1 save_strategy=no "
        "training_args.optim=adamw_torch) override the --config recipe.",
    )
    p.add_argument("--model", help="local HF model directory (its tokenizer needs a chat template)")
    p.add_argument("--data", help='chat JSONL: {"messages": [{"role": ..., "content": ...}, ...]} per line')
    p.add_argument("--output", help="run directory: checkpoints, metrics.jsonl, final model")
    p.add_argument("--config", help="YAML recipe with SFTConfig fields")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--num-train-epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--per-device-batch-size", type=int)
    p.add_argument("--max-length", type=int, help="tokens of prompt + answer (default 512)")
    p.add_argument("--seed", type=int)
    p.add_argument("--report-to", help="comma-separated: tensorboard, wandb, none")
    p.add_argument("--resume", action="store_true", default=None, help="continue from the last checkpoint in --output")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="reuse a non-empty --output (drops its checkpoints and metrics)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, applied last")
    p.set_defaults(func=_cmd_sft)


def _cmd_sft(args) -> int:
    from focalpo.config import load_config
    from focalpo.train.sft import SFTConfig, sft

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "func", "config", "overrides")}
    result = sft(load_config(SFTConfig, args.config, args.overrides, flags=flags))
    if result.is_main_process:
        d = result.data
        print(f"sft: {d.examples} of {d.rows} examples ({d.dropped} dropped: prompt >= max_length; {d.truncated} "
              f"truncated); trained {result.global_step} steps (mean loss {result.train_loss:.4f}); model in "
              f"{result.output}, metrics in {result.metrics}")
    return 0


def _add_sample(sub) -> None:
    from focalpo.problems.registry import BENCHMARKS

    p = sub.add_parser(
        "sample", help="sample n answers per benchmark problem into an evalplus-format samples file (focalpo eval)",
        description="Flags and key=value overrides (any SampleConfig field, e.g. backend_options.dtype=bfloat16) "
        "override the --config YAML. Prompts are focalpo focused's program prompts.",
    )
    p.add_argument("--config", help="YAML with SampleConfig fields")
    p.add_argument("--out", help="samples JSONL (its config goes to <stem>.sample_config.json)")
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="problem loader (default jsonl)")
    p.add_argument("--problems", help="problem file for the loader (default: the benchmark's bundled copy)")
    p.add_argument("--limit", type=int, help="only the first N problems")
    _add_backend_args(p, "hf")
    p.add_argument("--n", type=int, help="samples per problem (default 1)")
    p.add_argument("--temperature", type=float, help="default 0 (greedy)")
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-new-tokens", type=int, help="default 512")
    p.add_argument("--prompt-style", choices=["instruct", "complete"])
    p.add_argument("--program-template", metavar="FILE", help="program prompt template ({prompt}, {entry_point})")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-problems", type=int, help="problems per generation call (default 16)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="keep the complete problems in --out, sample the rest")
    run.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, applied last")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    from focalpo.eval.sample import SampleConfig, run_sample

    cfg = _pipeline_config(SampleConfig, args, ("program_template",))
    cfg.resume, cfg.overwrite = cfg.resume or args.resume, cfg.overwrite or args.overwrite
    result = run_sample(cfg)
    data = f" --data {cfg.problems}" if cfg.problems else ""
    print(f"sampled {result['sampled']} problems ({result['skipped']} already complete) x {cfg.n} into {cfg.out}; "
          f"evaluate: focalpo eval --benchmark {cfg.benchmark}{data} --samples {cfg.out}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the whole method end to end on a CPU in the toy world (tasks, SFT, focused, "
                       "codeflow, localize, train 5 schemes, held-out pass@k, report)")
    p.add_argument("--output", default="focalpo-demo", help="demo directory (default ./focalpo-demo)")
    p.add_argument("--preset", choices=["quick", "mini", "full"], default=None, help="sizes (default quick)")
    p.add_argument("--full", action="store_true",
                   help="same as --preset full: 3 seeds, pass@10 of 10 samples per held-out task")
    p.add_argument("--seeds", type=int, help="seeds to run (table: mean ± 95 %% CI); default: the preset's")
    p.add_argument("--overwrite", action="store_true", help="run in a non-empty --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bars in any stage")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from focalpo.toyworld.demo import config_for, run_demo
    from focalpo.toyworld.report import format_table

    if args.full and args.preset not in (None, "full"):
        raise ValueError(f"--full contradicts --preset {args.preset}")
    preset = "full" if args.full else args.preset or "quick"
    demo = run_demo(args.output, config_for(preset, args.seeds), preset=preset, overwrite=args.overwrite,
                    progress=not args.no_progress)
    print("\n" + format_table(demo["table"]))
    out = Path(args.output)
    print(f"report: {out / 'report.html'} (and report.md); pair viewer: {out / 'pairs.html'}; "
          f"numbers: {out / 'demo.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focalpo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_eval(sub)
    _add_sample(sub)
    _add_localize(sub)
    _add_train(sub)
    _add_sft(sub)
    _add_synth_prompts(sub)
    _add_focused(sub)
    _add_codeflow(sub)
    _add_merge(sub)
    _add_analyze(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from focalpo.generate.base import GenerationError
    from focalpo.sandbox.environment import EnvironmentFault

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, GenerationError, EnvironmentFault) as e:
        print(f"focalpo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
