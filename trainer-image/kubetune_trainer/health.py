"""Training health: a smoothed train loss, divergence and overfitting (pure functions).

    ema(previous, loss)                      the train loss the status shows (one step's loss
                                             is mostly batch noise)
    divergence(loss, smoothed, first, step)  why training has blown up, or None
    overfitting(history)                     why the model is memorising, or None
    plateau(history, metric, higher)         since when the eval metric stopped improving
                                             meaningfully, with the numbers, or None

A diverged run fails fast (reason Diverged, not retried: the same config diverges again);
overfitting is a warning: the run goes on and keeps the best evaluated weights. A plateau is
a note, not a warning: more steps of this recipe are unlikely to pay. It differs from early
stopping's patience in two ways: it never stops the run, and it asks for a meaningful gain
(PLATEAU_MARGIN of the value) where earlyStopping.minDelta defaults to any gain at all.
"""

from __future__ import annotations

import math
from itertools import pairwise

EMA_DECAY = 0.9
EXPLODING_FACTOR = 3.0  # smoothed loss this many times the first step's loss: blown up
EXPLODING_AFTER_STEPS = 10  # warm-up can raise the loss briefly; judge after this many steps
OVERFITTING_EVALS = 3  # eval loss rising this many evaluations in a row while train loss falls
PLATEAU_EVALS = 3  # evaluations without a meaningful gain before a plateau is noted
PLATEAU_MARGIN = 0.01
"""A gain counts when it beats the value it is measured from by more than 1% of that value
(relative, so one rule serves a loss of 2.3 and one of 0.05, and accuracy): smaller moves are
within the noise of a validation set of a few hundred examples."""


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


def plateau(history: list[dict], metric: str = "evalLoss", higher_is_better: bool = False,
            evals: int = PLATEAU_EVALS, margin: float = PLATEAU_MARGIN) -> dict | None:
    """The plateau the eval metric is on, or None.

    The reference is the last evaluation that improved on the reference before it by more
    than `margin` of that value (the first evaluation to begin with); a plateau is `evals` or
    more evaluations since the reference without such a gain. Returns {metric, sinceStep (the
    reference's step), evals (how many since), value (at sinceStep), best (since then,
    the reference included), latest}.
    """
    points = [(h["step"], h[metric]) for h in history if h.get(metric) is not None]
    if not points:
        return None
    reference_step, reference = points[0]
    since: list[float] = []
    for step, value in points[1:]:
        gain = value - reference if higher_is_better else reference - value
        if gain > margin * abs(reference):
            reference_step, reference, since = step, value, []
        else:
            since.append(value)
    if len(since) < evals:
        return None
    best = (max if higher_is_better else min)([reference, *since])
    return {"metric": metric, "sinceStep": reference_step, "evals": len(since),
            "value": round(reference, 6), "best": round(best, 6), "latest": round(since[-1], 6)}


def plateau_message(found: dict) -> str:
    """One line for the condition, the log and the model card."""
    return (f"{found['metric']} has not improved by more than {PLATEAU_MARGIN:.0%} for "
            f"{found['evals']} evaluations, since step {found['sinceStep']} "
            f"({found['value']:.4f} then, best since {found['best']:.4f}, latest "
            f"{found['latest']:.4f}): more steps of this recipe are unlikely to help")
