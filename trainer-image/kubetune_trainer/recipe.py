"""The finetuning recipe: setup, train, save. Read it top to bottom.

Runs under `accelerate launch` (one process per GPU, one per CPU node), or as a plain
`python -m kubetune_trainer --config config.json` on one device.

Features:
- LoRA (peft, "all-linear" or named modules), QLoRA (4-bit base, GPU only) and full finetuning
- DPO on preference pairs (preference.py), on LoRA adapters (the reference is the base with
  the adapters disabled) or all weights (a frozen copy is the reference)
- causal LM (loss on assistant/completion tokens only) and sequence classification
- packing for causal LM with per-example position ids: no attention across examples
- mixed precision (bf16 where the GPU has it, fp32 on CPU), gradient checkpointing,
  gradient accumulation, linear/cosine/constant schedules with warmup
- evaluation every N steps or once per epoch (loss; accuracy for classification) and early
  stopping on evalLoss or evalAccuracy
- checkpoints every N steps and on SIGTERM, resumed automatically on start
- progress on GET /progress and /metrics (rank 0)
- TensorBoard event files under output.uri/tensorboard/, an MLflow run with spec.tracking
- a KServe manifest (serving.yaml) next to the model with output.serving

The batch schedule is a pure function of (seed, step), and checkpoints hold the RNG states,
so a resumed run continues with the batches and dropout masks an uninterrupted run would use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import signal
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from . import checkpointing, fastpath, health, linear_probe, outputs, parallel, preference, tracking
from .data import DataSpec, prepare_data
from .data.batches import (
    StepSchedule,
    collate_flattened,
    collate_packed,
    collate_padded,
    collate_pairs,
)
from .data.encode import IGNORE_INDEX
from .data.packing import pack
from .data.report import log_lines
from .data.report import summary as data_summary
from .errors import Diverged, InvalidConfig
from .models import add_lora, load_model, load_tokenizer, model_source, resolved_revision
from .optimization import build_optimizer, build_scheduler, choose_precision, weights_dtype
from .progress import Progress, ProgressServer, Throughput
from .storage import Destination

log = logging.getLogger(__name__)

CLIP_GRAD_NORM = 1.0
LOG_LINES = 50  # progress lines per run in the log (plus the first and last step)


class StopRequest:
    """Set by SIGTERM (preemption, suspend, eviction); checked once per step."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> StopRequest:
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        log.warning("SIGTERM: finishing this step, then saving a checkpoint")
        self.requested = True


class FinetuneRecipe:
    def __init__(self, config, *, progress: Progress | None = None, serve_progress: bool = True):
        self.config = config
        self.hyper = config.hyperparameters
        self.classification = config.model.task == "sequence-classification"
        # DPO: method.dpo is resolved by the operator (beta, adapter lora or full).
        self.dpo = config.method.dpo if config.method.type == "dpo" else None
        self.reference = None  # the frozen copy of a full DPO run
        self.dest = Destination(config.output.uri)
        self.progress = progress or Progress()
        self.serve_progress = serve_progress
        self.stop = StopRequest()
        self.server: ProgressServer | None = None
        self.tracker: tracking.Tracker | None = None
        self.revision: str | None = None
        self.run_status = "FAILED"  # what the MLflow run ends as, unless training gets further

    # ------------------------------------------------------------------------------ setup

    def setup(self) -> None:
        from accelerate.utils import set_seed

        self._check_config()
        cuda = torch.cuda.is_available()
        self.mixed_precision = choose_precision(
            self.hyper.precision, cuda=cuda, bf16_supported=cuda and torch.cuda.is_bf16_supported()
        )
        # Attention kernel, Liger, AdamW implementation, torch.compile: chosen once, here.
        self.fast = fastpath.choose(
            self.hyper.fast_path, fastpath.probe(), task=self.config.model.task,
            packing=self.packing, precision=self.mixed_precision, optimizer=self.hyper.optimizer)
        if self.dpo and self.fast.liger:
            # DPO needs the policy's and the reference's log-probs of every completion token:
            # Liger's fused cross-entropy returns only a loss.
            if self.hyper.fast_path.liger == "on":
                raise InvalidConfig("hyperparameters.fastPath.liger on is not supported with "
                                    "method.type dpo; use auto or off")
            self.fast = dataclasses.replace(
                self.fast, liger=False, notes=(*self.fast.notes, "liger off: method dpo"))
        self.strategy = self.config.resources.strategy
        self.accelerator = parallel.make_accelerator(
            self.strategy, cuda=cuda, mixed_precision=self.mixed_precision,
            cpu_offload=self.config.resources.cpu_offload)
        self.is_main = self.accelerator.is_main_process
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        self.stop.install()
        if self.is_main and self.serve_progress:
            self.server = ProgressServer(self.progress).start()
        self.info("setup: rank %d of %d, %s, precision %s", self.rank, self.world,
                  self.accelerator.distributed_type, self.mixed_precision)
        set_seed(self.hyper.seed)
        # Before anything is loaded: only this FinetuneJob's checkpoints may be resumed. Rank 0
        # deletes another job's (output.overwrite) while the others wait; without overwrite
        # every rank fails alike.
        if self.is_main or not self.config.output.overwrite:
            checkpointing.claim(self.dest, self.config.job_uid, self.config.output.overwrite)
        self.accelerator.wait_for_everyone()

        source = model_source(self.config.model.uri)
        self.tokenizer = load_tokenizer(self.config.model.uri, source)
        self.data = prepare_data(DataSpec.from_config(self.config), self.tokenizer)
        for line in log_lines(self.data.report):
            self.info("%s", line)
        self.train_items = self._batchable(self.data.train)
        self.eval_items = self._batchable(self.data.validation)

        self.model = self._build_model(source)
        self.schedule = StepSchedule(
            num_items=len(self.train_items), batch_size=self.hyper.batch_size,
            accumulation=self.hyper.gradient_accumulation_steps, world_size=self.world,
            seed=self.hyper.seed,
        )
        self.total_steps = self.hyper.max_steps or self.hyper.epochs * self.schedule.steps_per_epoch
        self.optimizer = build_optimizer(
            self.model, name=self.hyper.optimizer, learning_rate=self.hyper.learning_rate,
            weight_decay=self.hyper.weight_decay, implementation=self.fast.optimizer,
        )
        self.scheduler = build_scheduler(
            self.optimizer, name=self.hyper.lr_scheduler, warmup_ratio=self.hyper.warmup_ratio,
            total_steps=self.total_steps,
        )
        self.step = 0
        self.state = {"bestMetric": None, "evalsWithoutImprovement": 0, "trainLoss": None,
                      "evalLoss": None, "evalAccuracy": None, "history": [],
                      "rewardAccuracy": None, "rewardMargin": None, "evalRewardAccuracy": None,
                      "firstLoss": None, "bestStep": None, "bestEval": None, "warnings": [],
                      "plateau": None}
        # The trainable weights at the best evaluation so far (CPU copies), restored before
        # saving: early stopping stops `patience` evaluations *after* the best.
        self.best_weights: dict[str, torch.Tensor] | None = None
        checkpoint = checkpointing.latest(self.dest)
        sharded = self.strategy == "fsdp"
        if checkpoint is not None and not sharded:
            checkpointing.load_weights(checkpoint, self.model)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        if checkpoint is not None:
            if sharded:  # each rank reads its shards of weights and optimizer state
                parallel.load_sharded(checkpoint.folder, self.model, self.optimizer)
            # After prepare: optimizer state must land on the device the parameters are on.
            checkpointing.load_training_state(checkpoint, self.optimizer, self.scheduler,
                                              rank=self.rank, sharded=sharded)
            self.step = checkpoint.step
            self.state.update({k: v for k, v in checkpoint.state.items() if k in self.state})
            self.info("resume: continuing from %s at step %d of %d", checkpoint.name,
                      self.step, self.total_steps)
        elif self.config.method.head_init == "linear-probe":
            self._fit_head_as_linear_probe()  # a resume has the head in its checkpoint
        if self.fast.compile:
            # In place (nn.Module.compile): parameter names, checkpoints and saving unchanged.
            self.accelerator.unwrap_model(self.model).compile()
        self.fast_path = self.fast.report(attention=self.attention, liger=self.liger,
                                          compiled=self.fast.compile)
        self.fast_path["notes"] += self.attention_notes
        self.info("fast path: %s", json.dumps(self.fast_path))
        self.progress.update(step=self.step, totalSteps=self.total_steps, phase="Running",
                             epoch=self.step / self.schedule.steps_per_epoch,
                             warnings=list(self.state["warnings"]),
                             plateau=self.state["plateau"])
        self.info("setup: %d training items (%s), %d validation, %d steps of %d x %d x %d",
                  len(self.train_items), "packed" if self.packing else "padded",
                  len(self.eval_items), self.total_steps, self.hyper.batch_size,
                  self.hyper.gradient_accumulation_steps, self.world)
        if self.is_main:
            self.tracker = tracking.Tracker.for_training(self.config, self.dest)
            self.tracker.start(self._tracked_params())

    def _tracked_params(self) -> dict:
        """What MLflow shows as the run's params: the resolved method and hyperparameters, the
        model (with the revision the hub resolved) and the data."""
        config = self.config
        params = {"model.uri": config.model.uri, "model.revision": self.revision or "",
                  "model.task": config.model.task, "dataset.uri": config.dataset.uri,
                  "dataset.contentHash": self.data.report.get("dataset", {}).get("contentHash"),
                  "method.type": config.method.type, "resources.gpus": config.resources.gpus,
                  "resources.nodes": config.resources.nodes, "totalSteps": self.total_steps}
        if config.method.trains_adapter:
            params.update({f"method.lora.{k}": v for k, v in config.method.lora.model_dump(
                mode="json", by_alias=True).items()})
        params.update({f"hyperparameters.{k}": v for k, v in self.hyper.model_dump(
            mode="json", by_alias=True, exclude_none=True).items()})
        return params

    def _check_config(self) -> None:
        hyper, method = self.hyper, self.config.method.type
        if self.classification and hyper.packing:
            raise InvalidConfig("hyperparameters.packing is for causal-lm only")
        if self.config.resources.strategy == "fsdp" and self.config.output.merge_adapter:
            raise InvalidConfig("output.mergeAdapter is not supported with resources.strategy fsdp")
        if method == "qlora" and not torch.cuda.is_available():
            raise InvalidConfig("method qlora needs a GPU (bitsandbytes 4-bit); use lora on CPU")
        if self.config.method.head_init == "linear-probe" and not self.classification:
            raise InvalidConfig("method.headInit linear-probe needs task sequence-classification")
        if self.config.method.head_init == "linear-probe" and self.config.resources.strategy == "fsdp":
            raise InvalidConfig("method.headInit linear-probe is not supported with "
                                "resources.strategy fsdp")
        stopping = hyper.early_stopping
        if stopping and stopping.metric == "evalAccuracy" and not self.classification:
            raise InvalidConfig("earlyStopping.metric evalAccuracy needs sequence-classification")
        if stopping and self.config.dataset.validation is None:
            raise InvalidConfig("earlyStopping needs dataset.validation (a set or splitRatio)")
        if method == "dpo":
            if self.config.dataset.format != "feedback":
                raise InvalidConfig("method.type dpo needs dataset.format feedback")
            if hyper.packing:
                raise InvalidConfig("hyperparameters.packing must be false for method.type dpo")
            if self.config.method.dpo is None:
                raise InvalidConfig("method.dpo must be resolved for method.type dpo")

    def _fit_head_as_linear_probe(self) -> None:
        """LP-FT's first stage (linear_probe.py): the head becomes a logistic regression fitted
        on the frozen model's features of the training items. Every rank fits the same probe;
        rank 0's is broadcast so that data-parallel replicas start identical."""
        started = time.monotonic()
        model = self.accelerator.unwrap_model(self.model)
        num_labels = len(self.data.label_mapping.names)
        layer = linear_probe.output_layer(model, num_labels)
        device, size = self.accelerator.device, self.hyper.batch_size
        batches = [self.train_items[i:i + size] for i in range(0, len(self.train_items), size)]

        def forward(items) -> None:
            batch = self._collate(items)
            with self.accelerator.autocast():
                model(**{k: v.to(device) for k, v in batch.items()
                         if k not in ("labels", "real_tokens")})

        try:
            x = linear_probe.features(model, layer, batches, forward)
        except ValueError as error:
            raise InvalidConfig(f"method.headInit linear-probe: {error}") from error
        labels = [item.label for item in self.train_items]
        weight, bias, accuracy = linear_probe.fit(x, labels, num_labels,
                                                  intercept=layer.bias is not None)
        linear_probe.copy_into(layer, weight, bias)
        if self.world > 1:
            from accelerate.utils import broadcast

            for tensor in (layer.weight, layer.bias):
                if tensor is not None:
                    tensor.data.copy_(broadcast(tensor.data.clone(), from_process=0))
        self.info("head: linear probe fitted on %d training items (%d features), training "
                  "accuracy %.4f, in %.1fs", len(labels), x.shape[1], accuracy,
                  time.monotonic() - started)

    @property
    def packing(self) -> bool:
        return bool(self.hyper.packing) and not self.classification and self.dpo is None

    @property
    def trained(self) -> str:
        """What is trained: lora, qlora or full (dpo: its adapter)."""
        return self.dpo.adapter if self.dpo else self.config.method.type

    def _batchable(self, encoded):
        return pack(encoded, self.hyper.max_seq_length) if self.packing else encoded

    def _build_model(self, source):
        method = self.config.method
        model = load_model(
            self.config.model.uri, self.config.model.task,
            label_mapping=self.data.label_mapping,
            dtype=weights_dtype(self.trained, self.mixed_precision),
            quantize_4bit=method.type == "qlora",
            pad_token_id=self.tokenizer.pad_token_id,
            source=source,
        )
        self.attention, note = fastpath.apply_attention(model, self.fast)
        self.attention_notes = [note] if note else []
        # Before LoRA wraps the model: Liger patches the base model's modules and forward.
        self.liger = fastpath.apply_liger(model) if self.fast.liger else []
        if self.hyper.fast_path.liger == "on" and not self.liger:
            raise InvalidConfig(f"hyperparameters.fastPath.liger on: Liger has no kernels for "
                                f"model type {model.config.model_type}; use auto or off")
        # The commit the hub (or its cache) resolved, not the branch the spec asked for.
        self.revision = resolved_revision(model, source)
        if self.hyper.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        if self.trained == "full" and self.dpo:
            # Before any weight changes; 16 bits under mixed precision, as the planner prices it.
            self.reference = preference.frozen_copy(
                model, weights_dtype("lora", self.mixed_precision)).to(self.accelerator.device)
        if self.trained in ("lora", "qlora"):
            model = add_lora(model, method.lora, self.config.model.task,
                             quantized=method.type == "qlora",
                             gradient_checkpointing=self.hyper.gradient_checkpointing)
        for parameter in model.parameters():
            if parameter.requires_grad and parameter.dtype != torch.float32:
                # Trainable weights stay fp32; autocast computes in 16 bits.
                parameter.data = parameter.data.float()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        self.info("model: %s, %s%s, %d of %d parameters trainable", self.config.model.uri,
                  method.type, f" ({self.dpo.adapter}, beta {self.dpo.beta})" if self.dpo else "",
                  trainable, total)
        return model

    # ------------------------------------------------------------------------------ train

    def train(self) -> str:
        """Run to the end; returns "completed", "early-stopped" or "interrupted"."""
        self.model.train()
        throughput = Throughput()
        log_every = max(1, self.total_steps // LOG_LINES)
        per_epoch = self.schedule.steps_per_epoch
        outcome = "completed"
        while self.step < self.total_steps:
            loss, real_tokens, stop = self._train_step(self.step)
            self.step += 1
            throughput.add(real_tokens)
            smoothed = self._check_health(loss)
            if self.dpo:
                self._track_rewards(*self.step_rewards)
            self._report_progress(throughput, smoothed)
            if self.tracker is not None:
                self.tracker.log_metrics({
                    "trainLoss": loss, "trainLossSmoothed": smoothed,
                    "learningRate": self.scheduler.get_last_lr()[0],
                    "tokensPerSecond": throughput.tokens_per_second()}, self.step)
            if self.step % log_every == 0 or self.step in (1, self.total_steps):
                self._log_step(loss, throughput)

            every = self.hyper.eval_every_steps
            eval_due = (self.step % every == 0) if every else (self.step % per_epoch == 0)
            evaluating = self.eval_items and (eval_due or self.step == self.total_steps)
            if evaluating and self._evaluate_and_check_early_stop():
                outcome = "early-stopped"
            checkpoint_every = self.config.checkpointing.every_steps
            if stop or (checkpoint_every and self.step % checkpoint_every == 0
                        and self.step < self.total_steps and outcome == "completed"):
                self._save_checkpoint()
            if stop:
                return "interrupted"
            if outcome != "completed":
                self.info("early stopping at step %d: no improvement in %d evaluations",
                          self.step, self.state["evalsWithoutImprovement"])
                return outcome
        return outcome

    def _train_step(self, step: int) -> tuple[float, int, bool]:
        """One optimizer step over `accumulation` micro-batches; returns the global mean loss,
        real tokens on all ranks, and whether any rank was asked to stop. DPO: the reward
        accuracy and margin of the step go into self.step_rewards."""
        device = self.accelerator.device
        batches = [self._collate([self.train_items[i] for i in indices])
                   for indices in self.schedule.micro_batches(step, self.rank)]
        targets = sum(self._target_count(batch) for batch in batches)
        if self.world > 1:
            # The step's target count over every rank, known before any forward pass.
            total = self.accelerator.reduce(
                torch.tensor([float(targets)], dtype=torch.float64, device=device), "sum")
            global_targets = int(total.item())
        else:
            global_targets = targets
        scale = loss_scale(global_targets, self.world)
        loss_sum = correct = margin = 0.0
        for index, batch in enumerate(batches):
            last = index == len(batches) - 1
            # Gradients are all-reduced once per step, on the last micro-batch.
            with nullcontext() if last else self.accelerator.no_sync(self.model):
                with self.accelerator.autocast():
                    batch_loss, _, batch_correct, batch_margin = self._batch_stats(
                        self.model, batch, device)
                self.accelerator.backward(batch_loss * scale)
            loss_sum += batch_loss.item()
            correct += batch_correct
            margin += batch_margin
        self.accelerator.clip_grad_norm_(self.model.parameters(), CLIP_GRAD_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        real_tokens = sum(int(batch["real_tokens"]) for batch in batches)
        # One small all-reduce per step: the loss for the log and the SIGTERM flag, so that
        # every rank stops at the same step even if the signal reached them at different times.
        stats = torch.tensor([loss_sum, targets, real_tokens, float(self.stop.requested),
                              correct, margin], dtype=torch.float64, device=device)
        stats = self.accelerator.reduce(stats, "sum") if self.world > 1 else stats
        if self.dpo:
            self.step_rewards = (float(stats[4] / max(stats[1], 1)),
                                 float(stats[5] / max(stats[1], 1)))
        return float(stats[0] / max(stats[1], 1)), int(stats[2]), bool(stats[3] > 0)

    def _collate(self, items):
        if self.dpo:
            return collate_pairs(items, self.tokenizer.pad_token_id)
        if self.packing and self.fast.flatten:
            return collate_flattened(items)
        if self.packing:
            width = self.hyper.max_seq_length if self.fast.fixed_width else None
            return collate_packed(items, self.tokenizer.pad_token_id, width)
        return collate_padded(items, self.tokenizer.pad_token_id)

    def _target_count(self, batch) -> int:
        if self.dpo:
            return int(batch["pairs"])  # the DPO loss is a mean over pairs
        if self.classification:
            return len(batch["labels"])
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

    def _batch_stats(self, model, batch, device):
        """(summed loss, number of targets, number correct, summed reward margin): for DPO the
        targets are pairs and "correct" the pairs whose chosen reward beats the rejected one."""
        if self.dpo:
            return self._preference_forward(model, batch, device)
        return (*self._forward(model, batch, device), 0.0)

    def _preference_forward(self, model, batch, device):
        inputs = {k: v.to(device) for k, v in batch.items()
                  if k in ("input_ids", "attention_mask")}
        labels = batch["labels"].to(device)
        unwrapped = self.accelerator.unwrap_model(model)
        # The reference first, without gradients: nothing of it stays alive for backward.
        with torch.no_grad(), preference.reference_of(unwrapped, self.reference) as reference:
            reference_logps = preference.sequence_logps(
                reference(**inputs, use_cache=False).logits, labels)
        policy_logps = preference.sequence_logps(model(**inputs, use_cache=False).logits, labels)
        losses, chosen, rejected = preference.dpo_loss(policy_logps, reference_logps,
                                                       self.dpo.beta)
        return (losses.sum(), len(losses), float((chosen > rejected).sum()),
                float((chosen - rejected).sum()))

    def _forward(self, model, batch, device):
        """(summed loss, number of targets, number correct) for one batch."""
        inputs = {k: v.to(device) for k, v in batch.items() if k not in ("labels", "real_tokens")}
        labels = batch["labels"].to(device)
        if self.classification:
            logits = model(**inputs).logits.float()
            loss = F.cross_entropy(logits, labels, reduction="sum")
            correct = (logits.argmax(-1) == labels).sum()
            return loss, len(labels), int(correct)
        targets = labels[:, 1:]
        # use_cache=False: with a cache, transformers ignores the packed position ids and
        # packed examples would attend to each other.
        if "fused_linear_cross_entropy" in self.liger:
            # Liger computes the loss from the hidden states in chunks, never holding the
            # full-vocabulary logits; num_items_in_batch=1 makes it the summed loss, as below.
            loss = model(**inputs, labels=labels, use_cache=False, num_items_in_batch=1).loss
            return loss, int((targets != IGNORE_INDEX).sum()), 0
        logits = model(**inputs, use_cache=False).logits
        keep = targets != IGNORE_INDEX
        # Only target positions are upcast: full-vocabulary fp32 logits are the largest
        # tensor of a step.
        loss = F.cross_entropy(logits[:, :-1][keep].float(), targets[keep], reduction="sum")
        return loss, int(keep.sum()), 0

    @torch.no_grad()
    def evaluate(self) -> dict:
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        device = self.accelerator.device
        size = self.hyper.batch_size
        batches = [self.eval_items[i:i + size] for i in range(0, len(self.eval_items), size)]
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        for items in batches[self.rank::self.world]:
            with self.accelerator.autocast():
                loss, count, correct, _ = self._batch_stats(model, self._collate(items), device)
            totals += torch.tensor([loss.item(), count, correct], dtype=torch.float64,
                                   device=device)
        if self.world > 1:
            totals = self.accelerator.reduce(totals, "sum")
        self.model.train()
        metrics = {"evalLoss": float(totals[0] / max(totals[1], 1))}
        if self.classification:
            metrics["evalAccuracy"] = float(totals[2] / max(totals[1], 1))
        if self.dpo:  # share of held-out pairs whose chosen reward beats the rejected one
            metrics["evalRewardAccuracy"] = float(totals[2] / max(totals[1], 1))
        return metrics

    def _check_health(self, loss: float) -> float:
        """The smoothed loss; raises Diverged on a NaN/inf or exploding loss."""
        if self.state["firstLoss"] is None and math.isfinite(loss):
            self.state["firstLoss"] = loss
        smoothed = health.ema(self.state["trainLoss"], loss) if math.isfinite(loss) else loss
        problem = health.divergence(loss, smoothed, self.state["firstLoss"], self.step)
        if problem:
            raise Diverged(f"{problem}; {health.DIVERGED_HINT}")
        self.state["trainLoss"] = smoothed
        return smoothed

    def _evaluate_and_check_early_stop(self) -> bool:
        metrics = self.evaluate()
        self.state.update(metrics)
        self.state["history"].append({"step": self.step, **metrics,
                                      "trainLoss": _round(self.state["trainLoss"])})
        self.progress.update(**metrics)
        if self.tracker is not None:
            self.tracker.log_metrics(metrics, self.step, flush=True)
        self.info("eval: step %d %s", self.step,
                  " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        warning = health.overfitting(self.state["history"])
        if warning and "Overfitting" not in {w["reason"] for w in self.state["warnings"]}:
            log.warning("overfitting: %s", warning)
            self.state["warnings"].append({"reason": "Overfitting", "message": warning})
        self._note_plateau()
        # While it runs: the operator turns these into the Overfitting and Plateau conditions.
        self.progress.update(warnings=list(self.state["warnings"]), plateau=self.state["plateau"])
        stopping = self.hyper.early_stopping
        name = stopping.metric if stopping else "evalLoss"
        min_delta = stopping.min_delta if stopping else 0.0
        value, best = metrics[name], self.state["bestMetric"]
        higher_is_better = name == "evalAccuracy"
        improved = best is None or (
            value > best + min_delta if higher_is_better else value < best - min_delta
        )
        if improved:
            self.state["bestMetric"], self.state["evalsWithoutImprovement"] = value, 0
            self.state["bestStep"], self.state["bestEval"] = self.step, dict(metrics)
            model = self.accelerator.unwrap_model(self.model)
            self.best_weights = {name: p.detach().to("cpu", copy=True)
                                 for name, p in model.named_parameters() if p.requires_grad}
        else:
            self.state["evalsWithoutImprovement"] += 1
        if stopping is None:
            return False
        return self.state["evalsWithoutImprovement"] >= stopping.patience

    def _note_plateau(self) -> None:
        """Watch the metric that picks the kept weights, as early stopping does."""
        stopping = self.hyper.early_stopping
        metric = stopping.metric if stopping else "evalLoss"
        found = health.plateau(self.state["history"], metric, metric == "evalAccuracy")
        before = self.state["plateau"]
        if found and (before is None or before["sinceStep"] != found["sinceStep"]):
            self.info("plateau: %s", health.plateau_message(found))
        self.state["plateau"] = found

    def _restore_best(self, model) -> int:
        """Put the best evaluated weights back; returns the step whose weights are kept."""
        best = self.state["bestStep"]
        if best is None or best == self.step:
            return self.step
        if self.best_weights is None:
            # Resumed after the best evaluation: its weights were not in the checkpoint.
            self.info("keeping the last weights: the best evaluation (step %d) was before "
                      "the resume", best)
            return self.step
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in self.best_weights.items():
                parameters[name].copy_(tensor.to(parameters[name].device))
        self.state.update(self.state["bestEval"])
        self.info("kept the weights of step %d (best %s %.4f), not those of step %d", best,
                  self.hyper.early_stopping.metric if self.hyper.early_stopping else "evalLoss",
                  self.state["bestMetric"], self.step)
        return best

    def _track_rewards(self, accuracy: float, margin: float) -> None:
        """Smoothed like the loss: a step's few pairs give a noisy accuracy."""
        self.state["rewardAccuracy"] = health.ema(self.state["rewardAccuracy"], accuracy)
        self.state["rewardMargin"] = health.ema(self.state["rewardMargin"], margin)
        self.progress.update(rewardAccuracy=round(self.state["rewardAccuracy"], 4),
                             rewardMargin=round(self.state["rewardMargin"], 4))

    def _report_progress(self, throughput: Throughput, loss: float) -> None:
        seconds_per_step = throughput.seconds_per_step()
        remaining = self.total_steps - self.step
        self.progress.update(
            step=self.step,
            epoch=round(self.step / self.schedule.steps_per_epoch, 4),
            trainLoss=loss,
            tokensPerSecond=round(throughput.tokens_per_second(), 1),
            learningRate=self.scheduler.get_last_lr()[0],
            etaSeconds=round(remaining * seconds_per_step, 1) if seconds_per_step else None,
        )

    def _log_step(self, loss: float, throughput: Throughput) -> None:
        snapshot = self.progress.snapshot()
        eta = snapshot["etaSeconds"]
        rewards = (f" reward accuracy {self.state['rewardAccuracy']:.3f} margin "
                   f"{self.state['rewardMargin']:.3f}" if self.dpo else "")
        self.info("step %d/%d (%3.0f%%) epoch %.2f loss %.4f lr %.2e tokens/s %.0f eta %s%s",
                  self.step, self.total_steps, 100 * self.step / self.total_steps,
                  snapshot["epoch"], loss, snapshot["learningRate"],
                  snapshot["tokensPerSecond"], f"{eta:.0f}s" if eta is not None else "-", rewards)

    def _save_checkpoint(self) -> None:
        self.accelerator.wait_for_everyone()
        rng_states = [checkpointing.rng_state()]
        if self.world > 1:
            from accelerate.utils import gather_object

            rng_states = gather_object(rng_states)  # every rank's, in rank order
        sharded = self.strategy == "fsdp"
        if sharded:  # all ranks: each writes its shards next to rank 0's files
            parallel.save_sharded(checkpointing.local_folder(self.dest, self.step),
                                  self.model, self.optimizer)
            self.accelerator.wait_for_everyone()
        if self.is_main:
            state = {**self.state, "epoch": self.step / self.schedule.steps_per_epoch,
                     "totalSteps": self.total_steps, "jobUid": self.config.job_uid}
            uri = checkpointing.save(
                self.dest, step=self.step, model=self.accelerator.unwrap_model(self.model),
                optimizer=self.optimizer, scheduler=self.scheduler, state=state,
                keep=self.config.checkpointing.keep, rng_states=rng_states, sharded=sharded,
            )
            self.state["checkpointUri"] = uri
            # The operator copies this into status.checkpoint.
            self.progress.update(checkpoint={
                "uri": uri, "step": self.step,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------------------ save

    def save(self, outcome: str) -> dict:
        """Write the final artifacts (rank 0) and return the result for the summary."""
        self.accelerator.wait_for_everyone()
        model = self.accelerator.unwrap_model(self.model)
        # Every rank logs a digest of its trained weights: equal digests show that data
        # parallel ranks stayed in sync (the distributed test reads these lines).
        kept = self._restore_best(model)
        log.info("weights: rank %d of %d sha256 %s", self.rank, self.world, weights_digest(model))
        result = {"trainLoss": _round(self.state["trainLoss"]),
                  "evalLoss": _round(self.state["evalLoss"]),
                  "evalAccuracy": _round(self.state["evalAccuracy"]),
                  "rewardAccuracy": _round(self.state["rewardAccuracy"]),
                  "rewardMargin": _round(self.state["rewardMargin"]),
                  "evalRewardAccuracy": _round(self.state["evalRewardAccuracy"]),
                  "stoppedEarly": outcome == "early-stopped", "keptStep": kept,
                  "warnings": self.state["warnings"] or None,
                  "plateau": self.state["plateau"], "fastPath": self.fast_path}
        # FSDP: the full weights are gathered onto rank 0 (a collective call on every rank).
        state_dict = self.accelerator.get_state_dict(self.model) if self.strategy == "fsdp" else None
        if self.is_main:
            result.update(self._write_outputs(model, result, state_dict))
        self.accelerator.wait_for_everyone()
        return {k: v for k, v in result.items() if v is not None}

    def _write_outputs(self, model, result: dict, state_dict: dict | None = None) -> dict:
        config, dest, mapping = self.config, self.dest, self.data.label_mapping
        uris: dict[str, str] = {}
        history = self.state["history"]
        outputs.write_file(dest, "data-report.json",
                           json.dumps({**self.data.report, "evalHistory": history,
                                       "plateau": self.state["plateau"]}, indent=2))
        if mapping is not None:
            outputs.write_file(dest, "label_mapping.json", json.dumps(mapping.to_json(), indent=2))
        if self.trained == "full":
            uris["modelUri"] = outputs.save_model_folder(dest, "model", model, self.tokenizer,
                                                         mapping, state_dict=state_dict)
        else:
            metadata = {"base_uri": config.model.uri, "task": config.model.task,
                        "method": config.method.type}
            uris["adapterUri"] = outputs.save_model_folder(dest, "adapter", model, self.tokenizer,
                                                           mapping, metadata, state_dict=state_dict)
            if config.output.merge_adapter:
                uris["modelUri"] = outputs.save_model_folder(
                    dest, "merged", self._merged(model), self.tokenizer, mapping)
        uris["reportUri"] = dest.uri_of("data-report.json")
        if self.revision:
            uris["baseModelRevision"] = self.revision
        if config.output.serving is not None:
            uris["servingUri"] = outputs.write_file(dest, outputs.SERVING_FILE, outputs.serving_yaml(
                config, uris, self.revision))
        if self.tracker is not None and self.tracker.warning:
            result["warnings"] = [*(result.get("warnings") or []),
                                  {"reason": "TrackingFailed", "message": self.tracker.warning}]
        full_result = {**result, **uris}
        outputs.write_file(dest, "README.md", outputs.model_card(
            config=config, data_report=self.data.report, result=full_result,
            merged=config.output.merge_adapter, history=history, revision=self.revision))
        full_result["evalHistory"] = history
        outputs.write_file(dest, "result.json", json.dumps(full_result, indent=2))
        if self.tracker is not None:
            dest.publish(tracking.TENSORBOARD_DIR)
            for name in ("README.md", "data-report.json", outputs.SERVING_FILE):
                if (dest.local_dir() / name).exists():
                    self.tracker.log_artifact(dest.local_dir() / name)
        return uris

    def _merged(self, model):
        if self.trained == "lora":
            return model.merge_and_unload()
        # A 4-bit base cannot take the merge: reload it in 16 bits and apply the adapter.
        from peft import PeftModel

        base = load_model(self.config.model.uri, self.config.model.task,
                          label_mapping=self.data.label_mapping, dtype=torch.bfloat16,
                          pad_token_id=self.tokenizer.pad_token_id)
        return PeftModel.from_pretrained(base, str(self.dest.local_dir("adapter"))).merge_and_unload()

    # ------------------------------------------------------------------------------ run

    def run(self) -> dict:
        """setup -> train -> save; returns the summary for the termination message."""
        try:
            self.setup()
            outcome = self.train()
            if outcome == "interrupted":
                self.run_status = "KILLED"  # resumed by the next attempt, same MLflow run
                return self.summary("Failed", "Preempted",
                                    f"stopped by SIGTERM at step {self.step}; checkpoint saved, "
                                    "the next attempt resumes from it")
            result = self.save(outcome)
            self.run_status = "FINISHED"
            self.progress.update(phase="Succeeded")
            message = ("stopped early: " if outcome == "early-stopped" else "") + \
                f"trained {self.step} steps"
            return self.summary("Succeeded", "Completed", message, result)
        finally:
            self.close()

    def summary(self, phase: str, reason: str, message: str, result: dict | None = None) -> dict:
        return {"phase": phase, "reason": reason, "message": message, "result": result,
                "step": self.step, "totalSteps": self.total_steps,
                "data": data_summary(self.data.report)}

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close(self.run_status)
            self.tracker = None
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None:
            # Without this a CPU (gloo) DDP run can abort at interpreter exit.
            accelerator.wait_for_everyone()
            accelerator.end_training()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def info(self, message: str, *args) -> None:
        if self.is_main:
            log.info(message, *args)


def loss_scale(global_targets: int, world: int) -> float:
    """What each rank multiplies its summed micro-batch losses by before backward.

    The optimised objective is the mean loss per target token over the whole step: every
    micro-batch of every rank, summed, divided by the step's target count on all ranks. DDP
    averages gradients over ranks (divides by `world`), so each rank scales by
    world / global_targets; dividing by a rank's own count instead would weight a token on a
    rank with few targets more than one on a rank with many.
    """
    return world / max(global_targets, 1)


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        if parameter.requires_grad:
            digest.update(name.encode())
            digest.update(parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _round(value):
    return None if value is None or math.isnan(value) else round(value, 6)
