"""The model bundle: the one folder of trained parts that ``generate``, the demo, quickstart and the benchmarks load.

A bundle holds three models and says how they relate:

- the user model with its match head (``hllm-creator train-encoders``; ``creator.modeling.user_model.UserModel``),
- the generator (``hllm-creator sft`` / ``dpo``; ``creator.modeling.generator.PersonalizedGenerator``),
- optionally the judge (``hllm-creator train-reward``; ``creator.reward.model.RewardModel``), which may embed
  users with the bundle's own user model (trained with ``--user-model-dir``): then it shares that one copy.

Its manifest, ``bundle.json``, names each part's folder (relative to the bundle), the user model the judge
uses, the shared MiniLM embedding cache, the generator's base and the versions that wrote it. The demo's and
quickstart's training (``app.demo_artifacts.train_missing``) writes it when its stages finish
(``ModelBundle.write_manifest``). A folder without one is read in
the layout ``hllm-creator quickstart`` trains (``encoders/user_model``, ``generator``, ``reward/reward_model``)
or in the one the training verbs give with ``--out DIR/<part>`` (``user_model`` at the top): see ``LAYOUTS``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for part in ("encoders/user_model", "generator"):
    ...     (root / part).mkdir(parents=True)
    >>> bundle = ModelBundle.read(root)
    >>> bundle.parts["user_model"], bundle.parts["generator"], bundle.parts["judge"]
    ('encoders/user_model', 'generator', None)
    >>> ModelBundle.read(root / "elsewhere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    creator.records.errors.DataError: ...not a complete model bundle...
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creator.records.errors import DataError

logger = logging.getLogger(__name__)

MANIFEST = "bundle.json"
FORMAT_VERSION = 1
EMBEDDINGS = "embeddings"  # the MiniLM cache the training stages share, when there is one
PARTS = ("user_model", "generator", "judge")
REQUIRED = ("user_model", "generator")
# the folders of a bundle without a manifest, in the order they are tried: the first whose user model is there
LAYOUTS: tuple[dict[str, str], ...] = (
    {"user_model": "encoders/user_model", "generator": "generator", "judge": "reward/reward_model"},  # quickstart
    {"user_model": "user_model", "generator": "generator", "judge": "reward/reward_model"},  # one --out per verb
)
# what writes each part, for the error that names a missing one
MAKES = {"user_model": "hllm-creator train-encoders --out {root}/encoders",
         "generator": "hllm-creator sft --out {root}/generator",
         "judge": "hllm-creator train-reward --user-model-dir {root}/encoders --out {root}/reward"}
QUICKSTART = "hllm-creator quickstart --out RUN --no-serve (trains every part into RUN/artifacts)"


@dataclass
class BundleModels:
    """The bundle's models, loaded: the judge shares ``user_model`` when the manifest says it uses it."""

    user_model: Any
    generator: Any
    judge: Any | None = None

    def components(self, guard: Any, backend: Any, *, decode_chars: int | None = None) -> Any:
        """The catalog job's parts (``creator.pipeline.catalog.Components``) with this ``guard`` and ``backend``."""
        from creator.pipeline.catalog import Components

        return Components(user_model=self.user_model, generator=self.generator, backend=backend, guard=guard,
                          judge=self.judge, decode_chars=decode_chars, generator_vectors=self.generator_vectors())

    def generator_vectors(self) -> Any:
        """users -> the generator's user vectors when it reads another space than the user model's (a generator
        trained on mean MiniLM history vectors, such as the shipped Gemma adapter), else None."""
        if getattr(self.generator, "user_space", None) is None:
            return None
        from creator.modeling.user_vectors import mean_history_vectors

        return lambda users: mean_history_vectors(users, minilm_encoder(self.user_model))

    def user_vectors(self, users: list[Any]) -> Any:
        """(N, d) the vectors the generator reads for ``users`` (for ablations that call it directly)."""
        own = self.generator_vectors()
        return own(users) if own is not None else self.user_model.embed_users(users)


def minilm_encoder(user_model: Any) -> Any:
    """The MiniLM item encoder: the user model's own when it is MiniLM (with its cache), else a new one."""
    from creator.modeling.item_encoder import DEFAULT_MODEL, SentenceItemEncoder

    if getattr(user_model, "item_encoder_name", None) in (DEFAULT_MODEL, None):
        return user_model.item_encoder
    return SentenceItemEncoder(cache_dir=getattr(user_model, "cache_dir", None))


@dataclass
class ModelBundle:
    """An artefact folder's parts (folders relative to ``root``, or paths given one by one) and how they relate."""

    root: Path
    parts: dict[str, str | None]
    judge_user_model: str | None = None  # the part folder of the user model the judge embeds users with
    embeddings_dir: str | None = None  # the MiniLM cache the parts' training shared (relative to root)
    base: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    # -- reading ------------------------------------------------------------------------------------
    @classmethod
    def read(cls, root: str | Path, *, user_model: str | Path | None = None, generator: str | Path | None = None,
             judge: str | Path | None = None) -> ModelBundle:
        """The bundle in ``root`` (its ``bundle.json``, else the known layout); ``user_model``/``generator``/
        ``judge`` replace one part with another folder (``judge="none"``: no judge). A ``DataError`` names
        each required part that is missing and the command that makes it."""
        root = Path(root)
        manifest = root / MANIFEST
        bundle = cls.from_manifest(root) if manifest.is_file() else cls.from_layout(root)
        given = {"user_model": user_model, "generator": generator, "judge": judge}
        if any(v is not None for v in given.values()):
            bundle = bundle._with_parts(given)
        bundle.check()
        return bundle

    @classmethod
    def from_manifest(cls, root: Path) -> ModelBundle:
        path = root / MANIFEST
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataError("model bundle manifest is not JSON", file=str(path), expected="a bundle.json",
                            got=str(err), fix=f"delete it; it is written again by {QUICKSTART}") from None
        if data.get("format_version") != FORMAT_VERSION or not isinstance(data.get("parts"), dict):
            raise DataError("unknown model bundle manifest", file=str(path),
                            expected=f"format_version {FORMAT_VERSION} with a 'parts' mapping",
                            got=f"format_version {data.get('format_version')!r}",
                            fix="write it with this version (ModelBundle.write_manifest) or delete it")
        parts = {p: data["parts"].get(p) for p in PARTS}
        return cls(root, parts, judge_user_model=data.get("judge_user_model"), embeddings_dir=data.get("embeddings"),
                   base=data.get("base"), versions=dict(data.get("versions") or {}))

    @classmethod
    def from_layout(cls, root: Path) -> ModelBundle:
        """A folder without a manifest, in the first of ``LAYOUTS`` whose user model is there."""
        layout = next((lay for lay in LAYOUTS if (root / lay["user_model"]).is_dir()), LAYOUTS[0])
        parts: dict[str, str | None] = dict(layout)
        if not (root / layout["judge"]).is_dir():
            parts["judge"] = None
        bundle = cls(root, parts, embeddings_dir=EMBEDDINGS if (root / EMBEDDINGS).is_dir() else None)
        bundle.judge_user_model = bundle._judge_user_model()
        bundle.base = bundle._generator_base()
        return bundle

    def _with_parts(self, given: dict[str, str | Path | None]) -> ModelBundle:
        parts = dict(self.parts)
        for part, path in given.items():
            if path is None:
                continue
            if part == "judge" and str(path) == "none":
                parts["judge"] = None
                continue
            path = Path(path)
            if part == "judge":
                if (path / "reward_model").is_dir():  # train-reward --out DIR writes DIR/reward_model
                    path = path / "reward_model"
                if not path.is_dir():
                    raise DataError("judge folder not found", file=str(path), expected="a saved RewardModel",
                                    got="nothing there", fix="pass --judge-model PATH, or none to skip reranking")
            parts[part] = str(path.resolve())
        bundle = ModelBundle(self.root, parts, embeddings_dir=self.embeddings_dir, base=self.base,
                             versions=dict(self.versions))
        bundle.judge_user_model = bundle._judge_user_model()
        return bundle

    def path(self, part: str) -> Path | None:
        """The folder of ``part`` (``user_model``, ``generator`` or ``judge``); None for an absent judge."""
        rel = self.parts.get(part)
        return None if rel is None else self.root / rel

    @property
    def embeddings(self) -> Path | None:
        """The MiniLM cache the bundle's training shared (None when it has none)."""
        return None if self.embeddings_dir is None else self.root / self.embeddings_dir

    def missing(self) -> list[str]:
        """The required parts whose folder is not there."""
        return [p for p in REQUIRED if not (self.root / (self.parts.get(p) or p)).is_dir()]

    def check(self) -> None:
        """A ``DataError`` naming each missing required part, its folder and the command that makes it."""
        missing = self.missing()
        if not missing:
            return
        names = ", ".join(f"{p.replace('_', ' ')} ({self.path(p)})" for p in missing)
        makes = "; ".join(MAKES[p].format(root=self.root) for p in missing)
        raise DataError("not a complete model bundle", file=str(self.root),
                        expected="user_model and generator parts (a bundle.json, or the layout quickstart trains)",
                        got=f"no {names}", fix=f"train it with {QUICKSTART} and pass that folder; or {makes}")

    def _judge_user_model(self) -> str | None:
        """The part folder of the bundle's user model when the judge was trained on it, else None."""
        judge, user = self.path("judge"), self.path("user_model")
        config = judge / "config.json" if judge is not None else None
        if config is None or user is None or not config.is_file():
            return None
        stored = json.loads(config.read_text()).get("user_model_dir")
        if not stored:
            return None
        from creator.reward.model import find_user_model_dir

        found = find_user_model_dir(judge, stored)
        same = found is not None and user.resolve() in (found, found / "user_model")
        return self.parts["user_model"] if same else None

    def _generator_base(self) -> str | None:
        config = self.path("generator") / "generator_config.json"  # type: ignore[operator]
        return json.loads(config.read_text()).get("base") if config.is_file() else None

    # -- loading ------------------------------------------------------------------------------------
    def load(self, *, cache_dir: str | Path | None = None, judge: bool = True) -> BundleModels:
        """Load the models (user model, generator, then the judge): a judge trained on the bundle's user model
        gets that one copy; ``cache_dir`` is the MiniLM cache of the user model and the judge."""
        from creator.modeling.generator import PersonalizedGenerator
        from creator.modeling.user_model import UserModel

        user_model = UserModel.from_pretrained(self.path("user_model"), cache_dir=cache_dir)
        generator = PersonalizedGenerator.from_pretrained(self.path("generator"))
        return BundleModels(user_model, generator, self.load_judge(user_model, cache_dir=cache_dir) if judge else None)

    def load_judge(self, user_model: Any | None = None, *, cache_dir: str | Path | None = None) -> Any | None:
        """The judge (None when the bundle has none). It shares ``user_model`` when it was trained on the
        bundle's user model; without one given, that user model is loaded here with ``cache_dir``."""
        judge_dir = self.path("judge")
        if judge_dir is None:
            return None
        from creator.reward.model import RewardModel

        shares = self.judge_user_model is not None and self.judge_user_model == self.parts["user_model"]
        if shares and user_model is None:
            from creator.modeling.user_model import UserModel

            user_model = UserModel.from_pretrained(self.path("user_model"), cache_dir=cache_dir)
        return RewardModel.from_pretrained(judge_dir, cache_dir=cache_dir, user_model=user_model if shares else None)

    # -- the manifest -------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "parts": dict(self.parts),
                "judge_user_model": self.judge_user_model,
                "embeddings": self.embeddings_dir,
                "base": self.base, "versions": self.versions or _versions()}

    def save(self) -> Path:
        """Write ``bundle.json`` in the bundle's folder (the models themselves are saved by their verbs)."""
        path = self.root / MANIFEST
        path.write_text(json.dumps(self.manifest(), indent=1) + "\n")
        logger.info("model bundle manifest: %s", path)
        return path

    @classmethod
    def write_manifest(cls, root: str | Path) -> Path:
        """Describe the trained folder ``root`` (read in its layout, see ``LAYOUTS``) in a ``bundle.json``."""
        root = Path(root)
        bundle = cls.from_layout(root)
        bundle.check()
        return bundle.save()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from creator import __version__

    out = {"hllm_creator": __version__}
    for package in ("torch", "transformers", "peft"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out
