"""Build or load the generator's tokenizer and base causal LM.

Two ways in:
- offline: ``train_tokenizer(corpus)`` (byte-level BPE trained here, with the user placeholders
  ``<u0>..<u{k-1}>`` as special tokens and a small chat template) and ``build_tiny_lm(tok, "tiny")``
  (a Llama-architecture model with head_dim 64 so vLLM can serve it), pretrained from scratch by
  ``hllm-creator pretrain-lm``;
- any HF causal LM: ``load_base(name_or_path)`` plus ``add_placeholders(tok, k)``.

    >>> tok = train_tokenizer(["Gel pens, 12 colors", "Stapler, 20 sheets"] * 50, vocab_size=300)
    >>> model = build_tiny_lm(tok, "test")
    >>> placeholder_ids(tok, 4) == tok.convert_tokens_to_ids(["<u0>", "<u1>", "<u2>", "<u3>"])
    True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
MAX_PLACEHOLDERS = (
    16  # placeholders reserved in a locally trained tokenizer; k may be chosen later up to this
)
# role: content turns. The generation prompt ends with a newline, not a space: byte-level BPE glues a
# space to the next word, so "assistant: " + "Gel" would tokenize differently alone and joined (TRL's
# DPO tokenizes prompt+completion jointly, our SFT separately); a newline never merges with a letter.
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant:\n{% endif %}"
)


def placeholder_tokens(k: int) -> list[str]:
    """The k placeholder token strings ``<u0>..<u{k-1}>``."""
    if k < 1:
        raise ValueError(
            f"the number of user tokens k must be >= 1, got {k}; set num_user_tokens to 1 or more"
        )
    return [f"<u{i}>" for i in range(k)]


def placeholder_ids(tokenizer: Any, k: int) -> list[int]:
    """Token ids of ``<u0>..<u{k-1}>``; raises with the fix when the tokenizer lacks them."""
    toks = placeholder_tokens(k)
    ids = tokenizer.convert_tokens_to_ids(toks)
    unk = tokenizer.unk_token_id
    missing = [t for t, i in zip(toks, ids, strict=True) if i is None or (unk is not None and i == unk)]
    if missing:
        raise ValueError(
            f"tokenizer has no user placeholder tokens {missing}; call add_placeholders(tokenizer, {k}) "
            "or train the tokenizer with train_tokenizer(..., num_placeholders>=k)"
        )
    return list(ids)


def train_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = 4096,
    *,
    num_placeholders: int = MAX_PLACEHOLDERS,
    min_frequency: int = 2,
) -> Any:
    """Byte-level BPE trained on ``corpus`` -> ``PreTrainedTokenizerFast`` with pad/bos/eos/unk, the user
    placeholders as additional special tokens and ``CHAT_TEMPLATE``. Byte-level: no text is ever <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = [PAD, BOS, EOS, UNK] + placeholder_tokens(num_placeholders)
    if vocab_size < len(special) + 256 + 1:
        raise ValueError(
            f"vocab_size {vocab_size} is too small: it must exceed the 256 byte symbols plus "
            f"{len(special)} special tokens; use 300 or more (4096 for real catalogs)"
        )
    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator((t for t in corpus if t), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=special[4:],
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "right"
    logger.info("trained a byte-level BPE tokenizer: %d tokens", len(tok))
    return tok


def add_placeholders(tokenizer: Any, k: int) -> list[int]:
    """Add ``<u0>..<u{k-1}>`` as special tokens to a pretrained tokenizer (no-op when present); their ids.

    The rows of the embedding matrix for these tokens are never read: the soft tokens overwrite them
    (see ``creator.modeling.soft_prompt``). Resize the model with ``ensure_vocab`` afterwards."""
    toks = placeholder_tokens(k)
    have = set(tokenizer.get_vocab())
    new = [t for t in toks if t not in have]
    if new:
        tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return placeholder_ids(tokenizer, k)


def ensure_vocab(model: Any, tokenizer: Any) -> None:
    """Grow the embedding matrix when the tokenizer has more ids than the model has rows (e.g. after
    ``add_placeholders`` on a model without spare rows); Qwen-style padded vocabularies need nothing."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        import torch

        logger.info("resizing token embeddings %d -> %d for the user placeholders", rows, len(tokenizer))
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        # The new rows are never read as inputs (the soft tokens overwrite them), but a tied or grown LM head
        # scores them: zeros make those logits the same at training and at every later load (a random init
        # would differ between the run that trained and the process that serves).
        with torch.no_grad():
            model.get_input_embeddings().weight[rows:] = 0
            head = model.get_output_embeddings()
            if head is not None and head.weight.shape[0] > rows:
                head.weight[rows:] = 0


@dataclass(frozen=True)
class LMPreset:
    """Shape of a from-scratch Llama-architecture LM. ``head_dim = hidden / heads`` is 64 for vLLM."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_positions: int


PRESETS: dict[str, LMPreset] = {
    # offline default: ~3.7M parameters with a 4k vocabulary; trains on 2 CPU cores in minutes
    "tiny": LMPreset(hidden=256, layers=4, heads=4, kv_heads=2, intermediate=704, max_positions=512),
    # the offline default of the demo and the configs: ~1M parameters, about 3x the tokens/s of "tiny" on a
    # CPU core; the generator's task is mostly copying from the prompt, which needs depth, not width
    "micro": LMPreset(hidden=128, layers=4, heads=2, kv_heads=1, intermediate=384, max_positions=512),
    # unit tests: smallest shape that keeps head_dim 64
    "test": LMPreset(hidden=128, layers=2, heads=2, kv_heads=1, intermediate=256, max_positions=256),
}


def build_tiny_lm(tokenizer: Any, preset: str = "tiny", *, arch: str = "llama", seed: int = 0) -> Any:
    """A randomly initialised causal LM of ``PRESETS[preset]`` sized to ``tokenizer`` (llama, qwen2 or gemma3)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if preset not in PRESETS:
        raise ValueError(
            f"unknown LM preset {preset!r}; use one of {sorted(PRESETS)} or load_base(<HF id or dir>)"
        )
    p = PRESETS[preset]
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=p.hidden,
        intermediate_size=p.intermediate,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        max_position_embeddings=p.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    elif arch == "gemma3":
        # Gemma 3's own quirks at test size: scaled embeddings (x sqrt(hidden)), sliding + full attention
        # layers, query scaling by query_pre_attn_scalar, logit soft-capping off as in the 270M model
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        head_dim = p.hidden // p.heads
        model = Gemma3ForCausalLM(Gemma3TextConfig(
            **common, head_dim=head_dim, query_pre_attn_scalar=head_dim, sliding_window=64,
            layer_types=["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(p.layers)]))
    else:
        raise ValueError(f"unknown arch {arch!r}; use 'llama', 'qwen2' or 'gemma3'")
    n = sum(p.numel() for p in model.parameters())
    logger.info("built a %s %s LM with %.2fM parameters", preset, arch, n / 1e6)
    return model


def load_base(
    name_or_path: str, *, dtype: str = "float32", local_files_only: bool | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) for any HF causal LM id or folder, or a named base (``gemma-270m``, see
    ``creator.modeling.bases``). ``dtype`` float32|bfloat16|float16|auto.

    Nothing is downloaded when ``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``): an id whose weights
    are not in the local cache then fails with the hub's own message."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype, None)
    if torch_dtype is None:
        raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
    from creator.modeling.bases import resolve_base

    name_or_path = resolve_base(name_or_path)  # a named base (gemma-270m) -> its converted folder
    kw: dict[str, Any] = {} if local_files_only is None else {"local_files_only": local_files_only}
    tok = AutoTokenizer.from_pretrained(name_or_path, **kw)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype, **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok
