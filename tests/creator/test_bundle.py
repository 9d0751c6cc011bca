"""The model bundle: which parts a folder holds, how the judge relates to the user model, the manifest, loading.

The folders are laid out by hand (a ``config.json`` where the relation is read); loading is checked with the
three ``from_pretrained`` replaced by recorders, and on the real demo artefacts when ``HLLM_DEMO_ARTIFACTS`` names
a folder of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from creator.bundle import MANIFEST, ModelBundle
from creator.records.errors import DataError


def lay_out(root: Path, user_model: str = "encoders/user_model", judge_user_dir: str | None = "../../encoders",
            judge: str = "reward/reward_model") -> Path:
    (root / user_model).mkdir(parents=True)
    (root / "generator").mkdir(parents=True)
    (root / "generator" / "generator_config.json").write_text(json.dumps({"base": "base"}))
    (root / judge).mkdir(parents=True)
    (root / judge / "config.json").write_text(json.dumps({"user_model_dir": judge_user_dir}))
    return root


def test_the_layout_quickstart_trains_is_read_without_a_manifest(tmp_path):
    bundle = ModelBundle.read(lay_out(tmp_path))
    assert bundle.parts == {"user_model": "encoders/user_model", "generator": "generator",
                            "judge": "reward/reward_model"}
    assert bundle.judge_user_model == "encoders/user_model"  # trained with --user-model-dir encoders: shared
    assert bundle.base == "base" and not (tmp_path / MANIFEST).exists()  # reading writes nothing


def test_the_layout_of_one_out_per_verb_is_read_too(tmp_path):
    bundle = ModelBundle.read(lay_out(tmp_path, user_model="user_model", judge_user_dir=None))
    assert bundle.parts["user_model"] == "user_model" and bundle.judge_user_model is None


def test_a_judge_trained_on_another_user_model_does_not_share_it(tmp_path):
    (tmp_path / "elsewhere" / "user_model").mkdir(parents=True)
    bundle = ModelBundle.read(lay_out(tmp_path / "b", judge_user_dir=str(tmp_path / "elsewhere")))
    assert bundle.judge_user_model is None


def test_an_incomplete_folder_names_each_missing_part_and_its_command(tmp_path):
    (tmp_path / "generator").mkdir()
    with pytest.raises(DataError) as err:
        ModelBundle.read(tmp_path)
    text = str(err.value)
    assert "not a complete model bundle" in text and f"no user model ({tmp_path / 'encoders/user_model'})" in text
    assert "hllm-creator quickstart --out RUN" in text and f"train-encoders --out {tmp_path}/encoders" in text
    assert "sft --out" not in text  # the generator is there


def test_write_manifest_then_read_gives_the_same_bundle(tmp_path):
    root = lay_out(tmp_path)
    (root / "embeddings").mkdir()
    path = ModelBundle.write_manifest(root)
    manifest = json.loads(path.read_text())
    assert manifest["parts"] == ModelBundle.from_layout(root).parts and manifest["format_version"] == 1
    assert manifest["judge_user_model"] == "encoders/user_model" and manifest["embeddings"] == "embeddings"
    assert {"hllm_creator", "torch", "transformers"} <= set(manifest["versions"]) and manifest["base"] == "base"
    again = ModelBundle.read(root)
    assert (again.parts, again.judge_user_model, again.base) == (ModelBundle.from_layout(root).parts,
                                                                  "encoders/user_model", "base")


def test_a_manifest_of_another_format_is_a_clear_error(tmp_path):
    root = lay_out(tmp_path)
    (root / MANIFEST).write_text(json.dumps({"format_version": 9}))
    with pytest.raises(DataError, match="unknown model bundle manifest.*format_version 1"):
        ModelBundle.read(root)


def test_parts_given_one_by_one_replace_the_bundles(tmp_path):
    root = lay_out(tmp_path / "b")
    other = lay_out(tmp_path / "other")
    bundle = ModelBundle.read(root, judge="none")
    assert bundle.parts["judge"] is None and bundle.path("judge") is None
    # a train-reward --out folder is accepted for its reward_model/; its judge used its own encoders
    bundle = ModelBundle.read(root, judge=other / "reward")
    assert bundle.path("judge") == (other / "reward" / "reward_model").resolve()
    assert bundle.judge_user_model is None
    with pytest.raises(DataError, match="judge folder not found"):
        ModelBundle.read(root, judge=tmp_path / "nothing")
    with pytest.raises(DataError, match="no generator"):
        ModelBundle.read(root, generator=tmp_path / "nothing")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Path, dict]] = []

    def loader(self, name: str):
        def from_pretrained(path, **kwargs):
            self.calls.append((name, Path(path), kwargs))
            return f"{name}@{Path(path).name}"

        return from_pretrained


@pytest.fixture
def recorder(monkeypatch):
    from creator.modeling.generator import PersonalizedGenerator
    from creator.modeling.user_model import UserModel
    from creator.reward.model import RewardModel

    rec = Recorder()
    for name, cls in (("user_model", UserModel), ("generator", PersonalizedGenerator), ("judge", RewardModel)):
        monkeypatch.setattr(cls, "from_pretrained", rec.loader(name))
    return rec


def test_load_gives_the_judge_the_bundles_user_model_once(tmp_path, recorder):
    root = lay_out(tmp_path)
    models = ModelBundle.read(root).load(cache_dir=root / "embeddings")
    assert (models.user_model, models.generator, models.judge) == ("user_model@user_model", "generator@generator",
                                                                   "judge@reward_model")
    assert [c[0] for c in recorder.calls] == ["user_model", "generator", "judge"]  # one user model, loaded first
    judge_kwargs = recorder.calls[2][2]
    assert judge_kwargs == {"cache_dir": root / "embeddings", "user_model": "user_model@user_model"}


def test_a_judge_on_its_own_user_model_loads_that_one_itself(tmp_path, recorder):
    root = lay_out(tmp_path, judge_user_dir=None)
    ModelBundle.read(root).load_judge(cache_dir="cache")
    assert recorder.calls == [("judge", root / "reward" / "reward_model", {"cache_dir": "cache", "user_model": None})]


def test_components_put_the_models_where_the_pipeline_takes_them():
    from creator.bundle import BundleModels

    parts = BundleModels("um", "gen", "judge").components("guard", "backend", decode_chars=30)
    assert (parts.user_model, parts.generator, parts.backend, parts.guard, parts.judge, parts.decode_chars) == (
        "um", "gen", "backend", "guard", "judge", 30)


@pytest.mark.slow
def test_the_real_demo_artefacts_load_as_a_bundle():
    root = os.environ.get("HLLM_DEMO_ARTIFACTS")
    if not root:
        pytest.skip("set HLLM_DEMO_ARTIFACTS to a folder trained by `hllm-creator quickstart` to load it")
    bundle = ModelBundle.read(root)
    assert bundle.judge_user_model == bundle.parts["user_model"]
    models = bundle.load(cache_dir=bundle.embeddings)
    assert models.judge.user_model is models.user_model  # one copy, one cache
    import numpy as np

    # the match head through the user model (no new text embedded: the folder's cache stays as it is)
    probs = models.user_model.match(np.zeros((2, models.user_model.dim)), np.ones((1, models.user_model.item_dim)))
    assert probs.shape == (2, 1) and ((probs > 0) & (probs < 1)).all()
