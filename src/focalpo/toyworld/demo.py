"""`focalpo demo`: the whole method end to end on a CPU, in the toy world, through the public commands only.

    focalpo demo                                  # quick preset into ./focalpo-demo (~7.5 min on 2 cores)
    focalpo demo --preset mini --output /tmp/d    # seconds; what CI runs
    focalpo demo --full --overwrite               # 3 seeds + pass@10 of 10 samples, mean ± 95 % CI over seeds

Stages (each one a `focalpo <command>` run through `run_command`, `focalpo.cli.main` when the CLI runs the
demo, that must exit 0, timed):
 1. tasks      train tasks split into disjoint SFT / focused / codeflow parts, and held-out tasks -> data/;
 2. sft-data   `build_sft_examples` on the SFT part -> data/sft.jsonl (all skills), data/sft_solve_test.jsonl
               (its "solve" and "test" chats);  model: `create_toy_model` -> models/base;
 3. sft        focalpo sft in two runs: solve + test chats in random batches -> models/sft-solve-test, then every
               skill in length-grouped batches at half the rate -> models/sft. (One run on the whole mix learns to
               follow instructions far worse in the same time: random batches are slow on the long CodeFlow
               chats, length-grouped ones put one skill in each batch; measured in the README's demo section);
 4. focused    focalpo focused on the focused part with the SFT model -> runs/focused;
 5. codeflow   focalpo codeflow on the codeflow part, the SFT model as teacher -> runs/codeflow;
 6. audit      the pairs' chosen / rejected programs on the tasks' reference tests (focalpo eval): how often
               the labels the pipelines derived from model-written tests are right;
 7. localize   union of both pairs files -> focalpo localize --method lcs -> data/pairs.jsonl (LCS spans and
               prefix/suffix boundaries on every pair, each pair's audit verdict in meta["audit"]); no pairs ->
               training is skipped, with the reason;
 8. train      focalpo train from the SFT checkpoint, one run per scheme, equal budgets -> models/<scheme>;
               again on the pairs whose labels the audit confirms (data/pairs_oracle.jsonl) ->
               models/<scheme>@oracle (seeds[i].results_oracle: label quality apart from weighting);
 9. view       focalpo view data/pairs.jsonl with the SFT tokenizer, the trained schemes (and the options in
               their train_config.yaml) and both runs' records -> pairs.html (the pair viewer; with several
               seeds seed-<s>/pairs.html, indexed by out/pairs.html);
10. sample/eval greedy pass@1 (and pass@10 of n=10 samples with --full) on the held-out tasks;
11. report     `focalpo.toyworld.report.write_report`: report.md, report.html (self-contained), pass_at_1.png,
               training_curves.png and demo.json (every number of the report: per seed, per method, the
               per-task outcomes; `paired` and `paired_oracle`, methods compared on the same tasks).

The runner is a parameter (`run_demo(..., run_command=focalpo.cli.main)`) so that this module never imports
the CLI that imports it.

The numbers of a tiny model on a few hundred tasks say the pipeline runs, not which scheme is better.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from focalpo.report.stats import aggregate, paired_table
from focalpo.toyworld.report import write_report

RunCommand = Callable[[list[str]], int]  # argv without "focalpo" -> exit code (focalpo.cli.main)

SCHEMES = ("dpo", "rpo", "focused", "target", "target-rpo")
TOY_MAX_LENGTH = 1024  # the toy models' positions; the longest SFT chats (CodeFlow repairs) are ~800 tokens


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run; see PRESETS."""

    model_size: str = "tiny"
    difficulty: tuple[int, int] = (1, 1)  # operations per task (2 not re-measured since the two-run SFT)
    sft_tasks: int = 300  # SFT part: "solve" and "test" examples for each task
    sft_codeflow_tasks: int = 300  # its first tasks also get the long "teacher" and "repair" chats
    focused_tasks: int = 60
    codeflow_tasks: int = 40
    heldout_tasks: int = 100
    sft_steps: int = 400  # first SFT run: "solve" and "test" chats, random batches
    sft_all_steps: int = 250  # second SFT run: every skill, length-grouped batches, sft_learning_rate / 2
    sft_batch_size: int = 8
    sft_learning_rate: float = 2e-3
    k: int = 6  # programs and test answers per focused problem
    # the paper samples at 1.5; the tiny model writes mostly unparsable code there, and at 0.5 mostly the same
    # program k times (few incorrect ones, few pairs)
    temperature: float = 1.0
    codeflow_iterations: int = 4
    max_new_tokens: int = 256
    codeflow_max_new_tokens: int = 384
    train_steps: int = 30
    train_batch_size: int = 4
    train_learning_rate: float = 5e-5
    sampled_n: int = 0  # > 0: also n sampled answers per held-out task (pass@10 when >= 10)
    sampled_temperature: float = 0.5
    seeds: int = 1
    schemes: tuple[str, ...] = SCHEMES


PRESETS: dict[str, DemoConfig] = {
    "quick": DemoConfig(),  # ~7.5 min on 2 cores (443 s on 2026-12-06)
    # ~1 min on 2 cores, what CI runs; enough SFT that the focused run yields pairs (3 of 10 tasks on the dev
    # machine), so localisation, the audit and the 5 trainings run too
    "mini": DemoConfig(model_size="nano", sft_tasks=40, sft_codeflow_tasks=10, focused_tasks=10, codeflow_tasks=3,
                       heldout_tasks=4, sft_steps=300, sft_all_steps=100, sft_learning_rate=3e-3, temperature=0.8,
                       codeflow_iterations=2, max_new_tokens=96, codeflow_max_new_tokens=160, train_steps=2),
    # 3 seeds of the quick sizes (50 held-out tasks) plus pass@10 of 10 samples per held-out task
    "full": DemoConfig(heldout_tasks=50, sampled_n=10, seeds=3),
}


class Stages:
    """Runs `focalpo` commands through `run_command`, timing each; a nonzero exit raises RuntimeError naming the
    stage."""

    def __init__(self, progress: bool, run_command: RunCommand):
        self.progress = progress
        self.run_command = run_command
        self.seconds: dict[str, float] = {}

    def timed(self, name: str):
        stages = self

        class _Timer:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                stages.seconds[name] = round(time.perf_counter() - self.t0, 2)

        return _Timer()

    def cli(self, name: str, argv: list[str], *, has_progress: bool = True) -> None:
        """`focalpo <argv> --overwrite [--no-progress]`: run_demo checked the directory is empty or --overwrite was
        given."""
        argv = [*argv, "--overwrite", *([] if self.progress or not has_progress else ["--no-progress"])]
        print(f"\n== demo stage {name}: focalpo {' '.join(argv)}", flush=True)
        with self.timed(name):
            code = self.run_command(argv)
        if code != 0:
            raise RuntimeError(f"demo stage {name!r} failed: `focalpo {' '.join(argv)}` exited with {code}")


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []


def _pass_at(results: Path) -> dict:
    base = json.loads(results.read_text())["summary"]["base"]
    return {k: v for k, v in base.items() if k in ("pass@1", "pass@10")}


def _per_task(results: Path) -> dict[str, int]:
    """task_id -> 1 if its (greedy) sample passed, else 0."""
    return {r["task_id"]: int(r["status"] == "pass") for r in json.loads(results.read_text())["samples"]}


def _evaluate(st: Stages, d: Path, cfg: DemoConfig, name: str, model: Path, seed: int) -> dict:
    """Greedy pass@1 (and sampled pass@k when cfg.sampled_n) of `model` on the held-out tasks; the greedy
    per-task outcomes are in results/<name>-greedy.json (`_per_task`)."""
    heldout = str(d / "data" / "heldout.jsonl")
    runs = [("greedy", 1, 0.0)] + ([("sampled", cfg.sampled_n, cfg.sampled_temperature)] if cfg.sampled_n else [])
    out: dict = {}
    for tag, n, temperature in runs:
        samples, results = d / "samples" / f"{name}-{tag}.jsonl", d / "results" / f"{name}-{tag}.json"
        results.parent.mkdir(parents=True, exist_ok=True)
        st.cli(f"sample:{name}-{tag}", ["sample", "--benchmark", "jsonl", "--problems", heldout, "--backend", "hf",
                                        "--model", str(model), "--n", str(n), "--temperature", str(temperature),
                                        "--max-new-tokens", str(cfg.max_new_tokens), "--seed", str(seed),
                                        "--out", str(samples)])
        st.cli(f"eval:{name}-{tag}", ["eval", "--benchmark", "jsonl", "--data", heldout, "--samples", str(samples),
                                      "--out", str(results)])
        scores = _pass_at(results)
        out.update({"pass@1": scores["pass@1"]} if tag == "greedy" else
                   {f"sampled_{k}": v for k, v in scores.items()})
    return out


def _audit(st: Stages, d: Path, run: str, verdicts: dict | None = None) -> dict:
    """The run's pairs checked against the truth only the toy world has: chosen and rejected programs are run on
    the tasks' reference tests with `focalpo eval` (samples/audit-<run>.jsonl: chosen then rejected per pair).
    The pipelines judge programs by model-written tests; this says how often those labels are right. Each pair's
    verdict goes into `verdicts`, keyed by (task_id, chosen text, rejected text), for the pair records."""
    from focalpo.io import write_jsonl
    from focalpo.pairs import read_pairs

    path = d / "runs" / run / "pairs.jsonl"
    pairs = read_pairs(path) if _lines(path) else []
    audit = {"pairs": len(pairs), "chosen_correct": 0, "rejected_incorrect": 0}
    if not pairs:
        return audit
    samples, results = d / "samples" / f"audit-{run}.jsonl", d / "results" / f"audit-{run}.json"
    write_jsonl(samples, [{"task_id": p.meta["task_id"], "solution": text}
                          for p in pairs for text in (p.chosen_text, p.rejected_text)])
    results.parent.mkdir(parents=True, exist_ok=True)
    st.cli(f"audit:{run}", ["eval", "--benchmark", "jsonl", "--data", str(d / "data" / f"{run}_part.jsonl"),
                            "--samples", str(samples), "--out", str(results)])
    passed = {(r["task_id"], r["sample_index"]): r["status"] == "pass"
              for r in json.loads(results.read_text())["samples"]}
    seen: dict[str, int] = {}  # task -> samples so far: sample_index counts within a task, in file order
    for p in pairs:
        i = seen.get(p.meta["task_id"], 0)
        seen[p.meta["task_id"]] = i + 2
        chosen_ok, rejected_wrong = passed[(p.meta["task_id"], i)], not passed[(p.meta["task_id"], i + 1)]
        audit["chosen_correct"] += chosen_ok
        audit["rejected_incorrect"] += rejected_wrong
        if verdicts is not None:
            verdicts[(p.meta["task_id"], p.chosen_text, p.rejected_text)] = TRUE_LABELS if chosen_ok and rejected_wrong \
                else (f"reference tests: chosen {'passes' if chosen_ok else 'FAILS'}, "
                      f"rejected {'fails' if rejected_wrong else 'PASSES'}")
    return audit


ORACLE = "@oracle"  # suffix of the schemes trained on the oracle-filtered pairs
TRUE_LABELS = "reference tests: chosen passes, rejected fails"


def _train(st: Stages, d: Path, cfg: DemoConfig, sft_model: Path, pairs: Path, seed: int, tag: str = "") -> dict:
    """`focalpo train` of every scheme from the SFT checkpoint on `pairs`; name (scheme + tag) -> model directory."""
    models = {}
    for scheme in cfg.schemes:
        name = scheme + tag
        models[name] = d / "models" / name
        st.cli(f"train:{name}", ["train", "--model", str(sft_model), "--data", str(pairs), "--scheme", scheme,
                                 "--output", str(models[name]), "--max-steps", str(cfg.train_steps),
                                 "--per-device-batch-size", str(cfg.train_batch_size),
                                 "--learning-rate", str(cfg.train_learning_rate),
                                 f"seed={seed}", f"ref_cache_dir={d / 'cache' / 'ref_logps'}"])
    return models


def oracle_pairs(path: Path, out: Path) -> int:
    """The pairs of `path` whose audit verdict confirms both labels, written to `out`; their count."""
    from focalpo.pairs import read_pairs, write_pairs

    return write_pairs(out, [p for p in read_pairs(path) if p.meta.get("audit") == TRUE_LABELS], overwrite=True)


def oracle_summary(seeds: list[dict]) -> tuple[dict, dict]:
    """(table, paired) of the oracle arm over the seeds that have it: pass@k per scheme@oracle (`aggregate`), and
    each against the SFT model and dpo@oracle on the same held-out tasks (`paired_table`)."""
    oracle = [{"seed": r["seed"], "results": r["results_oracle"],
               "per_task": {"sft": r["per_task"]["sft"], **r["per_task_oracle"]}} for r in seeds if r.get("results_oracle")]
    return aggregate(oracle), paired_table(oracle, baselines=("sft", "dpo" + ORACLE))


def _attach_audit(path: Path, verdicts: dict) -> None:
    """Each pair of `path` gets its audit verdict in `meta["audit"]` (the pair viewer shows it), rewritten atomically."""
    from focalpo.pairs import read_pairs, write_pairs

    pairs = read_pairs(path)
    for p in pairs:
        verdict = verdicts.get((p.meta.get("task_id"), p.chosen_text, p.rejected_text))
        if verdict is not None:
            p.meta["audit"] = verdict
    write_pairs(path, pairs, overwrite=True)


def _training_summary(metrics: Path) -> dict:
    """Means over the logged steps of what tells the schemes apart (the token weights they trained with) and
    the last loss: a scheme whose weights collapsed to DPO's shows DPO's 1.0 in both token columns."""
    from focalpo.train.output import read_metrics

    rows = [r for r in read_metrics(metrics) if "loss" in r]
    keys = ("tokens/weighted_fraction", "tokens/mean_weight")
    return {**{k: sum(r[k] for r in rows) / len(rows) for k in keys}, "loss": rows[-1]["loss"]} if rows else {}


def _view(st: Stages, d: Path, cfg: DemoConfig, sft_model: Path, seed: int) -> None:
    """`focalpo view` on data/pairs.jsonl -> d/pairs.html: the SFT tokenizer, the trained schemes with the options
    they were trained with, the records of both runs."""
    import yaml

    options = []
    for scheme in cfg.schemes:
        path = d / "models" / scheme / "train_config.yaml"
        trained = (yaml.safe_load(path.read_text()) or {}).get("scheme_options") if path.is_file() else None
        if trained:
            options.append(f"scheme_options.{scheme}={json.dumps(trained)}")
    records = [str(p) for p in (d / "runs" / run / "records.jsonl" for run in ("focused", "codeflow")) if p.is_file()]
    st.cli("view", ["view", "--out", str(d / "pairs.html"), "--tokenizer", str(sft_model),
                    *(x for s in cfg.schemes for x in ("--scheme", s)), *(["--records", ",".join(records)] if records else []),
                    str(d / "data" / "pairs.jsonl"), f"title=focalpo demo, seed {seed}: preference pairs", f"seed={seed}",
                    *options], has_progress=False)


def run_seed(d: Path, cfg: DemoConfig, seed: int, progress: bool, run_command: RunCommand) -> dict:
    """Stages 1-10 for one seed in directory `d`; returns that seed's numbers."""
    from focalpo.toyworld.model import create_toy_model
    from focalpo.toyworld.sft import build_sft_examples, write_sft
    from focalpo.toyworld.tasks import generate_tasks, write_tasks

    st = Stages(progress, run_command)
    data = d / "data"
    with st.timed("tasks"):
        n_sft, n_fo, n_cf = cfg.sft_tasks, cfg.focused_tasks, cfg.codeflow_tasks
        train = generate_tasks(n_sft + n_fo + n_cf, seed=seed, difficulty=cfg.difficulty, split="train")
        heldout = generate_tasks(cfg.heldout_tasks, seed=seed, difficulty=cfg.difficulty, split="heldout")
        parts = {"sft_part": train[:n_sft], "focused_part": train[n_sft:n_sft + n_fo],
                 "codeflow_part": train[n_sft + n_fo:]}
        write_tasks(data / "train.jsonl", train)
        write_tasks(data / "heldout.jsonl", heldout)
        for name, problems in parts.items():
            write_tasks(data / f"{name}.jsonl", problems)
    with st.timed("sft-data"):
        sft_part = parts["sft_part"]
        examples = (build_sft_examples(sft_part[:cfg.sft_codeflow_tasks], seed=seed)
                    + build_sft_examples(sft_part[cfg.sft_codeflow_tasks:], seed=seed, skills=("solve", "test")))
        write_sft(data / "sft.jsonl", examples, overwrite=True)
        write_sft(data / "sft_solve_test.jsonl", [e for e in examples if e["skill"] in ("solve", "test")],
                  overwrite=True)
    with st.timed("model"):
        texts = [m["content"] for e in examples for m in e["messages"]]
        create_toy_model(d / "models" / "base", texts, size=cfg.model_size, seed=seed, overwrite=True)

    sft_model, first = d / "models" / "sft", d / "models" / "sft-solve-test"
    runs = [("sft:solve-test", d / "models" / "base", "sft_solve_test.jsonl", cfg.sft_steps, cfg.sft_learning_rate,
             first, []),
            ("sft:all-skills", first, "sft.jsonl", cfg.sft_all_steps, cfg.sft_learning_rate / 2, sft_model,
             ["group_by_length=true"])]
    for name, model, train_file, steps, lr, out, extra in runs:
        st.cli(name, ["sft", "--model", str(model), "--data", str(data / train_file), "--output", str(out),
                      "--max-steps", str(steps), "--per-device-batch-size", str(cfg.sft_batch_size),
                      "--learning-rate", str(lr), "--seed", str(seed), "save_strategy=no",
                      f"max_length={TOY_MAX_LENGTH}", *extra])
    gen = ["--benchmark", "jsonl", "--backend", "hf", "--model", str(sft_model), "--temperature", str(cfg.temperature),
           "--seed", str(seed)]
    st.cli("focused", ["focused", *gen, "--problems", str(data / "focused_part.jsonl"), "--k", str(cfg.k),
                       "--k-tests", str(cfg.k), "--max-new-tokens", str(cfg.max_new_tokens),
                       "--out", str(d / "runs" / "focused")])
    st.cli("codeflow", ["codeflow", *gen, "--problems", str(data / "codeflow_part.jsonl"),
                        "--max-iterations", str(cfg.codeflow_iterations),
                        "--max-new-tokens", str(cfg.codeflow_max_new_tokens), "--out", str(d / "runs" / "codeflow")])

    pairs_by_run = {run: _lines(d / "runs" / run / "pairs.jsonl") for run in ("focused", "codeflow")}
    union = [line for lines in pairs_by_run.values() for line in lines]
    verdicts: dict = {}
    result: dict = {
        "seed": seed,
        "pairs": {**{run: len(lines) for run, lines in pairs_by_run.items()}, "total": len(union)},
        "summaries": {run: {k: v for k, v in json.loads((d / "runs" / run / "summary.json").read_text()).items()
                            if k != "config"} for run in ("focused", "codeflow")},
        "training_skipped": None,
        "results_oracle": {},  # the schemes trained on the oracle-filtered pairs, when there are any
        "audit": {run: _audit(st, d, run, verdicts) for run in ("focused", "codeflow")},
    }
    models = {"sft": sft_model}
    if not union:
        result["training_skipped"] = "no preference pairs from focused or codeflow: nothing to train on"
        print(f"demo: {result['training_skipped']}; evaluating the SFT model only", flush=True)
    else:
        (data / "union.jsonl").write_text("\n".join(union) + "\n", encoding="utf-8")
        st.cli("localize", ["localize", "--in", str(data / "union.jsonl"), "--method", "lcs",
                            "--out", str(data / "pairs.jsonl")], has_progress=False)
        _attach_audit(data / "pairs.jsonl", verdicts)
        models.update(_train(st, d, cfg, sft_model, data / "pairs.jsonl", seed))
        _view(st, d, cfg, sft_model, seed)
        result["training"] = {scheme: _training_summary(models[scheme] / "metrics.jsonl") for scheme in cfg.schemes}
        # the same schemes on the pairs whose labels the reference tests confirm: label quality apart from weighting
        result["pairs"]["oracle"] = oracle_pairs(data / "pairs.jsonl", data / "pairs_oracle.jsonl")
        if result["pairs"]["oracle"]:
            oracle = _train(st, d, cfg, sft_model, data / "pairs_oracle.jsonl", seed, tag=ORACLE)
            result["results_oracle"] = {name: _evaluate(st, d, cfg, name, path, seed) for name, path in oracle.items()}
            result["per_task_oracle"] = {name: _per_task(d / "results" / f"{name}-greedy.json") for name in oracle}
    result["results"] = {name: _evaluate(st, d, cfg, name, path, seed) for name, path in models.items()}
    result["per_task"] = {name: _per_task(d / "results" / f"{name}-greedy.json") for name in models}
    result["stage_seconds"] = st.seconds
    return result


def run_demo(output: str | Path, cfg: DemoConfig, *, run_command: RunCommand, preset: str = "custom",
             overwrite: bool = False, progress: bool = True) -> dict:
    """All stages for cfg.seeds seeds (one subdirectory seed-<s> each when more than one), then the report.
    `run_command`: runs one `focalpo` command line (argv without "focalpo") and returns its exit code."""
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to run the demo there anyway")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seeds = [run_seed(out if cfg.seeds == 1 else out / f"seed-{s}", cfg, s, progress, run_command)
             for s in range(cfg.seeds)]
    table_oracle, paired_oracle = oracle_summary(seeds)
    demo = {"preset": preset, "config": asdict(cfg), "seeds": seeds, "table": aggregate(seeds),
            "paired": paired_table(seeds, baselines=("sft", "dpo")),
            "table_oracle": table_oracle, "paired_oracle": paired_oracle,
            "wall_seconds": round(time.perf_counter() - t0, 2)}
    from focalpo.io import write_json

    write_json(out / "demo.json", demo)
    write_report(out, demo)
    return demo


def config_for(preset: str, seeds: int | None) -> DemoConfig:
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    cfg = PRESETS[preset]
    if seeds is not None:
        if seeds < 1:
            raise ValueError(f"--seeds: expected >= 1, got {seeds}")
        cfg = replace(cfg, seeds=seeds)
    return cfg
