"""kubetune: a Kubernetes operator for finetuning and evaluating LLMs."""

__version__ = "0.1.0"
