"""The GPU fast path: what is chosen for each machine, and that the paths CPUs can run compute
the same loss as the plain one.

No GPU, flash-attn or Liger exists where these tests run: the machine is an edge that cannot
exist here, so the selection is tested with `fastpath.Machine` values standing in for
`fastpath.probe()` (one test checks what probe says of this machine). flex_attention (the
varlen path torch ships) runs on CPU and is compared with the masked sdpa path and with each
example run alone; Liger's loss route (the model computes a summed loss from labels) is
compared with the recipe's own loss with transformers' loss function in Liger's place. What
only a GPU run shows: flash-attention's kernels, Liger's triton kernels and fused AdamW's CUDA
kernel numerically, and their speed and memory (benchmarks/gpu_mfu.py).
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
from kubetune.api.finetune import FastPath
from kubetune_trainer import fastpath
from kubetune_trainer.data.batches import collate_flattened, collate_packed
from kubetune_trainer.data.encode import IGNORE_INDEX, Encoded
from kubetune_trainer.data.packing import pack
from kubetune_trainer.errors import InvalidConfig
from kubetune_trainer.fastpath import Machine
from kubetune_trainer.optimization import build_optimizer
from kubetune_trainer.recipe import FinetuneRecipe

from .helpers import build_tiny_llama

CPU = Machine(flex_attention=True)
GPU = dict(cuda=True, flex_attention=True, triton=True)
H100 = Machine(**GPU, capability=(9, 0), flash_attn_2=True, flash_attn_3=True, liger=True)
A100 = Machine(**GPU, capability=(8, 0), flash_attn_2=True, flash_attn_3=True, liger=True)
T4_FLASH = Machine(**GPU, capability=(7, 5), flash_attn_2=True)
GPU_BARE = Machine(**GPU, capability=(8, 0))  # torch's own kernels only
GPU_NO_TRITON = Machine(cuda=True, capability=(8, 0), flex_attention=True)


def choose(machine, precision="bf16", task="causal-lm", optimizer="adamw", packing=True,
           **settings):
    return fastpath.choose(FastPath(**settings), machine, task=task, packing=packing,
                           precision=precision, optimizer=optimizer)


@pytest.mark.parametrize(("machine", "precision", "attention"), [
    (H100, "bf16", "flash_attention_3"),
    (A100, "bf16", "flash_attention_2"),  # flash-attn-3 is Hopper-only
    (A100, "no", "flex_attention"),  # flash kernels need 16-bit activations
    (T4_FLASH, "fp16", "flex_attention"),  # flash-attn 2 needs compute capability 8.0
    (GPU_BARE, "bf16", "flex_attention"),
    (GPU_NO_TRITON, "bf16", "sdpa"),
    (CPU, "no", "sdpa"),
])
def test_auto_attention_for_each_machine(machine, precision, attention):
    choice = choose(machine, precision)
    assert choice.attention == attention
    assert choice.varlen is (attention != "sdpa")


def test_auto_attention_notes_why_it_fell_back_to_the_mask():
    assert choose(CPU, "no").notes[0].startswith("attention sdpa: no GPU")
    assert "needs the flash-attn package" in choose(GPU_NO_TRITON).notes[0]
    assert not [n for n in choose(H100).notes if n.startswith("attention")]


def test_classification_keeps_sdpa_and_liger_off_even_on_a_full_gpu():
    choice = choose(H100, task="sequence-classification", packing=False)
    assert (choice.attention, choice.liger) == ("sdpa", False)


@pytest.mark.parametrize(("machine", "requested", "problem"), [
    (CPU, "flash_attention_2", "needs a GPU"),
    (GPU_BARE, "flash_attention_2", "needs the flash-attn package"),
    (T4_FLASH, "flash_attention_2", "needs compute capability 8.0"),
    (A100, "flash_attention_3", "needs a Hopper GPU"),
    (Machine(cuda=True), "flex_attention", "needs torch >= 2.5"),
    (CPU, "flex_attention", r"needs a GPU \(torch has no flex_attention backward on CPU\)"),
])
def test_forced_attention_that_cannot_run_is_an_input_error_naming_the_field(
        machine, requested, problem):
    with pytest.raises(InvalidConfig, match=rf"hyperparameters\.fastPath\.attention {requested} "
                                            rf"{problem}"):
        choose(machine, attention=requested)


def test_forced_attention_that_can_run_is_taken():
    assert choose(GPU_BARE, "no", attention="flex_attention").attention == "flex_attention"
    assert choose(H100, attention="sdpa").attention == "sdpa"
    assert choose(H100, attention="flash_attention_2").attention == "flash_attention_2"


@pytest.mark.parametrize(("machine", "requested", "expected"), [
    (H100, "auto", True), (H100, "on", True), (H100, "off", False),
    (GPU_BARE, "auto", False), (CPU, "auto", False), (CPU, "off", False),
])
def test_liger_for_each_machine(machine, requested, expected):
    assert choose(machine, liger=requested).liger is expected


@pytest.mark.parametrize(("machine", "problem"), [
    (CPU, "needs a GPU"), (GPU_BARE, "needs the liger-kernel package")])
def test_liger_on_where_it_cannot_run_is_an_input_error(machine, problem):
    with pytest.raises(InvalidConfig, match=rf"hyperparameters\.fastPath\.liger on: Liger {problem}"):
        choose(machine, liger="on")


@pytest.mark.parametrize(("machine", "requested", "optimizer", "expected"), [
    (A100, "auto", "adamw", "adamw-fused"),
    (CPU, "auto", "adamw", "adamw-foreach"),
    (CPU, "on", "adamw", "adamw-fused"),  # torch's fused AdamW has a CPU kernel too
    (A100, "off", "adamw", "adamw-foreach"),
    (A100, "auto", "adamw-8bit", "adamw-8bit"),
])
def test_optimizer_implementation(machine, requested, optimizer, expected):
    assert choose(machine, fused_optimizer=requested, optimizer=optimizer).optimizer == expected


def test_compile_is_opt_in():
    assert choose(H100).compile is False and any("compile off" in n for n in choose(H100).notes)
    assert choose(CPU, "no", compile="on").compile is True
    assert choose(H100, compile="off").compile is False


def test_flex_pads_packed_rows_to_one_width_and_nothing_else_does():
    assert choose(GPU_BARE).fixed_width is True
    assert choose(GPU_BARE, packing=False).fixed_width is False
    assert choose(A100).fixed_width is False


def test_report_says_what_ran():
    report = choose(CPU, "no").report(attention="sdpa", liger=[], compiled=False)
    assert report == {"attention": "sdpa", "packedAttention": "mask", "liger": [],
                      "optimizer": "adamw-foreach", "compiled": False, "precision": "fp32",
                      "notes": list(choose(CPU, "no").notes)}
    varlen = choose(H100).report(attention="flash_attention_3", liger=["rms_norm"], compiled=True)
    assert varlen["packedAttention"] == "varlen" and varlen["precision"] == "bf16"
    assert "packedAttention" not in choose(CPU, packing=False).report(
        attention="sdpa", liger=[], compiled=False)


def test_probe_reports_this_machine():
    """The one look at the real machine: CPU-only torch, flex_attention importable."""
    machine = fastpath.probe()
    assert machine.cuda is torch.cuda.is_available()
    assert machine.flex_attention is True
    if not machine.cuda:
        assert (machine.flash_attn_2, machine.flash_attn_3, machine.capability) == (
            False, False, None)


def test_optimizer_implementation_reaches_torch():
    model = torch.nn.Linear(4, 4)
    fused = build_optimizer(model, name="adamw", learning_rate=1e-3, weight_decay=0.0,
                            implementation="adamw-fused")
    foreach = build_optimizer(model, name="adamw", learning_rate=1e-3, weight_decay=0.0,
                              implementation="adamw-foreach")
    assert fused.defaults["fused"] is True and not fused.defaults["foreach"]
    assert foreach.defaults["foreach"] is True and not foreach.defaults["fused"]
    model(torch.randn(2, 4)).sum().backward()
    fused.step()  # the fused CPU kernel runs


def test_collate_packed_pads_to_a_fixed_width_as_its_own_segment():
    rows = pack([Encoded(line=i, input_ids=[5] * n, labels=[5] * n) for i, n in
                 enumerate((3, 4))], capacity=16)
    batch = collate_packed(rows, pad_id=0, width=16)
    assert batch["input_ids"].shape == (1, 16) and int(batch["real_tokens"]) == 7
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 2, 3, *range(9)]
    assert (batch["labels"][0, 7:] == IGNORE_INDEX).all()


# ----------------------------------------------------------------- the paths compute the same


def _packed_batch(vocab: int, seed: int = 0):
    rng = random.Random(seed)
    examples = []
    for line in range(6):
        n = rng.randint(3, 9)
        ids = [rng.randrange(8, vocab) for _ in range(n)]
        prompt = rng.randint(1, n - 1)
        examples.append(Encoded(line=line, input_ids=ids,
                                labels=[IGNORE_INDEX] * prompt + ids[prompt:]))
    rows = pack(examples, capacity=24)
    return examples, collate_packed(rows, pad_id=1)


def _recipe_forward(model, batch, liger=()):
    """The recipe's own `_forward` (loss summed over targets) on a stand-in recipe."""
    stand_in = SimpleNamespace(classification=False, liger=list(liger))
    return FinetuneRecipe._forward(stand_in, model, batch, torch.device("cpu"))


def _per_example_loss(model, examples):
    """Each example run alone: the reference no mask or kernel can get wrong."""
    total = torch.zeros(())
    for example in examples:
        batch = collate_packed(pack([example], capacity=64), pad_id=1)
        total = total + _recipe_forward(model, batch)[0]
    return total


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    folder = build_tiny_llama(tmp_path_factory.mktemp("fast-llama"), vocab_size=64, hidden=32)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


@pytest.mark.slow
def test_flex_attention_varlen_loss_equals_the_masked_path_and_each_example_alone(tiny):
    """flex_attention (compiled by transformers; about 30 s on a CPU) attends each packed
    example within itself from the position ids; sdpa gets the materialised block mask. Torch
    runs flex_attention's forward on CPU (the recipe's evaluation path) but not its backward:
    gradients through it only a GPU run shows."""
    examples, batch = _packed_batch(64)
    assert len(batch["input_ids"]) < len(examples)  # rows hold several examples
    choice = choose(GPU_BARE, attention="flex_attention")
    with torch.no_grad():
        reference = _per_example_loss(tiny, examples)
        masked = _recipe_forward(tiny, batch)
        attention, note = fastpath.apply_attention(tiny, choice)
        try:
            assert (attention, note) == ("flex_attention", None)
            varlen = _recipe_forward(tiny, batch)
            # Packed examples that attended across each other would differ from the reference.
            crossing = {k: v for k, v in batch.items() if k != "position_ids"}
            crossed = _recipe_forward(tiny, crossing)[0]
        finally:
            tiny.set_attn_implementation("sdpa")
    torch.testing.assert_close(masked[0], reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(varlen[0], masked[0], rtol=1e-5, atol=1e-5)
    assert varlen[1] == masked[1] > 0
    assert not torch.allclose(crossed, reference, atol=1e-3)


def test_flash_attention_gets_packed_rows_end_to_end_with_the_same_loss(tiny):
    """transformers' flash-attention path finds packed examples (cu_seqlens) from position
    ids only in a one-row batch; a (B, L) batch of packed rows would attend across examples
    there. Flattened rows give the masked path's loss (sdpa here; flash needs a GPU)."""
    from transformers.modeling_flash_attention_utils import _is_packed_sequence

    assert choose(A100).flatten and choose(H100).flatten
    assert not choose(GPU_BARE).flatten and not choose(A100, packing=False).flatten
    examples, rows_batch = _packed_batch(64, seed=2)
    flat = collate_flattened(pack(examples, capacity=24))
    assert rows_batch["input_ids"].shape[0] > 1 and flat["input_ids"].shape[0] == 1
    assert not _is_packed_sequence(rows_batch["position_ids"], rows_batch["input_ids"].shape[0])
    assert _is_packed_sequence(flat["position_ids"], 1)
    assert int(flat["real_tokens"]) == int(rows_batch["real_tokens"]) == flat["input_ids"].numel()
    with torch.no_grad():
        flat_loss = _recipe_forward(tiny, flat)
        rows_loss = _recipe_forward(tiny, rows_batch)
    torch.testing.assert_close(flat_loss[0], rows_loss[0], rtol=1e-5, atol=1e-5)
    assert flat_loss[1] == rows_loss[1]


def test_the_model_computed_loss_route_equals_the_recipes_loss(tiny):
    """With Liger's fused linear cross-entropy the model computes the loss from labels
    (num_items_in_batch=1: summed); on CPU transformers' own loss function stands in for
    Liger's kernel, so this checks the route: shift, ignored targets and sum."""
    _, batch = _packed_batch(64, seed=1)
    with torch.no_grad():
        own = _recipe_forward(tiny, batch)
        routed = _recipe_forward(tiny, batch, liger=["fused_linear_cross_entropy"])
    torch.testing.assert_close(routed[0], own[0], rtol=1e-5, atol=1e-5)
    assert routed[1] == own[1]


def test_an_automatic_attention_the_model_refuses_stays_on_sdpa_with_a_note(tiny):
    refusing = SimpleNamespace(config=tiny.config, set_attn_implementation=_refuse)
    auto = choose(GPU_BARE)
    assert fastpath.apply_attention(refusing, auto)[1].startswith(
        "attention sdpa: flex_attention refused: this model does not support it")
    with pytest.raises(InvalidConfig, match=r"fastPath\.attention flex_attention: this model"):
        fastpath.apply_attention(refusing, choose(GPU_BARE, attention="flex_attention"))


def _refuse(name):
    raise ValueError("this model does not support it")
