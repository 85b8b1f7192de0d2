"""The evaluator: `python -m kubetune_trainer.eval --config /etc/kubetune/config.json`.

Scores a model, and its baseline when one is given, on one dataset; compares them metric by
metric against thresholds; writes per-example predictions and an error-analysis report under
output.uri; reports a summary through the termination message.

    recipe.py          evaluate(config): the whole run, top to bottom
    cli.py             arguments, exit codes, termination message
    data.py            the evaluation set (read by the trainer's data layer), label mapping
    models.py          loading the model under test and the baseline (seeded head)
    batching.py        length-sorted batches
    scoring.py         batched classify / teacher-forced token losses / greedy generation
    classification.py  sequence-classification task: predictions -> metrics, report
    causal.py          causal-lm task: loss, perplexity, generation metrics, report
    metrics.py         pure metric functions (accuracy ... F1, exact match, token F1, ROUGE-L)
    compare.py         value / baseline / delta / threshold / passed rows
    analysis.py        confusions, worst classes, lowest-scoring answers
    summary.py         the termination summary, shrunk under 4 KiB
    report.py          predictions.jsonl and report.json through the storage layer
"""
