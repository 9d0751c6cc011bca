"""Generator training: LoRA SFT with aux losses under TRL, DPO against the SFT reference, artefacts, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def work(generator_workdir):
    return generator_workdir


@pytest.fixture(scope="module")
def sft_trained(work, sft_config):
    from creator.modeling.soft_prompt import user_token_hook
    from training.sft import build_trainer

    run = sft_config(work)
    trainer, gen = build_trainer(run)
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # one loss through TRL's own compute_loss (fused LM head calling the backbone): the hook must fire
    # and the projector must get a gradient, or the user vector never reaches the model under TRL
    model.train()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    hook = user_token_hook(model)
    calls = hook.calls
    trainer.compute_loss(model, batch).backward()
    info = {
        "hook_calls": hook.calls - calls,
        "projector_grad": float(gen.projector.proj.weight.grad.abs().sum()),
    }
    model.zero_grad(set_to_none=True)
    trainer.train()
    gen.save_pretrained(work / "sft")
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    aux = {
        k: [h[k] for h in trainer.state.log_history if k in h]
        for k in ("aux_recon", "aux_align", "aux_match")
    }
    return {
        "gen": gen,
        "before": before,
        "after": after,
        "losses": losses,
        "aux": aux,
        "info": info,
        "trainable": {n for n, p in model.named_parameters() if p.requires_grad},
    }


def test_pre_hook_is_used_under_trl(sft_trained):
    assert sft_trained["info"]["hook_calls"] >= 1
    assert sft_trained["info"]["projector_grad"] > 0


def test_sft_changes_lora_and_heads_but_not_the_base(sft_trained):
    before, after, trainable = sft_trained["before"], sft_trained["after"], sft_trained["trainable"]
    lora = [n for n in after if "lora_B" in n]
    heads = [n for n in after if "user_projector" in n or "aux_heads" in n]
    frozen = [n for n in after if n not in trainable]
    assert lora and heads and frozen
    assert not any("embed_tokens" in n for n in trainable)
    assert all(not torch.equal(before[n], after[n]) for n in lora)
    assert all(not torch.equal(before[n], after[n]) for n in heads if "logit_scale" not in n)
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert {n for n in trainable} == set(lora) | {n for n in after if "lora_A" in n} | set(heads)


def test_sft_loss_falls_and_every_aux_loss_is_logged(sft_trained):
    losses = sft_trained["losses"]
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.05
    for name, values in sft_trained["aux"].items():
        assert len(values) == 10 and all(math.isfinite(v) for v in values), name


def test_saved_artefact_reloads_to_identical_greedy_output_in_a_fresh_process(sft_trained, work, generator_ads,
                                                                               generator_user_vectors):
    import os
    import subprocess
    import sys

    from creator.modeling.generator import SamplingConfig

    gen = sft_trained["gen"]
    ads = [generator_ads[0], generator_ads[2]]
    vecs = np.stack([generator_user_vectors["u0"], generator_user_vectors["u1"]])
    expected = gen.generate(ads, vecs, SamplingConfig(greedy=True, max_new_tokens=12))
    with torch.no_grad():
        logits = gen.model(
            input_ids=torch.tensor([gen.prompt_ids(ads[0])]), user_emb=torch.tensor(vecs[:1])
        ).logits[0, -1]
    (work / "req.json").write_text(json.dumps({"ads": [a.to_dict() for a in ads], "vecs": vecs.tolist()}))
    code = (
        "import json, sys, numpy as np\n"
        "from creator.modeling.generator import PersonalizedGenerator, SamplingConfig\n"
        "from creator.records.types import Ad\n"
        f"req = json.load(open({str(work / 'req.json')!r}))\n"
        f"gen = PersonalizedGenerator.from_pretrained({str(work / 'sft')!r})\n"
        "out = gen.generate([Ad.from_dict(a) for a in req['ads']], np.array(req['vecs'], dtype=np.float32),"
        " SamplingConfig(greedy=True, max_new_tokens=12))\n"
        "import torch\n"
        "ids = torch.tensor([gen.prompt_ids(Ad.from_dict(req['ads'][0]))])\n"
        "with torch.no_grad():\n"
        "    lg = gen.model(input_ids=ids, user_emb=torch.tensor(req['vecs'][:1])).logits[0, -1]\n"
        "print('RESULT' + json.dumps({'out': out, 'logits': lg.tolist()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ".", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert got["out"] == expected
    # greedy text can be short after 10 steps; the next-token logits pin the whole model down
    assert torch.allclose(torch.tensor(got["logits"]), logits, atol=1e-5)


def test_dpo_prefers_chosen_on_held_out_pairs_with_the_sft_model_as_reference(sft_trained, work):
    from safetensors.torch import load_file

    from training import dpo
    from training.dpo import DPORunConfig

    run = DPORunConfig(
        pairs=str(work / "pairs.parquet"),
        cot=str(work / "cot.parquet"),
        user_vectors=str(work / "vecs.npz"),
        sft=str(work / "sft"),
        out=str(work / "dpo"),
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=2e-3,
        logging_steps=1,
        save_steps=100,
        warmup_steps=0.0,
    )
    m = dpo.run(run)
    before, after = m["eval_before"], m["eval_after"]
    # before training the policy IS the reference (a copy of the SFT adapter): every reward is 0
    assert before["dpo_loss"] == pytest.approx(math.log(2), abs=1e-5) and before[
        "mean_margin"
    ] == pytest.approx(0)
    assert after["dpo_loss"] < before["dpo_loss"] - 0.01 and after["accuracy"] > 0.5
    sft_proj = load_file(str(work / "sft" / "projector.safetensors"))
    dpo_proj = load_file(str(work / "dpo" / "projector.safetensors"))
    assert all(
        torch.equal(sft_proj[k], dpo_proj[k]) for k in sft_proj
    )  # frozen: shared by policy and reference
    sft_lora = load_file(str(work / "sft" / "adapter" / "adapter_model.safetensors"))
    dpo_lora = load_file(str(work / "dpo" / "adapter" / "adapter_model.safetensors"))
    assert sorted(sft_lora) == sorted(dpo_lora)  # only the policy adapter is saved, not TRL's "ref" copy
    assert any(not torch.equal(sft_lora[k], dpo_lora[k]) for k in sft_lora)


def test_sft_resumes_from_its_checkpoint_with_the_projector(work, sft_config):
    """2 steps, stop, resume to 3 == 3 steps in one go (dropout 0, same seed): only true if the resumed
    run restored the projector (PEFT checkpoints hold LoRA only) as well as the adapter and optimizer."""
    from safetensors.torch import load_file

    from training import sft
    from training.artefacts import HEADS_FILE

    plain = dict(
        recon_weight=0, align_weight=0, match_weight=0, eval_split=None, per_device_train_batch_size=4,
        lr_scheduler_type="constant",
    )  # the cosine schedule depends on max_steps, which differs here
    sft.run(sft_config(work, out=str(work / "straight"), max_steps=3, save_steps=100, **plain))
    first = sft.run(sft_config(work, out=str(work / "resumed"), max_steps=2, save_steps=2, **plain))
    assert first["steps"] == 2 and (work / "resumed" / "checkpoints" / "checkpoint-2" / HEADS_FILE).exists()
    second = sft.run(sft_config(work, out=str(work / "resumed"), max_steps=3, save_steps=100, **plain))
    assert second["steps"] == 3 and second["resumed_from"].endswith("checkpoint-2")
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(work / "straight" / name)), load_file(str(work / "resumed" / name))
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name
