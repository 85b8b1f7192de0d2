"""config.json values of published models (written by hand) and their parameter counts.

`expected` is the figure published for the model (model card or `num_parameters()` of the
released checkpoint); the tests also compare each with a meta-device transformers build.
"""

from __future__ import annotations

REAL_MODELS: dict[str, dict] = {
    "meta-llama/Meta-Llama-3-8B": {
        "task": "causal-lm",
        "expected": 8_030_261_248,
        "config": {
            "model_type": "llama", "architectures": ["LlamaForCausalLM"],
            "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
            "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
            "hidden_act": "silu", "attention_bias": False, "tie_word_embeddings": False,
            "bos_token_id": 128000, "eos_token_id": 128001, "torch_dtype": "bfloat16",
        },
    },
    "mistralai/Mistral-7B-v0.1": {
        "task": "causal-lm",
        "expected": 7_241_732_096,
        "config": {
            "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 32000, "max_position_embeddings": 32768, "sliding_window": 4096,
            "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
            "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
        },
    },
    "mistralai/Mixtral-8x7B-v0.1": {
        "task": "causal-lm",
        "expected": 46_702_792_704,
        "config": {
            "model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, "rope_theta": 1e6,
            "tie_word_embeddings": False,
        },
    },
    "Qwen/Qwen2.5-0.5B": {
        "task": "causal-lm",
        "expected": 494_032_768,
        "config": {
            "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
            "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "tie_word_embeddings": True, "use_sliding_window": False,
        },
    },
    "Qwen/Qwen3-0.6B": {
        "task": "causal-lm",
        "expected": 596_049_920,
        "config": {
            "model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
            "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960,
            "attention_bias": False, "tie_word_embeddings": True, "rms_norm_eps": 1e-06,
        },
    },
    "google/gemma-2b": {
        "task": "causal-lm",
        "expected": 2_506_172_416,
        "config": {
            "model_type": "gemma", "hidden_size": 2048, "intermediate_size": 16384,
            "num_hidden_layers": 18, "num_attention_heads": 8, "num_key_value_heads": 1,
            "head_dim": 256, "vocab_size": 256000, "max_position_embeddings": 8192,
            "hidden_act": "gelu", "pad_token_id": 0,
        },
    },
    "google/gemma-3-1b-pt": {
        "task": "causal-lm",
        "expected": 999_885_952,
        "config": {
            "model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912,
            "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
            "head_dim": 256, "vocab_size": 262144, "max_position_embeddings": 32768,
            "sliding_window": 512, "pad_token_id": 0,
        },
    },
    "microsoft/Phi-3-mini-4k-instruct": {
        "task": "causal-lm",
        "expected": 3_821_079_552,
        "config": {
            "model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
            "vocab_size": 32064, "max_position_embeddings": 4096, "pad_token_id": 32000,
            "tie_word_embeddings": False,
        },
    },
    "openai-community/gpt2": {
        "task": "causal-lm",
        "expected": 124_439_808,
        "config": {
            "model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_ctx": 1024,
            "n_positions": 1024, "vocab_size": 50257, "activation_function": "gelu_new",
        },
    },
    "EleutherAI/pythia-160m": {
        "task": "causal-lm",
        "expected": 162_322_944,
        "config": {
            "model_type": "gpt_neox", "hidden_size": 768, "intermediate_size": 3072,
            "num_hidden_layers": 12, "num_attention_heads": 12, "vocab_size": 50304,
            "max_position_embeddings": 2048, "rotary_pct": 0.25, "use_parallel_residual": True,
            "tie_word_embeddings": False,
        },
    },
    "tiiuae/falcon-7b": {
        "task": "causal-lm",
        "expected": 6_921_720_704,
        "config": {
            "model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71,
            "num_hidden_layers": 32, "vocab_size": 65024, "multi_query": True,
            "parallel_attn": True, "new_decoder_architecture": False, "bias": False,
            "alibi": False,
        },
    },
    "google-bert/bert-base-uncased": {
        "task": "base",
        "expected": 109_482_240,
        "config": {
            "model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522,
            "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        },
    },
    "FacebookAI/roberta-base": {
        "task": "base",
        "expected": 124_645_632,
        "config": {
            "model_type": "roberta", "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 50265,
            "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1,
        },
    },
    "sentence-transformers/all-MiniLM-L6-v2": {
        "task": "base",
        "expected": 22_713_216,
        "config": {
            "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536, "vocab_size": 30522,
            "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        },
    },
}  # fmt: skip
