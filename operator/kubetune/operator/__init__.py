"""The kubetune operator: kopf handlers that run FinetuneJobs and EvalJobs as Kubernetes Jobs.

Run it with `kopf run -m kubetune.operator` or `kubetune operator`. Handlers are thin: they
read, call pure functions (validation, planning, builders, status), and write through
`kube.py`, the one module that talks to the Kubernetes API.
"""
