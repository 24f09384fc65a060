"""Data pipelines that turn problems into localised preference pairs, resumable and sharded.

    focalpo focused ...        Focused-DPO: k programs x k tests, PageRank, prefix/suffix pairs (focused.py)
    focalpo synth-prompts ...  Focused-DPO phase 0: problems from concepts in Python sources (synth.py)
    focalpo codeflow ...       Target-DPO's CodeFlow: iterative debugging with feedback, LCS pairs (codeflow.py)
    focalpo merge A B --out C  concatenate shard runs (runner.py)

The run machinery (run directories, shards, per-problem seeds) is `focalpo.runs`; `runner.py` holds
what only the pipelines share (free config keys, pair format, merge).
Importing this package imports nothing heavy.
"""

# pipeline name (config.json "pipeline") -> its module, which defines `FREE_KEYS` (config keys that
# may differ between a run and its resume, or between shards) and `write_outputs(out, records,
# config)` (rewrites the derived files from the records); `focalpo merge` uses both
PIPELINES = {
    "focused": "focalpo.pipelines.focused",
    "codeflow": "focalpo.pipelines.codeflow",
}
