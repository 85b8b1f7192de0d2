"""Training health: a smoothed train loss, divergence and overfitting (pure functions).

    ema(previous, loss)                      the train loss the status shows (one step's loss
                                             is mostly batch noise)
    divergence(loss, smoothed, first, step)  why training has blown up, or None
    overfitting(history)                     why the model is memorising, or None

A diverged run fails fast (reason Diverged, not retried: the same config diverges again);
overfitting is a warning: the run goes on and keeps the best evaluated weights.
"""

from __future__ import annotations

import math
from itertools import pairwise

EMA_DECAY = 0.9
EXPLODING_FACTOR = 3.0  # smoothed loss this many times the first step's loss: blown up
EXPLODING_AFTER_STEPS = 10  # warm-up can raise the loss briefly; judge after this many steps
OVERFITTING_EVALS = 3  # eval loss rising this many evaluations in a row while train loss falls


def ema(previous: float | None, loss: float, decay: float = EMA_DECAY) -> float:
    return loss if previous is None else decay * previous + (1 - decay) * loss


def divergence(loss: float, smoothed: float | None, first: float | None, step: int) -> str | None:
    if not math.isfinite(loss):
        return f"the train loss became {loss} at step {step}"
    if (first is not None and smoothed is not None and step >= EXPLODING_AFTER_STEPS
            and smoothed > EXPLODING_FACTOR * first):
        return (f"the smoothed train loss rose to {smoothed:.4g} at step {step}, "
                f"{smoothed / first:.1f}x its first value {first:.4g}")
    return None


DIVERGED_HINT = ("lower hyperparameters.learningRate (e.g. 10x), raise warmupRatio, and check "
                 "the data (labels, empty or extremely long rows)")


def overfitting(history: list[dict], evals: int = OVERFITTING_EVALS) -> str | None:
    """Eval loss rose at each of the last `evals` evaluations while the train loss fell."""
    recent = [h for h in history if h.get("evalLoss") is not None][-(evals + 1):]
    if len(recent) < evals + 1:
        return None
    eval_losses = [h["evalLoss"] for h in recent]
    train_losses = [h.get("trainLoss") for h in recent]
    rising = all(b > a for a, b in pairwise(eval_losses))
    falling = None not in train_losses and train_losses[-1] < train_losses[0]
    if not (rising and falling):
        return None
    return (f"eval loss rose {evals} evaluations in a row ({eval_losses[0]:.4f} at step "
            f"{recent[0]['step']} -> {eval_losses[-1]:.4f} at step {recent[-1]['step']}) while "
            f"the train loss fell ({train_losses[0]:.4f} -> {train_losses[-1]:.4f})")
