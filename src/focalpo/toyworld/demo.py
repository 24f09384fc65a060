"""`focalpo demo`: the whole method end to end on a CPU, in the toy world, through the public commands only.

    focalpo demo                                  # quick preset into ./focalpo-demo (a few minutes on 2 cores)
    focalpo demo --preset mini --output /tmp/d    # seconds; what CI runs
    focalpo demo --full --seeds 3 --overwrite     # bigger sizes, mean ± std over seeds

Stages (each one a `focalpo.cli.main([...])` call that must exit 0, timed):
 1. tasks      train tasks split into disjoint SFT / focused / codeflow parts, and held-out tasks -> data/;
 2. sft-data   `build_sft_examples` on the SFT part -> data/sft.jsonl;  model: `create_toy_model` -> models/base;
 3. sft        focalpo sft -> models/sft;
 4. focused    focalpo focused on the focused part with the SFT model -> runs/focused;
 5. codeflow   focalpo codeflow on the codeflow part, the SFT model as teacher -> runs/codeflow;
 6. localize   union of both pairs files -> focalpo localize --method lcs -> data/pairs.jsonl (LCS spans and
               prefix/suffix boundaries on every pair); no pairs -> training is skipped, with the reason;
 7. train      focalpo train from the SFT checkpoint, one run per scheme, equal budgets -> models/<scheme>;
 8. sample/eval greedy pass@1 (and pass@10 of n=10 samples with --full) on the held-out tasks;
 9. report     report.md and demo.json (pass@k per method, pairs per pipeline, run summaries, stage times).

The numbers of a tiny model on a few hundred tasks say the pipeline runs, not which scheme is better.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

SCHEMES = ("dpo", "rpo", "focused", "target", "target-rpo")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run; see PRESETS."""

    model_size: str = "tiny"
    difficulty: tuple[int, int] = (1, 2)
    sft_tasks: int = 300
    focused_tasks: int = 20
    codeflow_tasks: int = 20
    heldout_tasks: int = 50
    sft_steps: int = 400
    sft_batch_size: int = 8
    sft_learning_rate: float = 2e-3
    k: int = 4  # programs and test answers per focused problem
    # the paper samples at 1.5; a tiny model writes no parsable code there, 0.5 keeps some pairs coming
    temperature: float = 0.5
    codeflow_iterations: int = 3
    max_new_tokens: int = 256
    codeflow_max_new_tokens: int = 384
    train_steps: int = 30
    train_batch_size: int = 2
    train_learning_rate: float = 5e-5
    sampled_n: int = 0  # > 0: also n sampled answers per held-out task (pass@10 when >= 10)
    sampled_temperature: float = 0.8
    seeds: int = 1
    schemes: tuple[str, ...] = SCHEMES


PRESETS: dict[str, DemoConfig] = {
    "quick": DemoConfig(),
    # ~60 s on 2 cores; enough SFT that the focused run usually yields a pair, so the 5 schemes train
    "mini": DemoConfig(model_size="nano", difficulty=(1, 1), sft_tasks=30, focused_tasks=4, codeflow_tasks=3,
                       heldout_tasks=4, sft_steps=120, sft_learning_rate=3e-3, k=4, codeflow_iterations=2,
                       max_new_tokens=96, codeflow_max_new_tokens=160, train_steps=2),
    "full": DemoConfig(sft_tasks=1000, focused_tasks=100, codeflow_tasks=100, heldout_tasks=200, sft_steps=1500,
                       k=8, train_steps=100, sampled_n=10, seeds=3),
}


class Stages:
    """Runs `focalpo` commands in-process, timing each; a nonzero exit raises RuntimeError naming the stage."""

    def __init__(self, progress: bool):
        self.progress = progress
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
        """`focalpo <argv> --overwrite [--no-progress]`: run_demo checked the directory is empty or --overwrite was given."""
        from focalpo.cli import main

        argv = [*argv, "--overwrite", *([] if self.progress or not has_progress else ["--no-progress"])]
        print(f"\n== demo stage {name}: focalpo {' '.join(argv)}", flush=True)
        with self.timed(name):
            code = main(argv)
        if code != 0:
            raise RuntimeError(f"demo stage {name!r} failed: `focalpo {' '.join(argv)}` exited with {code}")


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []


def _pass_at(results: Path) -> dict:
    base = json.loads(results.read_text())["summary"]["base"]
    return {k: v for k, v in base.items() if k in ("pass@1", "pass@10")}


def _evaluate(st: Stages, d: Path, cfg: DemoConfig, name: str, model: Path, seed: int) -> dict:
    """Greedy pass@1 (and sampled pass@k when cfg.sampled_n) of `model` on the held-out tasks."""
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


def run_seed(d: Path, cfg: DemoConfig, seed: int, progress: bool) -> dict:
    """Stages 1-8 for one seed in directory `d`; returns that seed's numbers."""
    from focalpo.toyworld.model import create_toy_model
    from focalpo.toyworld.sft import build_sft_examples, write_sft
    from focalpo.toyworld.tasks import generate_tasks, write_tasks

    st = Stages(progress)
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
        examples = build_sft_examples(parts["sft_part"], seed=seed)
        write_sft(data / "sft.jsonl", examples, overwrite=True)
    with st.timed("model"):
        texts = [m["content"] for e in examples for m in e["messages"]]
        create_toy_model(d / "models" / "base", texts, size=cfg.model_size, seed=seed, overwrite=True)

    sft_model = d / "models" / "sft"
    st.cli("sft", ["sft", "--model", str(d / "models" / "base"), "--data", str(data / "sft.jsonl"),
                   "--output", str(sft_model), "--max-steps", str(cfg.sft_steps),
                   "--per-device-batch-size", str(cfg.sft_batch_size), "--learning-rate", str(cfg.sft_learning_rate),
                   "--seed", str(seed), "save_strategy=no"])
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
    result: dict = {
        "seed": seed,
        "pairs": {**{run: len(lines) for run, lines in pairs_by_run.items()}, "total": len(union)},
        "summaries": {run: {k: v for k, v in json.loads((d / "runs" / run / "summary.json").read_text()).items()
                            if k != "config"} for run in ("focused", "codeflow")},
        "training_skipped": None,
    }
    models = {"sft": sft_model}
    if not union:
        result["training_skipped"] = "no preference pairs from focused or codeflow: nothing to train on"
        print(f"demo: {result['training_skipped']}; evaluating the SFT model only", flush=True)
    else:
        (data / "union.jsonl").write_text("\n".join(union) + "\n", encoding="utf-8")
        st.cli("localize", ["localize", "--in", str(data / "union.jsonl"), "--method", "lcs",
                            "--out", str(data / "pairs.jsonl")], has_progress=False)
        for scheme in cfg.schemes:
            models[scheme] = d / "models" / scheme
            st.cli(f"train:{scheme}", ["train", "--model", str(sft_model), "--data", str(data / "pairs.jsonl"),
                                       "--scheme", scheme, "--output", str(models[scheme]),
                                       "--max-steps", str(cfg.train_steps),
                                       "--per-device-batch-size", str(cfg.train_batch_size),
                                       "--learning-rate", str(cfg.train_learning_rate),
                                       f"seed={seed}", f"ref_cache_dir={d / 'cache' / 'ref_logps'}"])
    result["results"] = {name: _evaluate(st, d, cfg, name, path, seed) for name, path in models.items()}
    result["stage_seconds"] = st.seconds
    return result


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def aggregate(seeds: list[dict]) -> dict:
    """method -> metric -> mean/std/values over the seeds that have it."""
    table: dict = {}
    for r in seeds:
        for method, scores in r["results"].items():
            for metric, v in scores.items():
                table.setdefault(method, {}).setdefault(metric, []).append(v)
    return {m: {k: _mean_std(v) for k, v in metrics.items()} for m, metrics in table.items()}


def _fmt(cell: dict | None) -> str:
    if cell is None:
        return "-"
    s = f"{100 * cell['mean']:.1f}"
    return s + (f" ± {100 * cell['std']:.1f}" if len(cell["values"]) > 1 else "")


def format_table(table: dict) -> str:
    metrics = sorted({k for m in table.values() for k in m})
    rows = ["| method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    rows += [f"| {m} | " + " | ".join(_fmt(table[m].get(k)) for k in metrics) + " |" for m in table]
    return "\n".join(rows)


def format_report(demo: dict) -> str:
    n = len(demo["seeds"])
    lines = ["# focalpo demo", "", f"Preset `{demo['preset']}`, {n} seed(s); pass@k in percent on held-out toy tasks"
             + (" (mean ± std over seeds; no confidence interval yet)." if n > 1 else "."), "",
             format_table(demo["table"]), ""]
    for r in demo["seeds"]:
        lines += [f"## Seed {r['seed']}", "", f"Pairs: focused {r['pairs']['focused']}, codeflow "
                  f"{r['pairs']['codeflow']}, total {r['pairs']['total']}."]
        if r["training_skipped"]:
            lines.append(f"Training skipped: {r['training_skipped']}.")
        fo, cf = r["summaries"]["focused"], r["summaries"]["codeflow"]
        lines += ["", f"Focused: {fo.get('problems')} problems, {fo.get('with_correct')} with a correct program, "
                  f"matrix density {fo.get('matrix_density', 0):.2f}, status {fo.get('status')}, "
                  f"dropped {fo.get('dropped')}.",
                  f"CodeFlow: {json.dumps({k: v for k, v in cf.items() if not isinstance(v, list)})}.", "",
                  "| stage | seconds |", "|---|---|"]
        lines += [f"| {name} | {sec:.1f} |" for name, sec in r["stage_seconds"].items()]
        lines.append("")
    lines.append(f"Total wall time: {demo['wall_seconds']:.1f} s.")
    return "\n".join(lines) + "\n"


def run_demo(output: str | Path, cfg: DemoConfig, *, preset: str = "custom", overwrite: bool = False,
             progress: bool = True) -> dict:
    """All stages for cfg.seeds seeds (one subdirectory seed-<s> each when more than one), then the report."""
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to run the demo there anyway")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seeds = [run_seed(out if cfg.seeds == 1 else out / f"seed-{s}", cfg, s, progress) for s in range(cfg.seeds)]
    demo = {"preset": preset, "config": asdict(cfg), "seeds": seeds, "table": aggregate(seeds),
            "wall_seconds": round(time.perf_counter() - t0, 2)}
    from focalpo.pipelines.runner import write_json

    write_json(out / "demo.json", demo)
    (out / "report.md").write_text(format_report(demo), encoding="utf-8")
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
