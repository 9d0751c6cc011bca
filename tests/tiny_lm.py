"""A tiny random Llama and a word-level tokenizer trained in-process, for backend and pipeline tests.

Nothing is downloaded: the vocabulary comes from a few hundred office-product words below.
``prompt_embeds`` mimics the generator: ``embed_tokens(ids)`` with soft user vectors in front.
"""

from __future__ import annotations

import torch

WORDS = ("pen pens black blue red gel ink pack count sheets paper notebook stapler desk office school "
         "bright bold smooth fast dry refill sticky notes tape folder binder marker highlighter pencil "
         "eraser ruler clip clips for teachers students artists planners busy home work and with the a "
         "of to in on your best new classic premium value quality durable easy everyday").split()
SPECIALS = ["[PAD]", "[UNK]", "[EOS]", "<u0>", "<u1>"]


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + sorted(set(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   eos_token="[EOS]")


def build_model(tokenizer, seed: int = 0, hidden: int = 32, heads: int = 4, kv_heads: int = 2):
    """hidden 32 / 4 heads for CPU tests; vLLM's CPU attention needs head_dim >= 32 (e.g. 128 / 2 heads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=128,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    # Random init barely ever picks [EOS]; lift its bias-free logit a little so some texts stop early.
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= 3.0
    return model


def prompt_embeds(model, tokenizer, text: str, user_vec: torch.Tensor | None = None) -> torch.Tensor:
    """``(T, H)``: soft user vectors (``(k, H)``) followed by ``embed_tokens`` of the prompt."""
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids)
    return embeds if user_vec is None else torch.cat([user_vec.to(embeds.dtype), embeds], dim=0)


def build_gemma3(tokenizer, seed: int = 0, hidden: int = 128, heads: int = 2, kv_heads: int = 1):
    """A tiny random Gemma 3 (text) with Gemma's own quirks: embeddings scaled by sqrt(hidden), tied LM head,
    sliding and full attention layers, query_pre_attn_scalar; head_dim 64 for vLLM's CPU attention."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    head_dim = hidden // heads
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                              num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=kv_heads,
                              head_dim=head_dim, query_pre_attn_scalar=head_dim, sliding_window=16,
                              layer_types=["sliding_attention", "full_attention"], max_position_embeddings=128,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                              bos_token_id=None, tie_word_embeddings=True)
    return Gemma3ForCausalLM(config).eval()
