"""LP-FT: fit the classification head as a linear probe on the frozen model, then finetune.

Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution" (ICLR 2022): with a randomly initialised head, the first steps of a full
finetune push large, noisy gradients from that head into the pretrained encoder. Fitting the
head first, as a logistic regression on the features the head's output layer sees with the
encoder frozen, and only then training everything, starts the finetune from the probe's
accuracy and changes the encoder less.

    output_layer(model, num_labels)        the head's final Linear (classifier, out_proj, score)
    features(model, layer, batches, fwd)   what that layer receives, for every training item
    fit(features, labels, num_labels)      scikit-learn's logistic regression -> (weight, bias)
    copy_into(layer, weight, bias)         the probe becomes the head

The architecture is left as it is (the model still saves and loads as the checkpoint's own
AutoModelForSequenceClassification class): only the head's starting weights change.
"""

from __future__ import annotations

import numpy as np
import torch

C = 1.0
"""scikit-learn's default penalty: the head's features (e.g. BERT's tanh pooler) are not
normalised, and a weakly penalised probe starts the finetune with over-confident logits."""
MAX_ITER = 2000


def output_layer(model: torch.nn.Module, num_labels: int) -> torch.nn.Linear:
    """The last Linear layer that maps to the labels: the head's output layer (with LoRA,
    peft's trainable copy of it; never an adapter matrix, whatever its rank)."""
    found = [m for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m.out_features == num_labels
             and "lora_" not in name and "original_module" not in name]
    if not found:
        raise ValueError(f"no Linear layer with {num_labels} outputs: not a classification head")
    return found[-1]


@torch.no_grad()
def features(model: torch.nn.Module, layer: torch.nn.Linear, batches, forward) -> np.ndarray:
    """The inputs `layer` gets while `forward(batch)` runs over `batches` in eval mode (no
    dropout), as one float32 array in batch order."""
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(
        lambda module, args, output: captured.append(args[0].detach().float().cpu()))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            forward(batch)
    finally:
        hook.remove()
        model.train(was_training)
    if any(c.dim() != 2 for c in captured):
        # A decoder's `score` layer sees every position and the model picks the last real
        # token after it: there is no one feature row per example to fit a probe on.
        raise ValueError("the head's output layer scores every token position (a decoder "
                         "model); a linear probe needs a head that pools first (an encoder)")
    return torch.cat(captured).numpy()


def fit(x: np.ndarray, labels: list[int], num_labels: int,
        intercept: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """(weight [num_labels, d], bias [num_labels], training accuracy) of a multinomial
    logistic regression; labels absent from the data get the lowest logit."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=C, max_iter=MAX_ITER, fit_intercept=intercept)
    probe.fit(x, labels)
    weight = np.zeros((num_labels, x.shape[1]), dtype=np.float32)
    bias = np.zeros(num_labels, dtype=np.float32)
    classes = probe.classes_.astype(int)
    if len(classes) == 2:  # scikit-learn keeps one row for two classes: logit of the second
        coef = probe.coef_[0]
        weight[classes[0]], weight[classes[1]] = -coef / 2, coef / 2
        offset = probe.intercept_[0] if intercept else 0.0
        bias[classes[0]], bias[classes[1]] = -offset / 2, offset / 2
    else:
        weight[classes] = probe.coef_
        bias[classes] = probe.intercept_ if intercept else 0.0
    missing = [i for i in range(num_labels) if i not in set(classes)]
    if missing:
        bias[missing] = bias[classes].min() - 10.0
    return weight, bias, float(probe.score(x, labels))


@torch.no_grad()
def copy_into(layer: torch.nn.Linear, weight: np.ndarray, bias: np.ndarray) -> None:
    layer.weight.copy_(torch.as_tensor(weight).to(layer.weight.dtype))
    if layer.bias is not None:
        layer.bias.copy_(torch.as_tensor(bias).to(layer.bias.dtype))
