"""Generator: soft user tokens, LoRA SFT with aux losses, DPO, artefacts (tiny models, synthetic data)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from creator.io.hllm import write_hllm_parquet
from creator.io.records import write_records

D_USER = 8
INTERESTS = ["students", "offices", "artists"]
ADS = [
    ("a1", "Gel Pens, 12 Colors", "Smooth ink that dries fast. Pack of 12 pens in bright colors."),
    ("a2", "Heavy Duty Stapler, 20 Sheets", "Staples up to 20 sheets. Metal body built to last."),
    ("a3", "Sticky Notes, 3 x 3 in, 24 Pads", "24 pads of sticky notes. Strong adhesive, easy to peel."),
    ("a4", "Spiral Notebook, 100 Pages", "College ruled notebook with 100 pages and a sturdy cover."),
]


def _cot_rows(n_users: int = 12) -> list[dict]:
    rows = []
    for u in range(n_users):
        interest = INTERESTS[u % 3]
        split = "validation" if u >= n_users - 2 else "train"
        for ad_id, title, desc in ADS:
            rows.append(
                {
                    "user_id": f"u{u}",
                    "ad_id": ad_id,
                    "split": split,
                    "user_profile": json.dumps({"Long-term Interest": interest}),
                    "profile": json.dumps(
                        {"Long-term Interest": interest, "Preference": f"likes {interest} things"}
                    ),
                    "original_title": title,
                    "original_description": desc,
                    "prompt1": "",
                    "prompt2": "",
                    "response": f"{title} for {interest.capitalize()}",
                    "title_list": [f"{interest} item {i}" for i in range(3)],
                    "item_id_list": [f"h{i}" for i in range(3)],
                    "suitable_user_info": interest,
                    "selling_points_used": [],
                    "verdict": "{}",
                    "teacher": "fake",
                }
            )
    return rows


def _user_vectors(n_users: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, D_USER))
    out = {}
    for u in range(n_users):
        v = centers[u % 3] + 0.05 * rng.normal(size=D_USER)
        out[f"u{u}"] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


def _pair_rows(cot_rows: list[dict]) -> list[dict]:
    """chosen = the teacher's title; rejected = the same title with an invented count (a fact error)."""
    out = []
    for r in cot_rows:
        out.append(
            {
                "user_id": r["user_id"],
                "ad_id": r["ad_id"],
                "split": r["split"],
                "prompt1": "",
                "prompt2": "",
                "original_title": r["original_title"],
                "chosen": r["response"],
                "rejected": r["response"].replace(",", ", 99 Pack,", 1) + " Best Seller",
                "chosen_score": 1.0,
                "rejected_score": 0.0,
            }
        )
    return out


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run ~10x faster on one thread than on two when the machine is shared: the per-op
    thread hand-off dominates such small matmuls (measured, see docs/generator.md)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------------------
# fixtures: synthetic CoT data of the CONTRACTS.md schema, vectors keyed by user id, an untrained tiny base
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from creator.modeling.builders import build_tiny_lm, train_tokenizer

    d = tmp_path_factory.mktemp("gen")
    rows = _cot_rows()
    write_hllm_parquet(rows, d / "cot.parquet")
    write_records(_pair_rows(rows), d / "pairs.parquet")
    vecs = _user_vectors()
    np.savez(d / "vecs.npz", user_ids=np.array(list(vecs)), vectors=np.stack(list(vecs.values())))
    corpus = (
        [r["response"] for r in rows]
        + [r["original_description"] for r in rows]
        + [r["profile"] for r in rows]
    )
    tok = train_tokenizer(corpus * 3, vocab_size=400)
    model = build_tiny_lm(tok, "test")
    model.save_pretrained(d / "base")
    tok.save_pretrained(d / "base")
    return d


def _sft_run(work, **kw):
    from training.sft import SFTRunConfig

    opts = dict(
        cot=str(work / "cot.parquet"),
        user_vectors=str(work / "vecs.npz"),
        base=str(work / "base"),
        out=str(work / "sft"),
        max_steps=10,
        batch_size=8,
        learning_rate=3e-3,
        logging_steps=1,
        save_steps=5,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        recon_weight=0.2,
        align_weight=0.1,
        match_weight=0.1,
        max_profile_tokens=32,
        warmup_ratio=0.0,
    )
    opts.update(kw)
    return SFTRunConfig(**opts)


def _tiny_generator(d_user: int = D_USER, k: int = 2):
    from creator.modeling.builders import build_tiny_lm, train_tokenizer
    from creator.modeling.generator import GeneratorConfig, PersonalizedGenerator
    from creator.modeling.soft_prompt import UserProjector

    tok = train_tokenizer([r["response"] for r in _cot_rows(3)] * 20, vocab_size=320)
    model = build_tiny_lm(tok, "test")
    torch.manual_seed(1)
    projector = UserProjector(d_user, model.config.hidden_size, k, init_std=0.05)
    return PersonalizedGenerator(model, tok, projector, GeneratorConfig(d_user=d_user, num_user_tokens=k))


def _ad(i: int = 0):
    from creator.io.catalog import build_ad

    ad_id, title, desc = ADS[i]
    return build_ad(ad_id, title, [desc])


# ---------------------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------------------


def test_sft_collator_tensors_spelled_out():
    from training.collators import UserPreferenceCollator, UserSFTCollator

    examples = [
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "user_emb": [1.0, 2.0]},
        {"input_ids": [5, 8], "labels": [-100, 8], "user_emb": [3.0, 4.0]},
    ]
    batch = UserSFTCollator(pad_token_id=0)(examples)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, 8, -100]]
    assert batch["user_emb"].tolist() == [[1.0, 2.0], [3.0, 4.0]] and batch["user_emb"].dtype == torch.float32

    pref = UserPreferenceCollator(pad_token_id=0)(
        [
            {"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5], "user_emb": [0.5]},
            {"prompt_ids": [6], "chosen_ids": [7, 8], "rejected_ids": [9], "user_emb": [-1.0]},
        ]
    )
    # rows = [chosen0, chosen1, rejected0, rejected1]; each user's vector serves both of its titles
    assert pref["input_ids"].tolist() == [[1, 2, 3, 0], [6, 7, 8, 0], [1, 2, 4, 5], [6, 9, 0, 0]]
    assert pref["completion_mask"].tolist() == [[0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1], [0, 1, 0, 0]]
    assert pref["user_emb"].tolist() == [[0.5], [-1.0], [0.5], [-1.0]]


def test_dpo_loss_matches_hand_computation():
    """beta = 0.5.
    row 0: r_c = 0.5 * (-1 - -2) = 0.5, r_r = 0.5 * (-3 - -2) = -0.5, margin 1.0 -> log(1 + e^-1) = 0.3132617
    row 1: r_c = 0.5 * (-2 - -2) = 0.0, r_r = 0.5 * (-1 - -2) = 0.5, margin -0.5 -> log(1 + e^0.5) = 0.9740770
    mean = 0.6436694.
    """
    from training.losses import dpo_loss

    loss, rc, rr = dpo_loss(
        torch.tensor([-1.0, -2.0]),
        torch.tensor([-3.0, -1.0]),
        torch.tensor([-2.0, -2.0]),
        torch.tensor([-2.0, -2.0]),
        beta=0.5,
    )
    assert loss.item() == pytest.approx(0.6436694, abs=1e-6)
    assert rc.tolist() == [0.5, 0.0] and rr.tolist() == [-0.5, 0.5]
    assert math.log1p(math.exp(-1)) == pytest.approx(0.3132617, abs=1e-6)


def test_sequence_logps_and_info_nce_hand_values():
    """sequence_logps: V=2, logits (0, 0) at every step -> each label costs log(1/2); with labels
    [-100, 1, 0] the two scored tokens give 2 * log(0.5) = -1.3862944.
    symmetric_info_nce with a = b = I (2x2) and scale 1: logits = I, each row's CE = log(1 + e^-1)
    = 0.3132617, both directions equal -> 0.3132617."""
    from training.losses import sequence_logps, symmetric_info_nce

    lp = sequence_logps(torch.zeros(1, 3, 2), torch.tensor([[-100, 1, 0]]))
    assert lp.item() == pytest.approx(2 * math.log(0.5), abs=1e-6)
    eye = torch.eye(2)
    assert symmetric_info_nce(eye, eye, torch.tensor(0.0)).item() == pytest.approx(0.3132617, abs=1e-6)
    # the same group twice: the off-diagonal is no negative, so CE is 0
    assert symmetric_info_nce(eye, eye, torch.tensor(0.0), torch.tensor([3, 3])).item() == pytest.approx(0.0)


def test_different_user_vectors_give_different_next_token_logits():
    gen = _tiny_generator()
    ids = torch.tensor([gen.prompt_ids(_ad())])
    u = torch.tensor(np.stack(list(_user_vectors(2).values())))
    with torch.no_grad():
        la = gen.model(input_ids=ids, user_emb=u[:1]).logits[0, -1]
        lb = gen.model(input_ids=ids, user_emb=u[1:]).logits[0, -1]
        la2 = gen.model(input_ids=ids, user_emb=u[:1]).logits[0, -1]
    assert (la - lb).abs().max() > 1e-3
    assert torch.equal(la, la2)
    # build_prompt_embeds (the vLLM path) is exactly the training path
    emb = gen.prompt_embeds(_ad(), u[0].numpy())
    with torch.no_grad():
        lc = gen.model(inputs_embeds=emb[None]).logits[0, -1]
    assert torch.allclose(la, lc, atol=1e-5)


def test_placeholders_are_enforced():
    gen = _tiny_generator()
    ids = torch.tensor([gen.prompt_ids(_ad())])
    with pytest.raises(ValueError, match="no user_emb"):
        gen.model(input_ids=ids)
    dup = torch.cat([ids, ids[:, :]], dim=1)
    with pytest.raises(ValueError, match="exactly once"):
        gen.model(input_ids=dup, user_emb=torch.zeros(1, D_USER))
    with pytest.raises(ValueError, match="shape"):
        gen.model(input_ids=ids, user_emb=torch.zeros(1, D_USER + 1))


def test_prompt_too_long_is_a_data_error():
    from creator.errors import DataError
    from training.collators import sft_example

    gen = _tiny_generator()
    with pytest.raises(DataError, match="max_length"):
        sft_example(gen, _ad(), "A title", np.zeros(D_USER), max_length=10)


def test_user_vector_files(tmp_path):
    from creator.errors import DataError
    from creator.modeling.user_vectors import load_user_vectors, read_vector_file
    from creator.types import User

    vecs = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_records(
        [{"user_id": f"u{i}", "vector": vecs[i].tolist()} for i in range(3)], tmp_path / "v.parquet"
    )
    np.save(tmp_path / "v.npy", vecs)
    (tmp_path / "v.ids.txt").write_text("u0\nu1\nu2\n")
    for name in ("v.parquet", "v.npy"):
        table = read_vector_file(tmp_path / name)
        assert table["u2"].tolist() == [4.0, 5.0]
    with pytest.raises(DataError, match="no vector"):
        load_user_vectors(tmp_path / "v.parquet", [User("u0"), User("u9")])


def test_every_shipped_config_parses():
    from pathlib import Path

    from training.dpo import DPORunConfig
    from training.pretrain_lm import PretrainConfig
    from training.run_config import load_config
    from training.sft import SFTRunConfig

    configs = sorted(Path("training/configs").glob("*.yaml"))
    kinds = {"sft": SFTRunConfig, "dpo": DPORunConfig, "pretrain": PretrainConfig}
    checked = 0
    for path in configs:
        prefix = path.name.split("_")[0]
        if prefix in kinds:
            load_config(kinds[prefix], path)
            checked += 1
    assert checked >= 5
    with pytest.raises(ValueError, match="vLLM"):
        SFTRunConfig(lora_targets=["q_proj", "embed_tokens"])


# ---------------------------------------------------------------------------------------------------------
# training (one small SFT run shared by the tests below; each test asserts one behaviour of it)
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sft_trained(work):
    from creator.modeling.soft_prompt import user_token_hook
    from training.sft import build_trainer

    run = _sft_run(work)
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


def test_saved_artefact_reloads_to_identical_greedy_output_in_a_fresh_process(sft_trained, work):
    import os
    import subprocess
    import sys

    from creator.modeling.generator import SamplingConfig

    gen = sft_trained["gen"]
    ads = [_ad(0), _ad(2)]
    vecs = np.stack([_user_vectors()["u0"], _user_vectors()["u1"]])
    expected = gen.generate(ads, vecs, SamplingConfig(greedy=True, max_new_tokens=12))
    with torch.no_grad():
        logits = gen.model(
            input_ids=torch.tensor([gen.prompt_ids(ads[0])]), user_emb=torch.tensor(vecs[:1])
        ).logits[0, -1]
    (work / "req.json").write_text(json.dumps({"ads": [a.to_dict() for a in ads], "vecs": vecs.tolist()}))
    code = (
        "import json, sys, numpy as np\n"
        "from creator.modeling.generator import PersonalizedGenerator, SamplingConfig\n"
        "from creator.types import Ad\n"
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

    from training.dpo import DPORunConfig, run_dpo

    run = DPORunConfig(
        pairs=str(work / "pairs.parquet"),
        cot=str(work / "cot.parquet"),
        user_vectors=str(work / "vecs.npz"),
        sft=str(work / "sft"),
        out=str(work / "dpo"),
        max_steps=6,
        batch_size=8,
        learning_rate=2e-3,
        logging_steps=1,
        save_steps=100,
        warmup_ratio=0.0,
    )
    m = run_dpo(run)
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


def test_sft_resumes_from_its_checkpoint_with_the_projector(work):
    """2 steps, stop, resume to 3 == 3 steps in one go (dropout 0, same seed): only true if the resumed
    run restored the projector (PEFT checkpoints hold LoRA only) as well as the adapter and optimizer."""
    from safetensors.torch import load_file

    from training.artefacts import HEADS_FILE
    from training.sft import run_sft

    plain = dict(
        recon_weight=0, align_weight=0, match_weight=0, eval_split=None, batch_size=4, lr_scheduler="constant"
    )  # the cosine schedule depends on max_steps, which differs here
    run_sft(_sft_run(work, out=str(work / "straight"), max_steps=3, save_steps=100, **plain))
    first = run_sft(_sft_run(work, out=str(work / "resumed"), max_steps=2, save_steps=2, **plain))
    assert first["steps"] == 2 and (work / "resumed" / "checkpoints" / "checkpoint-2" / HEADS_FILE).exists()
    second = run_sft(_sft_run(work, out=str(work / "resumed"), max_steps=3, save_steps=100, **plain))
    assert second["steps"] == 3 and second["resumed_from"].endswith("checkpoint-2")
    for name in ("projector.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(work / "straight" / name)), load_file(str(work / "resumed" / name))
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


def test_pretrain_lm_from_scratch_on_catalog_texts(tmp_path):
    from creator.modeling.builders import load_base, placeholder_ids
    from training.pretrain_lm import PretrainConfig, run_pretrain

    ads = [
        {"ad_id": f"a{i}", "title": f"{t} {i}", "description": f"{d} Item number {i}."}
        for i in range(30)
        for (_, t, d) in ADS[i % 4 : i % 4 + 1]
    ]
    write_records(ads, tmp_path / "ads.jsonl")
    m = run_pretrain(
        PretrainConfig(
            catalog=str(tmp_path / "ads.jsonl"),
            catalog_format="jsonl",
            out=str(tmp_path / "lm"),
            preset="test",
            vocab_size=320,
            block_size=32,
            max_steps=12,
            batch_size=8,
            learning_rate=3e-3,
            logging_steps=1,
            eval_fraction=0.1,
            warmup_ratio=0.0,
        )
    )
    losses = (
        [h["loss"] for h in json.loads((tmp_path / "lm" / "metrics.json").read_text())["log_history"]]
        if "log_history" in m
        else None
    )
    assert m["steps"] == 12 and m["last_logged_loss"] < m["first_logged_loss"] - 0.5, losses
    model, tok = load_base(str(tmp_path / "lm"))
    assert (
        len(placeholder_ids(tok, 4)) == 4
        and model.config.hidden_size // model.config.num_attention_heads == 64
    )
