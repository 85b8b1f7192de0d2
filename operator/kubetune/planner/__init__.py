"""The memory planner: parameter counts and per-GPU memory from a model's config.json alone.

Pure Python, no torch: the operator imports it for the ResourcesFit condition and
status.plan; `kubetune plan` uses it without a cluster.
"""
