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
    focalpo merge runs/fd-0 runs/fd-1 --out runs/fd           # shards of one pipeline run (or of one sample run)
    focalpo analyze runs/fd/records.jsonl [--out table.csv]   # error concentration (Phi)
    focalpo analyze continue runs/fd [--backend B --model M --n 5 --temperature 0.8]   # continuation test
    focalpo view runs/fd/pairs.jsonl [--tokenizer PATH] [--scheme focused ...]   # -> runs/fd/pairs.html

Every command is one typed config (a dataclass of the module that runs it: `EvalConfig`,
`FocusedConfig`, `TrainConfig`, ...), filled from `--config FILE.yaml` < flags < `key=value`
overrides (`focalpo.config.load_config`); a flag not given never overrides the YAML. This file only
declares the flags and prints the results; each command imports its machinery lazily, so `focalpo
--help` stays instant. It runs past 400 lines for that reason alone: one parser per command, each
flag with its help.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def _add_eval(sub) -> None:
    from focalpo.problems.registry import BENCHMARKS

    p = sub.add_parser("eval", help="pass@k of samples on a benchmark, executed in the sandbox",
                       description=_OVERRIDES.format(cls="EvalConfig", eg="time_factor=2 memory=8589934592"))
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--samples", help="evalplus-format JSONL (task_id + solution|completion), the same as parquet "
                     "or a save_to_disk directory, or an evalplus sample dir")
    src.add_argument("--canonical", action="store_true", default=None, help="evaluate the benchmark's reference solutions")
    p.add_argument("--data", help="benchmark file, parquet, save_to_disk directory or Hub id (default: the bundled "
                   "copy in ../shared/data)")
    _add_source_args(p, "--data")
    _add_subset_args(p)
    p.add_argument("--by", action="append", metavar="FIELD",
                   help="also break pass@k down by this problem metadata field (difficulty, platform, ...); repeatable")
    p.add_argument("--out", help="results JSON (default: <samples>.eval_results.json)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing results file")
    p.add_argument("--workers", type=int, help="sandbox workers (default: all cores)")
    p.add_argument("--base-only", action="store_true", default=None, help="skip the plus tests")
    p.add_argument("--details", action="store_true", default=None,
                   help="run every test instead of stopping at the first failure")
    p.add_argument("--min-time-limit", type=float, help="seconds; per-test limit floor (default 1)")
    p.add_argument("--time-factor", type=float, help="per-test limit = max(min, factor x reference time) (default 4)")
    p.add_argument("--timeout", dest="test_time", type=float, help="seconds per test without a reference time")
    p.add_argument("--sample-time-cap", type=float,
                   help="seconds: cap of the whole-sample time limit the benchmark's harness applies (evalplus: "
                        "min(cap, sum of per-test limits) + 2 s, cap 60; BigCodeBench: cap + 2 s, cap 240); "
                        "0 = per-test limits only")  # fmt: skip
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    _add_config_args(p, "EvalConfig")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    from focalpo.eval.run import EvalConfig, evaluate_benchmark, print_report

    print_report(evaluate_benchmark(_config(EvalConfig, args)))
    return 0


def _add_localize(sub) -> None:
    p = sub.add_parser("localize", help="TRL prompt/chosen/rejected rows -> pair records with D+/D- or prefix/suffix spans",
                       description=_OVERRIDES.format(cls="LocalizeConfig", eg="lines=content"))
    p.add_argument("--in", dest="input", help="TRL preference rows: .jsonl(.gz), a .json list, .parquet, a "
                   "save_to_disk directory or a Hub dataset id")
    p.add_argument("--out", help="pair records: JSONL, or parquet when it ends in .parquet (TRL's DPOTrainer reads it)")
    _add_source_args(p, "--in")
    p.add_argument("--method", choices=["lcs", "prefix-suffix"], help="Target-DPO LCS lines (default) or Focused-DPO prefix/suffix")
    p.add_argument("--unit", choices=["line", "char"], help="prefix/suffix granularity (default line)")
    p.add_argument("--refine", action="store_true", default=None, help="lcs: narrow changed lines to the differing words")
    p.add_argument("--no-fences", dest="fenced", action="store_false", default=None,
                   help="lcs: compare whole texts, not the fenced code")
    p.add_argument("--line-spans", dest="lines", choices=["whole", "content"],
                   help="lcs: a changed line's span is the whole line (indentation, content, newline; as the "
                        "official Target-DPO code; default) or its content from the first non-blank character")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing output file")
    _add_config_args(p, "LocalizeConfig")
    p.set_defaults(func=_cmd_localize)


def _cmd_localize(args) -> int:
    from focalpo.localize import LocalizeConfig, run_localize

    cfg = _config(LocalizeConfig, args)
    print(run_localize(cfg).summary(cfg.method, cfg.out))
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="preference-train a policy with the token-weighted DPO loss (transformers.Trainer)",
        description="Flags and key=value overrides (any TrainConfig field, e.g. warmup_ratio=0.03 "
        "scheme_options.w_focused=2 training_args.optim=adamw_torch) override the --config recipe.",
    )
    p.add_argument("--model", help="policy: local HF model directory")
    p.add_argument("--ref-model", help="reference model (default: the initial policy)")
    p.add_argument("--data", help="pairs (focalpo.pairs) or pre-weighted examples: JSONL, parquet, a save_to_disk "
                   "directory or a Hub dataset id")
    _add_source_args(p, "--data")
    p.add_argument("--eval-data", help="validation pairs (or examples); or hold out --eval-fraction of --data")
    p.add_argument("--eval-split", help="dataset split of --eval-data (e.g. test)")
    p.add_argument("--eval-fraction", type=float, help="share of --data held out for validation (hash of the tokens)")
    p.add_argument("--eval-steps", type=int, help="evaluate every N steps (default: save_steps)")
    p.add_argument("--best-metric", help="keep the best checkpoint's model by this eval metric "
                   "(e.g. eval_rewards/accuracies, eval_localized/margins, eval_loss)")
    p.add_argument("--scheme", help="weight scheme: dpo, rpo, focused, target, target-rpo, ... (default dpo)")
    p.add_argument("--output", help="run directory: checkpoints, metrics.jsonl, final model")
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
    _add_config_args(p, "TrainConfig", recipe=True)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from focalpo.train.config import TrainConfig
    from focalpo.train.output import CONFIG_NAME
    from focalpo.train.run import end_processes, train

    _resume_config(args, CONFIG_NAME)
    result = train(_config(TrainConfig, args))
    end_processes()
    if result.is_main_process:
        best = f" (the best checkpoint's: {result.best_checkpoint})" if result.best_checkpoint else ""
        print(f"trained {result.global_step} steps (mean loss {result.train_loss:.4f}); model in {result.output}{best}, "
              f"metrics in {result.metrics}")
    return 0


def _resume_config(args, name: str) -> None:
    """`--output OUT --resume` without `--config`: the run's own resolved config, OUT/<name>, when the run
    got as far as writing it; a run killed before that has nothing to resume (run its command again)."""
    if not args.resume or args.config or not args.output:
        return
    saved = Path(args.output) / name
    if saved.is_file():
        args.config = str(saved)
    elif not args.model:
        raise FileNotFoundError(f"{saved}: no such file: the run stopped before it started training; "
                                "run its original command again (with --resume, or without: nothing was trained)")


def _add_focused(sub) -> None:
    from focalpo.problems.registry import BENCHMARKS

    p = sub.add_parser(
        "focused", help="Focused-DPO data: sample k programs and k tests, run them, rank by PageRank, pair",
        description="Flags and key=value overrides (any FocusedConfig field, e.g. lam=2 "
        "backend_options.dtype=bfloat16) override the --config YAML. Outputs records.jsonl, "
        "pairs.jsonl and summary.json in --out.",
    )
    p.add_argument("--out", help="run directory (records.jsonl, pairs.jsonl, summary.json, config.json)")
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="problem loader (default jsonl)")
    p.add_argument("--problems", help="problem file (or parquet, save_to_disk directory, Hub id) for the loader "
                   "(default: the benchmark's bundled copy)")
    _add_source_args(p, "--problems")
    _add_subset_args(p)
    p.add_argument("--limit", type=int, help="only the first N problems")
    _add_backend_args(p, "hf")
    p.add_argument("--k", type=int, help="programs per problem (default 10)")
    p.add_argument("--k-tests", type=int, help="test answers per problem (default 10)")
    p.add_argument("--temperature", type=float, help="default 1.5")
    p.add_argument("--top-p", type=float, help="nucleus sampling (default 1.0: off)")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--prompt-style", choices=["instruct", "complete"])
    p.add_argument("--program-template", metavar="FILE", help="program prompt template ({prompt}, {entry_point})")
    p.add_argument("--test-template", metavar="FILE", help="test prompt template ({prompt}, {entry_point})")
    p.add_argument("--timeout", type=float, help="seconds per test in the sandbox (default 2)")
    p.add_argument("--lam", type=float, help="λ of Diff = rank difference + λ·common length (default 1)")
    p.add_argument("--max-pairs", type=int, help="pairs per problem (default 1)")
    _add_run_args(p)
    _add_config_args(p, "FocusedConfig")
    p.set_defaults(func=_cmd_focused)


def _add_source_args(p, flag: str) -> None:
    """--split and --columns of a command that reads a dataset (`focalpo.datasets_io`)."""
    p.add_argument("--split", help=f"dataset split of {flag} (a Hub id, or a DatasetDict saved to disk; Hub default: train)")
    p.add_argument("--columns", metavar="FIELD=COLUMN,...",
                   help=f"read these columns of {flag} as focalpo's fields (e.g. prompt=question,chosen=accepted)")


def _add_subset_args(p) -> None:
    """--task-ids, --since, --until: a subset of the benchmark (`focalpo.problems.select`)."""
    p.add_argument("--task-ids", metavar="FILE", help="only these problems: one task id per line (e.g. BigCodeBench-Hard)")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only problems whose contest_date is on or after (LiveCodeBench)")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="only problems whose contest_date is on or before (LiveCodeBench)")


def _add_backend_args(p, default: str) -> None:
    """The generation-backend flags of the commands that sample from a model."""
    others = ", ".join(b for b in ("hf", "vllm", "openai", "scripted") if b != default)
    p.add_argument("--backend", help=f"generation backend: {default} (default), {others}")
    p.add_argument("--model", help="hf, vllm: local directory or hub id; openai: served model name")
    p.add_argument("--base-url", action="append",
                   help="openai backend: server URL up to /v1 (API key from $OPENAI_API_KEY); repeat it, or give a "
                        "comma-separated list, to spread requests over several servers")
    p.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend keyword option, repeatable (dtype=bfloat16, batch_size=16, max_concurrency=64)")


def _add_run_args(p) -> None:
    """The flags every data pipeline shares: workers, seed, sharding, resume, progress, overrides."""
    p.add_argument("--workers", type=int, help="sandbox workers (default: all cores)")
    p.add_argument("--seed", type=int)
    p.add_argument("--shard", help="i/N: run the i-th of N shards (merge them with focalpo merge)")
    p.add_argument("--batch-problems", type=int, help="problems per generation call (default 16)")
    p.add_argument("--parquet", action="store_true", default=None,
                   help="also write pairs.parquet (TRL's DPOTrainer and the Hub read it; the dataset card points to it)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--overwrite", action="store_true", help="discard the run in --out and start afresh")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)


def _print_run(summary: dict, out: str) -> None:
    import json

    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=1))
    print(f"pairs: {Path(out) / 'pairs.jsonl'}; records: {Path(out) / 'records.jsonl'}")


def _cmd_focused(args) -> int:
    from focalpo.pipelines.focused import FocusedConfig, run_focused

    cfg = _config(FocusedConfig, args, files=("program_template", "test_template"), skip=_RUN_MODE)
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
    p.add_argument("--out", help="run directory")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--instructions", help="{task_id, instruction} rows: JSONL, parquet, save_to_disk directory, Hub id")
    src.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="instructions from a benchmark's problems")
    p.add_argument("--problems", help="problem file for --benchmark (default: the bundled copy)")
    _add_source_args(p, "--instructions or --problems")
    _add_subset_args(p)
    p.add_argument("--limit", type=int, help="only the first N instructions")
    _add_backend_args(p, "openai")
    p.add_argument("--max-iterations", type=int, help="answers per problem, first included (default 5)")
    p.add_argument("--temperature", type=float, help="the teacher's (default 0.7)")
    p.add_argument("--top-p", type=float, help="nucleus sampling (default 1.0: off)")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--teacher-template", metavar="FILE", help="first prompt template ({instruction})")
    p.add_argument("--fix-template", metavar="FILE", help="feedback turn template ({feedback})")
    p.add_argument("--rejected", choices=["random", "first", "last"], help="which failing version to pair (default random)")
    p.add_argument("--tokenizer", help="tokenizer of the model that will be trained (hub id or path), for the 2048-token "
                   "rule (default: the hf teacher's; without one the rule does not run and the report says so)")
    p.add_argument("--judge", action="store_true", default=None, help="also apply the LLM-judge filter")
    p.add_argument("--judge-model", help="judge model (default: the teacher)")
    p.add_argument("--judge-template", metavar="FILE", help="judge prompt template ({instruction}, {chosen}, {rejected})")
    p.add_argument("--timeout", type=float, help="seconds per test (default 4)")
    _add_run_args(p)
    _add_config_args(p, "CodeflowConfig")
    p.set_defaults(func=_cmd_codeflow)


def _cmd_codeflow(args) -> int:
    from focalpo.pipelines.codeflow import CodeflowConfig, run_codeflow
    from focalpo.pipelines.codeflow_report import format_report

    cfg = _config(CodeflowConfig, args, files=("teacher_template", "fix_template", "judge_template"), skip=_RUN_MODE)
    summary = run_codeflow(cfg, resume=args.resume, overwrite=args.overwrite)
    print(format_report(summary), end="")
    print(f"pairs: {Path(cfg.out) / 'pairs.jsonl'}; records: {Path(cfg.out) / 'records.jsonl'}")
    return 0


def _add_merge(sub) -> None:
    p = sub.add_parser("merge", help="merge the shards of a data pipeline run (directories) or of a focalpo sample run "
                       "(samples files) into one")
    p.add_argument("runs", nargs="*", help="the --out of each --shard i/N run: run directories, or samples files")
    p.add_argument("--out", help="merged run directory, or merged samples file")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace a run already in --out")
    _add_config_args(p, "MergeConfig")
    p.set_defaults(func=_cmd_merge)


def _cmd_merge(args) -> int:
    from focalpo.pipelines.runner import MergeConfig, merge_runs

    cfg = _config(MergeConfig, args, positional="runs")
    if cfg.runs and all(Path(r).is_file() for r in cfg.runs):  # the shards of a `focalpo sample` run
        from focalpo.eval.sample import merge_samples

        result = merge_samples(cfg.runs, cfg.out, overwrite=cfg.overwrite)
        also = f" (and {result['parquet']})" if result["parquet"] else ""
        print(f"merged {result['samples']} samples of {result['problems']} problems from {len(cfg.runs)} files "
              f"into {cfg.out}{also}")
    else:
        result = merge_runs(cfg.runs, cfg.out, overwrite=cfg.overwrite)
        print(f"merged {result['records']} records from {len(cfg.runs)} runs into {cfg.out} "
              f"({result['summary']['pairs']} pairs)")
    if result["missing_shards"]:
        print(f"warning: shards {', '.join(result['missing_shards'])} are missing", file=sys.stderr)
    return 0


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="Focused-DPO's error-concentration table (Phi of prefix/middle/suffix)",
                       description="Focused-DPO's error-concentration table. `focalpo analyze continue RUN --help`: "
                       "its continuation test.")
    p.add_argument("samples", nargs="?", help="JSONL: task_id, programs, correct or pass_matrix (a focused run's records.jsonl)")
    p.add_argument("--unit", choices=["line", "char"], help="common prefix/suffix granularity (default line)")
    p.add_argument("--out", help="also write the table as CSV")
    p.add_argument("--overwrite", action="store_true", default=None)
    _add_config_args(p, "AnalyzeConfig")
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args) -> int:
    from focalpo.analyze import AnalyzeConfig, analyze, format_table

    print(format_table(analyze(_config(AnalyzeConfig, args, positional="samples"))))
    return 0


CONTINUE = "analyze continue"  # `focalpo analyze continue RUN`: its own parser (main joins the two words)


def _add_analyze_continue(sub) -> None:
    p = sub.add_parser(CONTINUE, help="Focused-DPO's continuation test: pass@1 from prefix + chosen vs rejected middle",
                       description=_OVERRIDES.format(cls="ContinueConfig", eg="max_new_tokens=256"))
    p.add_argument("run", nargs="?", help="a focused (or codeflow) run directory: pairs.jsonl, config.json")
    p.add_argument("--out", help="output directory (default: RUN/continuation)")
    _add_backend_args(p, "the run's")
    p.add_argument("--n", type=int, help="continuations per partial answer (default 1)")
    p.add_argument("--temperature", type=float, help="default 0 (greedy); n > 1 needs one > 0")
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-new-tokens", type=int, help="default 512")
    p.add_argument("--tests", choices=["auto", "reference", "run"],
                   help="reference: the problems' own tests (focalpo eval); run: the tests the focused run found "
                        "reliable (PageRank's ground truth); auto (default): reference when every problem has tests")
    p.add_argument("--limit", type=int, help="only the first N pairs")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="sandbox workers (default: all cores)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an earlier result in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    _add_config_args(p, "ContinueConfig")
    p.set_defaults(func=_cmd_analyze_continue)


def _cmd_analyze_continue(args) -> int:
    from focalpo.continuation import SUMMARY_FILE, ContinueConfig, format_summary, output_dir, run_continuation

    cfg = _config(ContinueConfig, args, positional="run")
    summary = run_continuation(cfg)
    print(format_summary(summary, output_dir(cfg) / SUMMARY_FILE))
    return 0


def _add_synth_prompts(sub) -> None:
    from focalpo.generate import BACKENDS

    p = sub.add_parser("synth-prompts", help="Focused-DPO phase 0: problems from concepts (APIs, documented "
                       "functions) in Python sources, written by a model",
                       description=_OVERRIDES.format(cls="SynthConfig", eg="n_problems=500"))
    p.add_argument("--source-dir", help="directory of Python sources to take concepts from")
    p.add_argument("--out", help="problems JSONL (focalpo format, no tests yet)")
    p.add_argument("--backend", choices=sorted(BACKENDS), help="generation backend (default hf)")
    p.add_argument("--model", help="HF model dir / hub id, or the served model name (openai)")
    p.add_argument("--base-url", action="append",
                   help="openai backend: server URL up to and including /v1; repeatable (several servers)")
    p.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend keyword option, repeatable (JSON values: 16, 0.5, true, [\"a\"])")
    p.add_argument("--n-problems", type=int, help="default 100")
    p.add_argument("--concepts-per-prompt", type=int, help="default 2")
    p.add_argument("--template", metavar="FILE", help="prompt template with a {concepts} field")
    p.add_argument("--temperature", type=float, help="default 1.0")
    p.add_argument("--max-new-tokens", type=int, help="default 512")
    p.add_argument("--seed", type=int)
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing --out file")
    _add_config_args(p, "SynthConfig")
    p.set_defaults(func=_cmd_synth_prompts)


def _cmd_synth_prompts(args) -> int:
    from focalpo.pipelines.synth import SynthConfig, format_summary, run_synth

    print(format_summary(run_synth(_config(SynthConfig, args, files=("template",)))))
    return 0


def _add_sft(sub) -> None:
    p = sub.add_parser(
        "sft", help="supervised fine-tuning: NLL on the last assistant message of chat JSONL (transformers.Trainer)",
        description="Flags and key=value overrides (any SFTConfig field, e.g. warmup_ratio=0.1 save_strategy=no "
        "training_args.optim=adamw_torch) override the --config recipe.",
    )
    p.add_argument("--model", help="local HF model directory (its tokenizer needs a chat template)")
    p.add_argument("--data", help='chat JSONL: {"messages": [{"role": ..., "content": ...}, ...]} per line; or '
                   'parquet, a save_to_disk directory, a Hub id')
    _add_source_args(p, "--data")
    p.add_argument("--output", help="run directory: checkpoints, metrics.jsonl, final model")
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
    _add_config_args(p, "SFTConfig", recipe=True)
    p.set_defaults(func=_cmd_sft)


def _cmd_sft(args) -> int:
    from focalpo.train.run import end_processes
    from focalpo.train.sft import CONFIG_NAME, SFTConfig, sft

    _resume_config(args, CONFIG_NAME)
    result = sft(_config(SFTConfig, args))
    end_processes()
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
    p.add_argument("--out", help="samples JSONL (its config goes to <stem>.sample_config.json)")
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), help="problem loader (default jsonl)")
    p.add_argument("--problems", help="problem file (or parquet, save_to_disk directory, Hub id) for the loader "
                   "(default: the benchmark's bundled copy)")
    _add_source_args(p, "--problems")
    _add_subset_args(p)
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
    p.add_argument("--shard", help="i/N: sample the i-th of N shards of the problems (join them with focalpo merge)")
    p.add_argument("--parquet", action="store_true", default=None,
                   help="also write <stem>.parquet, a copy of the finished samples file (datasets, the Hub and "
                        "focalpo eval read it); focalpo merge of the shards writes one for the merged file")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="keep the complete problems in --out, sample the rest")
    run.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    _add_config_args(p, "SampleConfig")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    from focalpo.eval.sample import SampleConfig, parquet_path, run_sample

    cfg = _config(SampleConfig, args, files=("program_template",), skip=_RUN_MODE)
    cfg.resume, cfg.overwrite = cfg.resume or args.resume, cfg.overwrite or args.overwrite
    result = run_sample(cfg)
    data = f" --data {cfg.problems}" if cfg.problems else ""
    copy = parquet_path(cfg.out)
    also = f" (and {copy})" if cfg.parquet and copy.exists() else ""
    print(f"sampled {result['sampled']} problems ({result['skipped']} already complete) x {cfg.n} into {cfg.out}{also}; "
          f"evaluate: focalpo eval --benchmark {cfg.benchmark}{data} --samples {cfg.out}")
    return 0


def _add_view(sub) -> None:
    p = sub.add_parser(
        "view", help="a self-contained HTML page of any pairs file: chosen beside rejected, localised spans, "
        "token weights per scheme, the evidence behind each pair",
        description=_OVERRIDES.format(cls="ViewConfig", eg="page_size=50"),
    )
    p.add_argument("pairs", nargs="?", help="pair records (JSONL) written by focused, codeflow or localize")
    p.add_argument("--out", help="HTML file (default: <pairs>.html beside the pairs file)")
    p.add_argument("--tokenizer", help="tokenizer (local directory or hub id): colour tokens by their weight")
    p.add_argument("--scheme", dest="schemes", action="append", metavar="NAME",
                   help="weight scheme to show, repeatable (default: all of focalpo.weights)")
    p.add_argument("--records", action="append",
                   help="records.jsonl of the run(s), repeatable or comma-separated (default: the one beside the pairs file)")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="replace --out even if focalpo view did not write it")
    _add_config_args(p, "ViewConfig")
    p.set_defaults(func=_cmd_view)


def _cmd_view(args) -> int:
    from focalpo.report.viewer import ViewConfig, view

    result = view(_config(ViewConfig, args, positional="pairs"))
    print(f"{result['pairs']} pairs in {result['out']}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the whole method end to end on a CPU in the toy world (tasks, SFT, focused, "
                       "codeflow, localize, train each scheme on its pipeline's pairs, held-out pass@k, report)")
    p.add_argument("--output", default="focalpo-demo", help="demo directory (default ./focalpo-demo)")
    p.add_argument("--preset", choices=["quick", "mini", "full"], default=None, help="sizes (default quick)")
    p.add_argument("--full", action="store_true",
                   help="same as --preset full: 3 seeds, pass@10 of 10 samples per held-out task")
    p.add_argument("--seeds", type=int, help="seeds to run (table: mean ± 95 %% CI); default: the preset's")
    p.add_argument("--overwrite", action="store_true", help="run in a non-empty --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bars in any stage")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from focalpo.report.render import format_table
    from focalpo.toyworld.demo import config_for, run_demo

    if args.full and args.preset not in (None, "full"):
        raise ValueError(f"--full contradicts --preset {args.preset}")
    preset = "full" if args.full else args.preset or "quick"
    demo = run_demo(args.output, config_for(preset, args.seeds), preset=preset, overwrite=args.overwrite,
                    run_command=main, progress=not args.no_progress)
    print("\n" + format_table(demo["table"]))
    out = Path(args.output)
    print(f"report: {out / 'report.html'} (and report.md); pair viewer: {out / 'pairs.html'}; "
          f"numbers: {out / 'demo.json'}")
    return 0


# --------------------------------------------------------------------------------------------------
# one convention for every command: a typed config, --config YAML, flags, key=value overrides

_OVERRIDES = ("Flags and key=value overrides (any {cls} field, e.g. {eg}) override the --config YAML; "
              "defaults are the {cls} field defaults.")
_RUN_MODE = ("resume", "overwrite")  # run flags of the data pipelines, passed beside their config


def _add_config_args(p, cls: str, *, recipe: bool = False) -> None:
    what = "YAML recipe (e.g. configs/target_dpo.yaml)" if recipe else "YAML"
    p.add_argument("--config", help=f"{what} with {cls} fields")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, applied last")


_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def take_overrides(args, positional: str) -> None:
    """argparse gives a positional argument (`merge RUN...`, `analyze FILE`) the key=value overrides that
    follow it; hand them back to `args.overrides`. A positional given nowhere becomes None (the YAML's)."""
    value = getattr(args, positional)
    items = value if isinstance(value, list) else [value] if value else []
    keep = [v for v in items if not _OVERRIDE.match(v)]
    args.overrides = [v for v in items if _OVERRIDE.match(v)] + list(args.overrides)
    setattr(args, positional, (keep or None) if isinstance(value, list) else (keep[0] if keep else None))


def _config(cls, args, *, files: tuple[str, ...] = (), skip: tuple[str, ...] = (), positional: str | None = None):
    """`cls` from --config YAML < flags (None = not given; a `files` flag names a file whose text is the
    value) < --backend-option KEY=VALUE < key=value overrides (`focalpo.config.load_config`)."""
    import json

    from focalpo.config import load_config
    from focalpo.generate.base import parse_backend_option

    if positional:
        take_overrides(args, positional)
    ignored = {"command", "func", "config", "overrides", "backend_option", *skip}
    flags = {k: v for k, v in vars(args).items() if k not in ignored}
    if flags.get("columns"):  # --columns prompt=question,chosen=accepted
        from focalpo.datasets_io import parse_columns

        flags["columns"] = parse_columns(flags["columns"])
    if isinstance(flags.get("base_url"), list):  # --base-url A --base-url B: the backends take "A,B"
        flags["base_url"] = ",".join(flags["base_url"])
    for name in files:
        if flags.get(name):
            path = Path(flags[name])
            if not path.is_file():
                raise FileNotFoundError(f"--{name.replace('_', '-')} {path}: no such file")
            flags[name] = path.read_text(encoding="utf-8")
    options = [parse_backend_option(o) for o in getattr(args, "backend_option", [])]
    overrides = [f"backend_options.{k}={json.dumps(v)}" for k, v in options]
    return load_config(cls, args.config, overrides + list(args.overrides), flags=flags)


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
    _add_analyze_continue(sub)
    _add_view(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from focalpo.generate.base import GenerationError
    from focalpo.sandbox.environment import EnvironmentFault

    from focalpo.card import record_command

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    record_command(argv)  # for the dataset cards the run writes
    if argv[:2] == CONTINUE.split():
        argv = [CONTINUE, *argv[2:]]
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may sit anywhere (`view PAIRS --out x title=t`): argparse leaves the ones
    # after a flag that follows the positional arguments unparsed
    unknown = [x for x in extra if not _OVERRIDE.match(x) or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, GenerationError, EnvironmentFault) as e:
        print(f"focalpo {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
