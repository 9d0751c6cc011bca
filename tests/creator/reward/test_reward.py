"""The reward model: training on a synthetic shop, save/load in a fresh process, text sensitivity, gaming."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from creator.config import load
from creator.records.types import Ad, User
from creator.reward.cooccurrence import N_COLLAB_FEATURES
from creator.reward.metrics import auc
from creator.reward.model import RewardConfig, RewardModel, RewardNet
from eval.judge import GuardedJudge, compare
from training.reward.config import RewardTrainConfig
from training.reward.train import train

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def run(tmp_path_factory, minilm, reward_config, reward_shop):
    root = tmp_path_factory.mktemp("reward")
    data = reward_shop(impressions=True)
    cfg = reward_config(data, root / "out")
    metrics = train(cfg, encoder=minilm)
    model = RewardModel.from_pretrained(root / "out" / "reward_model", encoder=minilm)
    return {"root": root, "data": data, "metrics": metrics, "model": model, "out": root / "out"}


def test_training_learns_and_writes_the_artefacts(run):
    out, metrics = run["out"], run["metrics"]
    for name in (
        "metrics.json",
        "resolved_config.yaml",
        "README.md",
        "train_log.jsonl",
        "reward_model/config.json",
    ):
        assert (out / name).exists(), name
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    # the co-occurrence counts saved with the model are the training users' only
    assert run["model"].cooccurrence.n_users == metrics["users"]["train"]
    res = metrics["results"]["sampled_uniform"]
    # users' topics are readable from the titles: the trained model beats the popularity prior (chance
    # here, every product is equally common) by far and the zero-shot cosine (about 0.84 in this shop)
    assert res["reward"]["auc"] > 0.85
    assert res["reward"]["auc"] > res["popularity"]["auc"] + 0.2
    assert res["reward"]["auc"] > res["cosine"]["auc"] + 0.02
    assert "impressions" in metrics["results"]  # real labels are evaluated as their own set
    rw = metrics["rewrites"]  # the same uniform test rows with rule-based rewrites of the titles
    assert rw["rows_rewritten"] > 0.5 and rw["auc_own_titles"] == pytest.approx(res["reward"]["auc"])
    assert 0 <= rw["positives_rewrite_above_own"] <= 1 and rw["auc_rewritten_titles"] > 0.5
    seg = metrics["segments"]  # each split covers every uniform test request (1 positive + 4 negatives) once
    for split in seg.values():
        assert sum(m["requests"] for m in split.values()) * 5 == res["reward"]["n"]
        assert sum(m["share"] for m in split.values()) == pytest.approx(1.0)
    scores = np.load(out / "test_scores.npz")  # the uniform test rows, one score each: judges compare paired
    assert len(scores["logit"]) == len(scores["label"]) == len(scores["group"]) == res["reward"]["n"]
    assert auc(scores["label"], scores["logit"]) == pytest.approx(res["reward"]["auc"])
    card = (out / "README.md").read_text()
    assert "## Held-out metrics" in card and "## Where the AUC is won and lost" in card


def test_planted_better_title_wins_for_the_user_it_speaks_to(run, fountain_user, shipper, notebook):
    rm = run["model"]
    better = "Spiral Notebook for Fountain Pen Ink, 100 Sheets, College Ruled"
    p = rm.score([fountain_user] * 2, [better, notebook.title], [notebook] * 2)
    assert p[0] > p[1]  # same ad, same user: the title's own text moves the score
    q = rm.score([shipper] * 2, [better, notebook.title], [notebook] * 2)
    assert (p[0] - p[1]) > (q[0] - q[1])  # and it moves it for the user it speaks to


def test_planted_users_prefer_the_title_built_from_their_favoured_selling_point(run):
    """One ad, two selling points, each speaking to one topic; the shop's users whose whole history is one of
    those topics. The judge must rank the title built from the user's favoured point above the title built from
    the other point for most of each group: the judge the generator's DPO pairs and reranker rely on."""
    from creator.io import load_catalog
    from creator.records.types import Ad
    from tests.worlds.reward_shop import TOPICS

    ad = Ad("org", "Desk Organizer with 4 Drawers", description="A desk organizer with four drawers.",
            selling_points=["holds fountain pens and ink bottles upright",
                            "keeps calculators and paper rolls in reach"])
    titles = {"fountain pens": "Desk Organizer with 4 Drawers: holds fountain pens and ink bottles upright",
              "calculators": "Desk Organizer with 4 Drawers: keeps calculators and paper rolls in reach"}
    users = load_catalog(run["data"], "jsonl").users.values()
    groups = {topic: [u for u in users if {h.title for h in u.history} <= set(TOPICS[topic])] for topic in titles}
    assert all(len(g) >= 10 for g in groups.values()), {t: len(g) for t, g in groups.items()}
    for topic, group in groups.items():
        other = next(t for t in titles if t != topic)
        favoured = run["model"].score(group, [titles[topic]] * len(group), [ad] * len(group))
        disfavoured = run["model"].score(group, [titles[other]] * len(group), [ad] * len(group))
        wins = int((favoured > disfavoured).sum())
        assert wins >= 0.9 * len(group), f"{topic}: favoured point won for {wins} of {len(group)} users"


def test_fast_training_path_matches_score(run, minilm):
    from creator.io import load_catalog
    from training.reward.data import ClickRows, collab_rows
    from training.reward.evaluate import RowTensors

    rm = run["model"]
    cat = load_catalog(run["data"], "jsonl")
    ads = [cat.ads[a] for a in sorted(cat.ads)]
    users = [cat.users["u3"], cat.users["u7"], User("empty", [])]
    rows = ClickRows(prefixes=users, prefix=[0, 1, 2], cand=[0, 5, 9], label=[1.0, 0.0, 0.0], group=[0, 1, 2])
    texts = sorted({a.title for a in ads} | {h.title for u in users for h in u.history})
    index = {t: i for i, t in enumerate(texts)}
    table = torch.from_numpy(minilm.encode(texts))
    collab = collab_rows(rm.cooccurrence, rows, [a.ad_id for a in ads], {}, rm.config.max_history)
    assert collab[:, -1].all()  # every shop ad was taken by some training user
    rt = RowTensors(rows, table, index, ads, rm.config, np.array([index[a.title] for a in ads]), None, None, collab)
    fast = rt.logits(rm.net)
    slow = rm.logits(users, [ads[c].title for c in rows.cand], [ads[c] for c in rows.cand])
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    assert np.isfinite(slow[2])  # an empty history is defined
    # the ad's identity reaches the score through the co-occurrence features: unknown ad, other score
    cold = rm.logits(users, [ads[c].title for c in rows.cand])
    assert not np.allclose(cold, slow)


def test_saved_model_scores_the_same_in_a_fresh_process(run, tmp_path, fountain_user, shipper, notebook):
    rm = run["model"]
    users = [fountain_user, shipper]
    titles = [notebook.title, "Packing Tape, Clear, 6 Rolls"]
    expected = rm.score(users, titles)
    (tmp_path / "in.json").write_text(json.dumps({"users": [u.to_dict() for u in users], "titles": titles}))
    code = (
        "import json, sys; from creator.reward.model import RewardModel; from creator.records.types import User\n"
        f"d = json.load(open({str(tmp_path / 'in.json')!r}))\n"
        f"rm = RewardModel.from_pretrained({str(run['out'] / 'reward_model')!r})\n"
        "print(json.dumps(rm.score([User.from_dict(u) for u in d['users']], d['titles']).tolist()))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(json.loads(proc.stdout.strip().splitlines()[-1]), expected, atol=1e-5)


def test_gaming_titles_do_not_win(run, fountain_user, notebook):
    """Each attack loses to the honest personalized title; pasting and padding also lose to the original."""
    rm, user = run["model"], fountain_user
    honest = "Spiral Notebook for Fountain Pen Ink, 100 Sheets, College Ruled"
    pasted = "Fountain Pen Ink Bottle, Royal Blue, 50 ml"  # a history item's title
    appended = notebook.title + " | Calligraphy Fountain Pen Set with 3 Nibs"
    stuffed = "Notebook Notebook Fountain Pen Fountain Pen Ink Ink Notebook Sheets"
    overlong = notebook.title + ", " + ", ".join(["Premium Quality Paper for Office and School"] * 5)
    titles = [pasted, appended, stuffed, overlong]
    n = len(titles)
    raw = rm.score([user] * n, titles, [notebook] * n, raw=True)
    judged = rm.score([user] * n, titles, [notebook] * n)
    original, fair = rm.score([user] * 2, [notebook.title, honest], [notebook] * 2)
    assert raw[0] > original  # the attack works on the bare click model: pasting the history scores high
    assert (judged < fair).all(), dict(zip(titles, judged.tolist(), strict=True))
    assert (judged[[0, 1, 3]] < original).all(), dict(zip(titles, judged.tolist(), strict=True))
    res = compare(rm, [user] * n, titles, [honest] * n, [notebook] * n)
    assert res.good == 0 and res.bad == n


def test_guard_rejected_claim_loses(run, fountain_user, notebook):
    class NoNumbersGuard:  # a stand-in for creator.guard.check.Guard: rejects numbers the ad does not state
        def check(self, title, ad, *, original_title=None):
            from creator.records.types import GuardFailure, GuardVerdict

            bad = [w for w in title.split() if w.strip(",").isdigit() and w.strip(",") not in ad.description]
            return GuardVerdict([GuardFailure("ungrounded_number", b, "not in the ad") for b in bad])

    user, rm = fountain_user, run["model"]
    claim = "Spiral Notebook for Fountain Pen Ink, 500 Sheets, College Ruled"  # the ad has 100 sheets
    judge = GuardedJudge(rm, NoNumbersGuard())
    p = judge.score([user, user], [claim, notebook.title], [notebook, notebook])
    assert p[0] == 0.0 and p[1] > 0
    assert compare(judge, [user], [claim], [notebook.title], [notebook]).bad == 1


def test_judge_cli_prints_the_table(run, tmp_path, capsys):
    from eval.judge import main as judge_main

    users = ["u0", "u1", "u2", "u3"]
    cat_ads = {
        json.loads(x)["ad_id"]: json.loads(x)["title"]
        for x in (run["data"] / "ads.jsonl").read_text().split("\n")
        if x
    }
    a = [{"user_id": u, "ad_id": "a0", "title": cat_ads["a0"] + " with Bottled Ink"} for u in users]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in a))
    rc = judge_main(
        [
            "--a",
            str(tmp_path / "a.jsonl"),
            "--b",
            "original",
            "--data",
            str(run["data"]),
            "--format",
            "jsonl",
            "--reward-model",
            str(run["out"] / "reward_model"),
            "--out",
            str(tmp_path / "pairs.jsonl"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "| reward model |" in out and "Adv" in out
    assert len((tmp_path / "pairs.jsonl").read_text().splitlines()) == 4


def test_net_ignores_padding_and_handles_empty_history(tiny_reward_net):
    torch.manual_seed(0)
    cfg = RewardConfig(item_dim=12, **tiny_reward_net)
    net = RewardNet(cfg).eval()
    title, hist = torch.randn(2, 12), torch.randn(2, 8, 12)
    t_tok, h_tok = torch.randint(1, 4097, (2, cfg.max_tokens)), torch.randint(0, 4097, (2, 8, cfg.max_tokens))
    mask = torch.tensor([[True] * 3 + [False] * 5, [False] * 8])
    lengths = torch.tensor([[30.0, 5.0], [20.0, 3.0]])
    net = functools.partial(net, collab=torch.rand(2, N_COLLAB_FEATURES))
    a = net(title, hist, mask, lengths, title_tokens=t_tok, history_tokens=h_tok)
    hist2, h_tok2 = hist.clone(), h_tok.clone()
    hist2[~mask] = torch.randn(int((~mask).sum()), 12) * 100  # garbage in the padding
    h_tok2[~mask] = torch.randint(1, 4097, (int((~mask).sum()), cfg.max_tokens))
    b = net(title, hist2, mask, lengths, title_tokens=t_tok, history_tokens=h_tok2)
    torch.testing.assert_close(a, b)
    assert torch.isfinite(a).all()
    t_tok2 = t_tok.clone()
    t_tok2[0, 0] = t_tok[0, 0] % 4096 + 1
    # grams start at zero: one the judge never learnt (an untrained net's every gram) changes nothing
    torch.testing.assert_close(net(title, hist, mask, lengths, title_tokens=t_tok2, history_tokens=h_tok), a)
    torch.nn.init.normal_(net.func.tokens.weight)  # as if trained: one different title gram -> another score
    a = net(title, hist, mask, lengths, title_tokens=t_tok, history_tokens=h_tok)
    assert net(title, hist, mask, lengths, title_tokens=t_tok2, history_tokens=h_tok)[0] != a[0]


def test_every_shipped_config_loads():
    for path in sorted((REPO / "training" / "configs").glob("reward*.yaml")):
        cfg = load(RewardTrainConfig, path, data="x")
        assert cfg.negatives >= 1, path


@pytest.mark.parametrize(
    "override, message",
    [
        ({"sampling": "random"}, "uniform"),
        ({"negatives": 0}, "negatives"),
        ({"bogus": 1}, "bogus"),
        ({"model": {"dropout": 1.5}}, "dropout"),
        ({"test_fraction": 0.95}, "sum below 1"),
        ({"ema_decay": 1.0}, "ema_decay"),
    ],
)
def test_bad_config_names_the_fix(override, message):
    with pytest.raises(ValueError, match=message):
        load(RewardTrainConfig, REPO / "training" / "configs" / "reward.yaml", data="x", **override)


def test_selling_points_are_used_when_configured(tmp_path, minilm, reward_shop, reward_config, tiny_reward_net,
                                                 fountain_user, notebook):
    data = reward_shop(60)
    cfg = reward_config(
        data,
        tmp_path / "out",
        epochs=1,
        eval_samplings=["uniform"],
        model={**tiny_reward_net, "use_selling_points": True},
    )
    train(cfg, encoder=minilm)
    rm = RewardModel.from_pretrained(tmp_path / "out" / "reward_model", encoder=minilm)
    with pytest.raises(ValueError, match="selling points"):
        rm.score([fountain_user], [notebook.title])
    other = Ad("nb", notebook.title, selling_points=["recycled cover", "perforated pages"])
    p = rm.score([fountain_user] * 2, [notebook.title] * 2, [notebook, other])
    assert p[0] != p[1]  # same title, different selling points


def test_weights_of_another_network_version_are_a_clear_error(tmp_path, minilm, tiny_reward_net):
    from safetensors.torch import load_file, save_file

    cfg = RewardConfig(item_dim=minilm.dim, **tiny_reward_net)
    RewardModel(cfg, encoder=minilm).save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state.pop(sorted(state)[0])  # as if saved by a version without that layer
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="retrain it with `hllm-creator train-reward`"):
        RewardModel.from_pretrained(tmp_path, encoder=minilm)
    # a model saved before the co-occurrence features (network version 1): named, with the fix
    RewardModel(cfg, encoder=minilm).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["version"], saved["cooccurrence"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="network version 1.*retrain it with `hllm-creator train-reward`"):
        RewardModel.from_pretrained(tmp_path, encoder=minilm)
