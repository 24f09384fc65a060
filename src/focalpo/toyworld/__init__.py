"""The toy world: synthetic Python tasks small enough for a tiny model trained on CPU in minutes,
so the whole Focused-DPO / Target-DPO pipeline can be demonstrated end to end on a laptop.

    from focalpo.toyworld.tasks import generate_tasks, write_tasks
    problems = generate_tasks(200, seed=0, difficulty=(1, 3), split="train")

Submodules are imported on demand: importing this package pulls in nothing heavy.
"""
