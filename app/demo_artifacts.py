"""The trained parts behind the demo: loaded from an artefacts folder, trained there on first start.

Layout of ``--artifacts DIR`` (each sub-folder is the ``--out`` of one training verb):

    DIR/encoders/   hllm-creator train-encoders   (user_model/ -> UserModel, match head)
    DIR/cot/        hllm-creator build-cot        (CoT titles and preference pairs, offline teacher)
    DIR/lm/         hllm-creator pretrain-lm      (tiny causal LM + tokenizer trained on the catalog; micro base only)
    DIR/generator/  hllm-creator sft              (LoRA adapter + user projector -> PersonalizedGenerator; on a
                    or install-generator          pretrained base, the shipped adapter is installed instead)
    DIR/reward/     hllm-creator train-reward     (reward_model/ -> RewardModel, the judge)

The generator's base is ``micro`` (an LM pretrained here, the "lm" stage) or ``gemma-270m`` (Gemma 3 270M
from PyPI: no "lm" stage, and the generator is the adapter shipped in ``app/pretrained``, fine-tuned with
``training/configs/sft_gemma270m.yaml``); see ``stages_for``.
``train_missing`` runs, in that order, the ``run`` function of every stage whose folder is not finished
(a stage is finished when its ``run`` returned; a ``.done`` file records it), each with a typed config and
its own progress bars, on the catalog given. The stages share one MiniLM cache (``DIR/embeddings``), so each
text is embedded once. Nothing is downloaded: every model is built and trained here, but for the shipped
adapter of a pretrained base, which is installed from the repository.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creator.guard.check import Guard, GuardConfig
from creator.records.types import Ad

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DONE = ".done"
# On the sample, validation AUC 0.789 after 6 epochs vs 0.797 after reward.yaml's 10, at 60% of the time
REWARD_EPOCHS = 6
# reward.yaml refits on training + validation users (+0.005 test AUC on Office_Products, about twice the
# training time: 21 s -> 35 s on the sample); the demo's first start keeps the validation-chosen judge
REWARD_REFIT = False
# the demo's judge ranks 5 corrupted versions of each training positive's title below it (pairwise, weight 0.2):
# on the sample's held-out users it then prefers the real title 96.6% of the time (55.6% without; a cut hook 90.2%)
# at -0.008 test AUC (docs/reward.md). reward.yaml's 0.03, chosen on the whole catalog, teaches this small judge
# too little (87.9%)
REWARD_CORRUPTIONS = {"corruption_negatives": 5, "corruption_weight": 0.2}
# Base LM steps on first start: pretrain_tiny.yaml's 1,500 are sized for a whole catalog; on the 300-ad sample
# 500 steps are about 5 passes over its task examples, and 2-3 CPU minutes (see docs/demo.md)
LM_STEPS = 500
# Gemma 3 270M: fine-tuning takes about 30 minutes on 2 cores (training/configs/sft_gemma270m.yaml), so the demo
# installs the adapter the project trained that way (training.install_generator; its README.md has the command)
COT_ROWS = 600  # CoT rows the offline teacher writes on first start; the SFT trains 2 epochs on them (see docs/demo.md)


@dataclass(frozen=True)
class Stage:
    """One training verb: ``module``'s config class and run function (``entry`` = "Config:run"), called with
    the config built from the shipped ``yaml`` (or the defaults) and ``options(data, fmt, root)``, writing
    ``root/folder``."""

    name: str
    module: str
    folder: str
    entry: str
    options: Callable[[str, str, Path], dict[str, Any]]
    yaml: str | None = None

    def done(self, root: Path) -> bool:
        return (root / self.folder / DONE).exists()

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def config(self, data: str, fmt: str, root: Path, flags: list[str] | None = None) -> Any:
        """The typed config: the YAML, then ``options``, then ``flags`` read by the verb's own parser."""
        from creator.config import load

        cls = getattr(importlib.import_module(self.module), self.entry.split(":")[0])
        return load(cls, _config(self.yaml), **{**self.options(data, fmt, root), **_flag_values(cls, flags or [])})

    def run(self, config: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.entry.split(":")[1])(config)


def _config(name: str | None) -> Path | None:
    path = REPO / "training" / "configs" / name if name else None
    return path if path is not None and path.exists() else None


def _flag_values(cls: type, flags: list[str]) -> dict[str, Any]:
    """The options ``flags`` set, read by the verb's parser (``creator.config``); unset options are absent."""
    if not flags:
        return {}
    import argparse

    from creator.config import build_parser

    parser = build_parser([cls])
    for action in parser._actions:
        if action.dest not in ("help", "config"):
            action.default, action.required = argparse.SUPPRESS, False
    return {k: v for k, v in vars(parser.parse_args(flags)).items() if k != "config"}


class ArtefactBaseMismatch(ValueError):
    """The artefacts folder holds a generator on another base than the one asked for."""


GENERATOR_BASES = ("micro", "gemma-270m")  # micro: the ~1M-parameter LM pretrained here; gemma-270m: from PyPI


def _build_stages(base: str) -> tuple[Stage, ...]:
    encoders = Stage("user model and match head", "training.encoders.train", "encoders", "EncodersConfig:run",
                     lambda data, fmt, root: {"data": data, "format": fmt, "cache_dir": str(root / "embeddings"),
                                              "out": str(root / "encoders")}, "encoders_tiny.yaml")
    cot = Stage("CoT titles (offline teacher)", "data_pipelines.cot", "cot", "CoTConfig:run",
                lambda data, fmt, root: {"data": data, "format": fmt, "teacher": "offline", "limit": COT_ROWS,
                                         "embed_cache": str(root / "embeddings"), "out": str(root / "cot")})
    lm = Stage("tiny language model", "training.pretrain_lm", "lm", "PretrainConfig:run",
               lambda data, fmt, root: {"catalog": data, "catalog_format": fmt, "cot": str(root / "cot"),
                                        "max_steps": LM_STEPS, "out": str(root / "lm")}, "pretrain_tiny.yaml")
    if base == "micro":
        # max_length 384: sft_tiny.yaml's 256 leaves no room for the title after the sample's longest prompts
        generator = Stage("generator (LoRA SFT)", "training.sft", "generator", "SFTRunConfig:run",
                          lambda data, fmt, root: {"cot": str(root / "cot"), "user_vectors": str(root / "encoders"),
                                                   "base": str(root / "lm"), "catalog": data, "catalog_format": fmt,
                                                   "max_length": 384, "out": str(root / "generator")},
                          "sft_tiny.yaml")
    else:  # a pretrained base: the adapter fine-tuned here ships with the project (fine-tuning takes ~30 min)
        generator = Stage(f"generator (shipped LoRA adapter on {base})", "training.install_generator", "generator",
                          "InstallConfig:run",
                          lambda data, fmt, root: {"source": base, "out": str(root / "generator")})
    reward = Stage("judge (CTR reward model)", "training.reward.train", "reward", "RewardTrainConfig:train",
                   lambda data, fmt, root: {"data": data, "format": fmt, "user_model_dir": str(root / "encoders"),
                                            "epochs": REWARD_EPOCHS, "refit": REWARD_REFIT, **REWARD_CORRUPTIONS,
                                            "cache_dir": str(root / "embeddings"), "out": str(root / "reward")},
                   "reward.yaml")
    # the CoT titles train the micro LM and its generator; the shipped adapter needs neither
    return (encoders, cot, lm, generator, reward) if base == "micro" else (encoders, generator, reward)


STAGES: tuple[Stage, ...] = _build_stages("micro")
GEMMA_STAGES: tuple[Stage, ...] = _build_stages("gemma-270m")


def stages_for(base: str = "micro") -> tuple[Stage, ...]:
    """The training stages for a generator on ``base``: ``micro`` pretrains its LM here first (the "lm"
    stage); a pretrained base (``gemma-270m``) skips that stage and fine-tunes with its own SFT config."""
    if base not in GENERATOR_BASES:
        raise ValueError(f"unknown generator base {base!r}; use one of {', '.join(GENERATOR_BASES)}")
    return STAGES if base == "micro" else GEMMA_STAGES


def artefact_base(root: str | Path) -> str | None:
    """The generator base a finished artefacts folder was trained on (None when no generator is there yet)."""
    cfg = Path(root) / "generator" / "generator_config.json"
    if not cfg.exists():
        return None
    base = json.loads(cfg.read_text()).get("base")
    return base if base in GENERATOR_BASES else "micro"  # the micro LM is copied in as "base"


def missing_stages(root: str | Path, base: str | None = None) -> list[Stage]:
    """Unfinished stages for ``base`` (default: the base the folder's generator was trained on, else micro)."""
    return [s for s in stages_for(base or artefact_base(root) or "micro") if not s.done(Path(root))]


def unavailable(stages: list[Stage]) -> list[Stage]:
    """Stages whose training entry point is not installed in this checkout."""
    return [s for s in stages if not s.available()]


def _stamp(stage: Stage, data: str, fmt: str, root: Path) -> list[str]:
    """What the ``.done`` stamp records: the config file and the options, as the verb's flags."""
    opts = [f"--{k.replace('_', '-')} {v}" for k, v in stage.options(data, fmt, root).items()]
    return ([f"--config {_config(stage.yaml)}"] if _config(stage.yaml) else []) + opts


def train_missing(root: str | Path, data: str | Path, fmt: str = "auto",
                  progress: Callable[[float, str], None] | None = None,
                  extra_args: dict[str, list[str]] | None = None, base: str = "micro") -> list[str]:
    """Run every unfinished stage in order, then write the bundle's manifest; returns the names trained. Raises if
    one fails.

    ``extra_args[folder]`` are flags read by that stage's own parser, applied last (they win), e.g.
    ``{"lm": ["--max-steps", "40"]}`` for a quick smoke run of the whole chain.
    """
    root = Path(root)
    have = artefact_base(root)
    if have is not None and have != base:
        raise ArtefactBaseMismatch(f"{root} holds a generator trained on the {have} base, not {base}; pass "
                                   f"another output folder, or delete {root / 'generator'} to retrain it on {base}")
    todo = missing_stages(root, base)
    absent = unavailable(todo)
    if absent:
        raise RuntimeError("cannot train the demo's models: this checkout lacks "
                           + ", ".join(f"{s.module} ({s.name})" for s in absent)
                           + "; install the full package or pass --artifacts with trained models")
    for i, stage in enumerate(todo):
        if progress:
            progress(i / max(len(todo), 1), f"training {stage.name} ({i + 1}/{len(todo)})")
        logger.info("first start: training %s with %s", stage.name, stage.module)
        flags = list((extra_args or {}).get(stage.folder, []))
        config = stage.config(str(data), fmt, root, flags)
        try:
            stage.run(config)
        except Exception:
            logger.error("training %s failed (%s.%s); %s stays unfinished", stage.name, stage.module,
                         stage.entry.split(":")[1], root / stage.folder)
            raise
        (root / stage.folder).mkdir(parents=True, exist_ok=True)
        (root / stage.folder / DONE).write_text(" ".join([stage.module, *_stamp(stage, str(data), fmt, root), *flags])
                                                + "\n")
    from creator.bundle import ModelBundle

    bundle = ModelBundle.from_layout(root)
    if not bundle.missing():  # the stages made a whole bundle: describe it in bundle.json, what generate, eval,
        bundle.save()  # quickstart and the demo load
    if progress:
        progress(1.0, "models ready")
    return [s.name for s in todo]


class ArtifactParts:
    """The trained parts in ``root`` (a model bundle, ``creator.bundle``), loaded once and shared by every tab."""

    def __init__(self, root: str | Path, *, batch_size: int = 16, fluency: Any = None) -> None:
        self.root = Path(root)
        self.batch_size = batch_size
        self.fluency = fluency  # an app.demo_fluency.DemoFluency: the guard's disfluent rule; None = no gate
        self._loaded: dict[str, Any] | None = None

    @property
    def description(self) -> str:
        return f"trained artefacts in {self.root}"

    def ready(self) -> bool:
        return not missing_stages(self.root)

    def _load(self) -> dict[str, Any]:
        if self._loaded is None:
            if not self.ready():
                names = ", ".join(s.name for s in missing_stages(self.root))
                raise RuntimeError(f"the models are not trained yet ({names} missing in {self.root}); "
                                   "press 'Train the models' or restart `hllm-creator demo`")
            from creator.backends.hf import HFBackend
            from creator.bundle import ModelBundle

            # one MiniLM cache for every text the models embed: a second Generate re-embeds nothing
            models = ModelBundle.read(self.root).load(cache_dir=self.root / "embeddings")
            self._loaded = {"models": models,
                            "backend": HFBackend.from_generator(models.generator, batch_size=self.batch_size)}
            logger.info("loaded the demo's models from %s", self.root)
        return self._loaded

    def components(self, guard: GuardConfig, known_brands: list[str], ads: Sequence[Ad] = ()) -> Any:
        """The pipeline's parts under ``guard``; with a fluency gate, calibrated on ``ads``' titles (the catalog)."""
        from creator.channels.presets import get_channel

        loaded = self._load()
        # decode within the channel's budget, as the guard counts it (the slider may lower it)
        decode_chars = guard.max_chars if get_channel(guard.channel).budget is not None else None
        gate = self.fluency.gate(ads) if self.fluency is not None else None
        return loaded["models"].components(Guard(guard, known_brands=known_brands, fluency=gate), loaded["backend"],
                                           decode_chars=decode_chars)
