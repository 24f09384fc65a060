"""`focalpo demo`: the whole method end to end on a CPU, in the toy world, through the public commands only.

    focalpo demo                                  # quick preset into ./focalpo-demo (~8 min on 2 cores)
    focalpo demo --preset mini --output /tmp/d    # about a minute; what CI runs
    focalpo demo --full --overwrite               # 3 seeds + pass@10 of 10 samples, mean ± 95 % CI over seeds

Stages (each one a `focalpo <command>` run through `run_command`, `focalpo.cli.main` when the CLI runs the
demo, that must exit 0, timed):
 1. tasks      train tasks split into disjoint SFT / focused / codeflow parts, and held-out tasks -> data/;
 2. sft-data   `build_sft_examples` on the SFT part: data/sft.jsonl (the policy's "solve" and "test" chats),
               data/sft_teacher.jsonl (the teacher's CodeFlow chats: "teacher" and "repair", first
               `teacher_tasks` tasks);  model: `create_toy_model` -> models/base (tokenizer from both);
 3. sft        focalpo sft -> models/sft, the policy every scheme starts from;
 4. teacher    focalpo sft from models/sft on the CodeFlow chats -> models/teacher. The papers' teacher is a
               stronger model than the policy; here it is the policy trained on for longer on the teacher's
               skills (its test files are differential: `focalpo.toyworld.sft.teacher_test_file`);
 5. focused    focalpo focused on the focused part with the policy -> runs/focused;
 6. continue   focalpo analyze continue runs/focused: Focused-DPO's continuation test (pass@1 from the
               prefix + chosen middle vs the prefix + rejected middle, on the reference tests);
 7. codeflow   focalpo codeflow on the codeflow part with the teacher -> runs/codeflow;
 8. audit      the pairs' chosen / rejected programs on the tasks' reference tests (focalpo eval): how often
               the labels the pipelines derived from model-written tests are right;
 9. localize   union of both pairs files -> focalpo localize --method lcs -> data/pairs.jsonl (LCS spans and
               prefix/suffix boundaries on every pair, each pair's audit verdict in meta["audit"]), split by
               pipeline into data/pairs_<pipeline>.jsonl; every 5th pair of a pipeline with >= 5 goes to
               data/val_<pipeline>.jsonl, the validation pairs of the arms trained on it;
10. train      focalpo train from models/sft, one run per arm (`ARMS`: a scheme on one pipeline's pairs, as
               in the papers: DPO and focused on the focused pairs, DPO, RPO, target and target-rpo on the
               CodeFlow pairs), equal budgets -> models/<arm>; again on the pairs whose labels the audit
               confirms -> models/<arm>+oracle (seeds[i].results_oracle: label quality apart from weighting);
11. view       focalpo view data/pairs.jsonl with the policy's tokenizer, the trained schemes (and the options in
               their train_config.yaml) and both runs' records -> pairs.html (the pair viewer; with several
               seeds seed-<s>/pairs.html, indexed by out/pairs.html);
12. sample/eval greedy pass@1 (and pass@10 of n=10 samples with --full) on the held-out tasks;
13. report     `focalpo.toyworld.report.write_report`: report.md, report.html (self-contained), pass_at_1.png,
               training_curves.png and demo.json (every number of the report: per seed, per arm, the
               per-task outcomes; `paired` and `paired_oracle`: each arm against the SFT model and against
               DPO on the same pairs, on the same held-out tasks).

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

# (arm name, weight scheme, pipeline whose pairs it trains on): each method on its own paper's data, beside DPO
# (and for Target-DPO, RPO) on the same pairs
ARMS = (("dpo@focused", "dpo", "focused"), ("focused", "focused", "focused"),
        ("dpo@codeflow", "dpo", "codeflow"), ("rpo@codeflow", "rpo", "codeflow"),
        ("target", "target", "codeflow"), ("target-rpo", "target-rpo", "codeflow"))
PIPELINES = ("focused", "codeflow")
TOY_MAX_LENGTH = 1024  # the toy models' positions; the longest SFT chats (CodeFlow repairs) are ~800 tokens
VALIDATION_EVERY = 5  # every 5th pair of a pipeline is a validation pair (when it has at least 5)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run; see PRESETS."""

    model_size: str = "tiny"
    difficulty: tuple[int, int] = (1, 1)  # operations per task
    sft_tasks: int = 300  # SFT part: the policy's "solve" and "test" examples for each task
    teacher_tasks: int = 300  # its first tasks also give the teacher's "teacher" and "repair" chats
    focused_tasks: int = 60
    codeflow_tasks: int = 100  # the toy teacher turns about 1 in 7 into a pair (fails first, fixed later)
    heldout_tasks: int = 100
    sft_steps: int = 400  # the policy: "solve" and "test" chats, random batches
    # the teacher, from the policy: "teacher" and "repair" chats in random batches (length-grouped ones, one skill
    # per batch, teach it to write the format without reading the task: 5 of 21 vs 12 of 23 solutions right)
    teacher_steps: int = 200
    sft_batch_size: int = 8
    sft_learning_rate: float = 2e-3
    teacher_learning_rate: float = 1e-3
    # the teacher's sampling in `focalpo codeflow` (its default 0.7); nucleus sampling keeps the tiny model's
    # rare garbled tokens out of the two-file format
    teacher_temperature: float = 0.7
    teacher_top_p: float = 0.95
    k: int = 6  # programs and test answers per focused problem
    # the paper samples at 1.5; the tiny model writes mostly unparsable code there, and at 0.5 mostly the same
    # program k times (few incorrect ones, few pairs)
    temperature: float = 1.0
    codeflow_iterations: int = 5  # Target-DPO: up to 5 rounds
    max_new_tokens: int = 256
    codeflow_max_new_tokens: int = 384
    train_steps: int = 30
    train_batch_size: int = 4
    train_learning_rate: float = 5e-5
    sampled_n: int = 0  # > 0: also n sampled answers per held-out task (pass@10 when >= 10)
    sampled_temperature: float = 0.5
    seeds: int = 1
    # one policy and teacher for all seeds (the first seed's): the seeds vary the focused / codeflow / held-out
    # tasks, sampling and training, not the SFT runs (half of a seed's time)
    share_sft: bool = False
    arms: tuple[tuple[str, str, str], ...] = ARMS


PRESETS: dict[str, DemoConfig] = {
    "quick": DemoConfig(),
    # about a minute on 2 cores, what CI runs: enough SFT that the focused run yields pairs, so localisation,
    # the audit, the continuation test and the trainings run too; its teacher is too small for CodeFlow pairs,
    # so Target-DPO's weights also train on the focused pairs (test_demo checks they are not DPO's)
    "mini": DemoConfig(model_size="nano", sft_tasks=40, teacher_tasks=20, focused_tasks=10, codeflow_tasks=6,
                       heldout_tasks=4, sft_steps=300, teacher_steps=60, sft_learning_rate=3e-3, temperature=0.8,
                       codeflow_iterations=2, max_new_tokens=96, codeflow_max_new_tokens=192, train_steps=2,
                       arms=ARMS + (("target@focused", "target", "focused"),)),
    # 3 seeds of one policy and teacher (share_sft), each with its own 60 focused, 300 codeflow (27 pairs of 200
    # in a first run) and 100 held-out tasks (300 paired units: ~4-point differences detectable), plus pass@10
    # of 10 samples per held-out task
    "full": DemoConfig(codeflow_tasks=300, sampled_n=10, seeds=3, share_sft=True),
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


def _evaluate(st: Stages, d: Path, cfg: DemoConfig, name: str, model: Path, seed: int, sampled: bool = True) -> dict:
    """Greedy pass@1 (and sampled pass@k when cfg.sampled_n and `sampled`) of `model` on the held-out tasks; the
    greedy per-task outcomes are in results/<name>-greedy.json (`_per_task`)."""
    heldout = str(d / "data" / "heldout.jsonl")
    runs = [("greedy", 1, 0.0)] + ([("sampled", cfg.sampled_n, cfg.sampled_temperature)]
                                   if cfg.sampled_n and sampled else [])
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
    from focalpo.eval.run import passed_in_order
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
    passed = passed_in_order(json.loads(results.read_text()), [p.meta["task_id"] for p in pairs for _ in range(2)])
    for n, p in enumerate(pairs):
        chosen_ok, rejected_wrong = passed[2 * n], not passed[2 * n + 1]
        audit["chosen_correct"] += chosen_ok
        audit["rejected_incorrect"] += rejected_wrong
        if verdicts is not None:
            verdicts[(p.meta["task_id"], p.chosen_text, p.rejected_text)] = TRUE_LABELS if chosen_ok and rejected_wrong \
                else (f"reference tests: chosen {'passes' if chosen_ok else 'FAILS'}, "
                      f"rejected {'fails' if rejected_wrong else 'PASSES'}")
    return audit


ORACLE = "+oracle"  # suffix of the models, stages and result files of the arms trained on oracle-filtered pairs
TRUE_LABELS = "reference tests: chosen passes, rejected fails"
VALIDATION = ("eval_loss", "eval_rewards/accuracies", "eval_localized/margins", "eval_localized/accuracies")


def _train(st: Stages, d: Path, cfg: DemoConfig, sft_model: Path, pairs: dict[str, Path], seed: int,
           tag: str = "") -> dict[str, Path]:
    """`focalpo train` of every arm from the SFT checkpoint on its pipeline's pairs (`pairs`: pipeline -> file;
    an arm whose pipeline has none is not trained), validated on data/val_<pipeline>.jsonl when there is one;
    arm name -> model directory (models/<arm><tag>)."""
    models = {}
    for name, scheme, pipeline in cfg.arms:
        if pipeline not in pairs:
            continue
        models[name] = d / "models" / (name + tag)
        validation = d / "data" / f"val_{pipeline}.jsonl"
        st.cli(f"train:{name}{tag}", ["train", "--model", str(sft_model), "--data", str(pairs[pipeline]),
                                      "--scheme", scheme, "--output", str(models[name]), "--max-steps", str(cfg.train_steps),
                                      "--per-device-batch-size", str(cfg.train_batch_size),
                                      "--learning-rate", str(cfg.train_learning_rate),
                                      *(["--eval-data", str(validation), "--eval-steps", str(cfg.train_steps)]
                                        if validation.is_file() else []),
                                      f"seed={seed}", f"ref_cache_dir={d / 'cache' / 'ref_logps'}"])
    return models


def split_pairs(path: Path, data: Path, tasks: dict[str, set[str]]) -> dict[str, int]:
    """The localized pairs of `path` by pipeline (`tasks`: pipeline -> its task ids; the parts are disjoint):
    every VALIDATION_EVERY-th pair of a pipeline with at least that many -> data/val_<pipeline>.jsonl, the rest
    -> data/pairs_<pipeline>.jsonl; pipeline -> training pairs written (files of a pipeline without pairs are
    removed)."""
    from focalpo.pairs import read_pairs, write_pairs

    pairs = read_pairs(path) if _lines(path) else []
    counts = {}
    for pipeline, ids in tasks.items():
        mine = [p for p in pairs if p.meta.get("task_id") in ids]
        held = mine[VALIDATION_EVERY - 1::VALIDATION_EVERY] if len(mine) >= VALIDATION_EVERY else []
        train = [p for i, p in enumerate(mine) if not held or (i + 1) % VALIDATION_EVERY]
        for name, rows in ((f"pairs_{pipeline}.jsonl", train), (f"val_{pipeline}.jsonl", held)):
            if rows:
                write_pairs(data / name, rows, overwrite=True)
            else:
                (data / name).unlink(missing_ok=True)
        counts[pipeline] = len(train)
    return counts


def oracle_pairs(path: Path, out: Path) -> int:
    """The pairs of `path` whose audit verdict confirms both labels, written to `out`; their count."""
    from focalpo.pairs import read_pairs, write_pairs

    return write_pairs(out, [p for p in read_pairs(path) if p.meta.get("audit") == TRUE_LABELS], overwrite=True)


def baselines(arms) -> dict[str, dict[str, str]]:
    """arm -> {"sft": "sft", "dpo": the DPO arm on the same pipeline's pairs}: what `paired` compares each arm to."""
    dpo = {pipeline: name for name, scheme, pipeline in arms if scheme == "dpo"}
    out: dict[str, dict[str, str]] = {}
    for name, scheme, pipeline in arms:
        out[name] = {"sft": "sft"}
        if scheme != "dpo" and pipeline in dpo:
            out[name]["dpo"] = dpo[pipeline]
    return out


def oracle_summary(seeds: list[dict], arms=ARMS) -> tuple[dict, dict]:
    """(table, paired) of the oracle arm over the seeds that have it: pass@k per arm (`aggregate`), and each
    against the SFT model and the DPO arm on the same oracle-filtered pairs (`paired_table`)."""
    oracle = [{"seed": r["seed"], "results": r["results_oracle"],
               "per_task": {"sft": r["per_task"]["sft"], **r["per_task_oracle"]}} for r in seeds if r.get("results_oracle")]
    return aggregate(oracle), paired_table(oracle, baselines=baselines(arms))


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
    """Means over the logged steps of what tells the schemes apart (the token weights they trained with), the
    last loss, and the validation metrics of the last evaluation (`VALIDATION`, when the arm had validation
    pairs): a scheme whose weights collapsed to DPO's shows DPO's 1.0 in both token columns."""
    from focalpo.train.output import read_metrics

    rows = read_metrics(metrics)
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_loss" in r]
    keys = ("tokens/weighted_fraction", "tokens/mean_weight")
    out = {**{k: sum(r[k] for r in steps) / len(steps) for k in keys}, "loss": steps[-1]["loss"]} if steps else {}
    if evals:
        out["validation"] = {k: evals[-1][k] for k in VALIDATION if k in evals[-1]}
    return out


def _view(st: Stages, d: Path, cfg: DemoConfig, sft_model: Path, seed: int) -> None:
    """`focalpo view` on data/pairs.jsonl -> d/pairs.html: the policy's tokenizer, the trained schemes with the
    options they were trained with, the records of both runs."""
    import yaml

    schemes, options = list(dict.fromkeys(scheme for _, scheme, _ in cfg.arms)), []
    for name, scheme, _ in cfg.arms:
        path = d / "models" / name / "train_config.yaml"
        trained = (yaml.safe_load(path.read_text()) or {}).get("scheme_options") if path.is_file() else None
        if trained and f"scheme_options.{scheme}=" not in "".join(options):
            options.append(f"scheme_options.{scheme}={json.dumps(trained)}")
    records = [str(p) for p in (d / "runs" / run / "records.jsonl" for run in PIPELINES) if p.is_file()]
    st.cli("view", ["view", "--out", str(d / "pairs.html"), "--tokenizer", str(sft_model),
                    *(x for s in schemes for x in ("--scheme", s)), *(["--records", ",".join(records)] if records else []),
                    str(d / "data" / "pairs.jsonl"), f"title=focalpo demo, seed {seed}: preference pairs", f"seed={seed}",
                    *options], has_progress=False)


def _continuation(st: Stages, d: Path, seed: int) -> dict | None:
    """Focused-DPO's continuation test on the focused run's pairs with the policy (`focalpo analyze continue`,
    greedy, reference tests); its summary, or None without pairs."""
    if not _lines(d / "runs" / "focused" / "pairs.jsonl"):
        return None
    out = d / "runs" / "focused" / "continuation"
    st.cli("continue", ["analyze", "continue", str(d / "runs" / "focused"), "--out", str(out), "--seed", str(seed)])
    summary = json.loads((out / "continuation.json").read_text())
    return {k: summary[k] for k in ("chosen_mid", "rejected_mid", "pairs", "n", "tests", "chosen_better",
                                    "rejected_better")}


def seed_tasks(cfg: DemoConfig, seed: int) -> tuple[dict[str, list], list]:
    """({"sft_part", "focused_part", "codeflow_part"} -> train tasks, held-out tasks) of one seed. Each seed draws
    its own tasks; with `share_sft` every seed has the first seed's SFT part (its policy and teacher were trained
    on it) and its own focused and codeflow slices of one pool after it. Held-out tasks are another split."""
    from focalpo.toyworld.tasks import generate_tasks

    n_sft, n_fo, n_cf = cfg.sft_tasks, cfg.focused_tasks, cfg.codeflow_tasks
    n_slices, pool_seed, index = (cfg.seeds, 0, seed) if cfg.share_sft else (1, seed, 0)
    train = generate_tasks(n_sft + n_slices * (n_fo + n_cf), seed=pool_seed, difficulty=cfg.difficulty, split="train")
    start = n_sft + index * (n_fo + n_cf)
    parts = {"sft_part": train[:n_sft], "focused_part": train[start:start + n_fo],
             "codeflow_part": train[start + n_fo:start + n_fo + n_cf]}
    return parts, generate_tasks(cfg.heldout_tasks, seed=seed, difficulty=cfg.difficulty, split="heldout")


def _sft_stages(st: Stages, d: Path, cfg: DemoConfig, sft_part: list, seed: int) -> tuple[Path, Path]:
    """Stages 2-4: the SFT data, the base model, the policy and the teacher; (policy, teacher) directories."""
    from focalpo.toyworld.model import create_toy_model
    from focalpo.toyworld.sft import TOY_TEACHER_TEMPLATE, build_sft_examples, write_sft

    data = d / "data"
    with st.timed("sft-data"):
        policy = build_sft_examples(sft_part, seed=seed, skills=("solve", "test"))
        teacher = build_sft_examples(sft_part[:cfg.teacher_tasks], seed=seed, skills=("teacher", "repair"),
                                     teacher_template=TOY_TEACHER_TEMPLATE)
        write_sft(data / "sft.jsonl", policy, overwrite=True)
        write_sft(data / "sft_teacher.jsonl", teacher, overwrite=True)
    with st.timed("model"):
        texts = [m["content"] for e in policy + teacher for m in e["messages"]]
        create_toy_model(d / "models" / "base", texts, size=cfg.model_size, seed=seed, overwrite=True)
    sft_model, teacher_model = d / "models" / "sft", d / "models" / "teacher"
    runs = [("sft", d / "models" / "base", "sft.jsonl", cfg.sft_steps, cfg.sft_learning_rate, sft_model),
            ("teacher", sft_model, "sft_teacher.jsonl", cfg.teacher_steps, cfg.teacher_learning_rate, teacher_model)]
    for name, model, train_file, steps, lr, out in runs:
        st.cli(name, ["sft", "--model", str(model), "--data", str(data / train_file), "--output", str(out),
                      "--max-steps", str(steps), "--per-device-batch-size", str(cfg.sft_batch_size),
                      "--learning-rate", str(lr), "--seed", str(seed), "save_strategy=no",
                      f"max_length={TOY_MAX_LENGTH}"])
    return sft_model, teacher_model


def run_seed(d: Path, cfg: DemoConfig, seed: int, progress: bool, run_command: RunCommand,
             shared: Path | None = None) -> dict:
    """Stages 1-12 for one seed in directory `d`; returns that seed's numbers. `shared`: the directory of the seed
    whose policy and teacher this one uses (share_sft), its SFT stages skipped."""
    from focalpo.toyworld.sft import TOY_TEACHER_TEMPLATE
    from focalpo.toyworld.tasks import write_tasks

    st = Stages(progress, run_command)
    data = d / "data"
    with st.timed("tasks"):
        parts, heldout = seed_tasks(cfg, seed)
        write_tasks(data / "train.jsonl", [*parts["sft_part"], *parts["focused_part"], *parts["codeflow_part"]])
        write_tasks(data / "heldout.jsonl", heldout)
        for name, problems in parts.items():
            write_tasks(data / f"{name}.jsonl", problems)
    (data / "teacher_template.txt").write_text(TOY_TEACHER_TEMPLATE, encoding="utf-8")
    if shared is not None:  # the policy and teacher of the first seed (share_sft)
        sft_model, teacher_model = shared / "models" / "sft", shared / "models" / "teacher"
    else:
        sft_model, teacher_model = _sft_stages(st, d, cfg, parts["sft_part"], seed)
    gen = ["--benchmark", "jsonl", "--backend", "hf", "--seed", str(seed)]
    st.cli("focused", ["focused", *gen, "--model", str(sft_model), "--temperature", str(cfg.temperature),
                       "--problems", str(data / "focused_part.jsonl"),
                       "--k", str(cfg.k), "--k-tests", str(cfg.k), "--max-new-tokens", str(cfg.max_new_tokens),
                       "--out", str(d / "runs" / "focused")])
    continuation = _continuation(st, d, seed)
    st.cli("codeflow", ["codeflow", *gen, "--model", str(teacher_model), "--temperature", str(cfg.teacher_temperature),
                        "--top-p", str(cfg.teacher_top_p), "--teacher-template", str(data / "teacher_template.txt"),
                        "--problems", str(data / "codeflow_part.jsonl"),
                        "--max-iterations", str(cfg.codeflow_iterations),
                        "--max-new-tokens", str(cfg.codeflow_max_new_tokens), "--out", str(d / "runs" / "codeflow")])

    pairs_by_run = {run: _lines(d / "runs" / run / "pairs.jsonl") for run in PIPELINES}
    union = [line for lines in pairs_by_run.values() for line in lines]
    verdicts: dict = {}
    result: dict = {
        "seed": seed,
        "pairs": {**{run: len(lines) for run, lines in pairs_by_run.items()}, "total": len(union)},
        "summaries": {run: {k: v for k, v in json.loads((d / "runs" / run / "summary.json").read_text()).items()
                            if k != "config"} for run in PIPELINES},
        "continuation": continuation,
        "training_skipped": None,
        "results_oracle": {},  # the arms trained on the oracle-filtered pairs, when there are any
        "audit": {run: _audit(st, d, run, verdicts) for run in PIPELINES},
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
        tasks = {run: {p.task_id for p in parts[f"{run}_part"]} for run in PIPELINES}
        result["pairs"]["train"] = split_pairs(data / "pairs.jsonl", data, tasks)
        result["pairs"]["validation"] = {run: len(_lines(data / f"val_{run}.jsonl")) for run in PIPELINES}
        trained = {run: data / f"pairs_{run}.jsonl" for run, n in result["pairs"]["train"].items() if n}
        models.update(_train(st, d, cfg, sft_model, trained, seed))
        result["skipped_arms"] = {name: f"no {pipeline} pairs" for name, _, pipeline in cfg.arms if name not in models}
        _view(st, d, cfg, sft_model, seed)
        result["training"] = {name: _training_summary(models[name] / "metrics.jsonl") for name in models if name != "sft"}
        # the same arms on the pairs whose labels the reference tests confirm: label quality apart from weighting
        confirmed = {run: oracle_pairs(path, data / f"oracle_{run}.jsonl") for run, path in trained.items()}
        result["pairs"]["oracle"] = sum(confirmed.values())
        oracle_files = {run: data / f"oracle_{run}.jsonl" for run, n in confirmed.items() if n}
        if oracle_files:
            oracle = _train(st, d, cfg, sft_model, oracle_files, seed, tag=ORACLE)
            result["results_oracle"] = {name: _evaluate(st, d, cfg, name + ORACLE, path, seed, sampled=False)
                                        for name, path in oracle.items()}  # greedy only: the paired table's
            result["per_task_oracle"] = {name: _per_task(d / "results" / f"{name}{ORACLE}-greedy.json") for name in oracle}
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
    dirs = [out if cfg.seeds == 1 else out / f"seed-{s}" for s in range(cfg.seeds)]
    seeds = [run_seed(d, cfg, s, progress, run_command, shared=dirs[0] if cfg.share_sft and s else None)
             for s, d in enumerate(dirs)]
    table_oracle, paired_oracle = oracle_summary(seeds, cfg.arms)
    demo = {"preset": preset, "config": asdict(cfg), "seeds": seeds, "table": aggregate(seeds),
            "paired": paired_table(seeds, baselines=baselines(cfg.arms)),
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
