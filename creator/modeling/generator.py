"""PersonalizedGenerator: tokenizer + base causal LM (or its id) + LoRA adapter + user projector + config.

The artefact folder (written by ``hllm-creator sft`` / ``dpo`` and by ``save_pretrained``)::

    generator_config.json   GeneratorConfig (base id or "base", k, d_user, prompt version, limits)
    tokenizer/              the tokenizer, placeholders included
    base/                   the base weights, only when the base was built here (tiny preset)
    adapter/                the PEFT LoRA adapter (attention/MLP projections only: vLLM-servable)
    projector.safetensors   UserProjector weights

It loads in a fresh process with plain transformers + peft and this small loader (the example needs a
trained folder, so it is not run as a doctest):

    >>> gen = PersonalizedGenerator.from_pretrained("runs/sft")                 # doctest: +SKIP
    >>> gen.generate([ad], np.zeros((1, gen.config.d_user)), None)             # doctest: +SKIP
    [['BIC Round Stic Pens for Busy Offices, 10-Count']]
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creator.backends.base import SamplingConfig
from creator.decoding.logits import GroundedLogitsProcessor
from creator.decoding.words import AdVocabulary
from creator.modeling.bases import resolve_base
from creator.modeling.builders import ensure_vocab, placeholder_ids, placeholder_tokens
from creator.modeling.prompts import GENERATOR_PROMPTS
from creator.modeling.soft_prompt import UserProjector, attach_user_tokens, build_prompt_embeds
from creator.records.rewrite import good_hook, hook
from creator.records.types import Ad

logger = logging.getLogger(__name__)

CONFIG_FILE = "generator_config.json"
PROJECTOR_FILE = "projector.safetensors"


@dataclass
class GeneratorConfig:
    """How prompts are built and where the parts live. Saved as ``generator_config.json``."""

    base: str = "base"  # "base" = the subfolder of the artefact; otherwise an HF id or a path
    num_user_tokens: int = 4
    d_user: int = 64
    prompt_version: str = "v2"
    use_chat_template: bool = True
    max_title_chars: int = 160
    max_points: int = 6  # v1: the first points, clipped; v2: hooks of every point, at most this many
    max_point_chars: int = 120
    max_profile_chars: int = 600
    dtype: str = "float32"
    encoders: str | None = None  # the user model the vectors came from (a train-encoders dir or a provider)
    grounded: bool = True  # decode only tokens of the ad's own words (creator.decoding.words); False = open vocabulary
    # grounded titles end only once they keep this share of the ad title's words: the guard's min_title_overlap
    min_topic_share: float = 0.2
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_user_tokens < 1:
            raise ValueError(
                f"num_user_tokens must be >= 1, got {self.num_user_tokens}; HLLM-Creator used 1, "
                "we default to 4"
            )
        if self.d_user < 1:
            raise ValueError(f"d_user must be the user vector size (>= 1), got {self.d_user}")
        if self.prompt_version not in GENERATOR_PROMPTS:
            raise ValueError(
                f"unknown prompt_version {self.prompt_version!r}; known: {sorted(GENERATOR_PROMPTS)}"
            )
        if self.max_points < 0 or self.max_title_chars < 1:
            raise ValueError("max_points must be >= 0 and max_title_chars >= 1")
        if not 0.0 <= self.min_topic_share <= 1.0:
            raise ValueError(f"min_topic_share must be in [0, 1], got {self.min_topic_share}; set it to the guard's "
                             "min_title_overlap (0.2 by default), or 0 to let titles end anywhere")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown generator config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " ..."


def prompt_points(ad: Ad, config: GeneratorConfig) -> list[str]:
    """The selling-point lines of the prompt: v1 the first points clipped, v2 the hooks of every point."""
    if config.prompt_version == "v1":
        return [_clip(p, config.max_point_chars) for p in ad.selling_points[: config.max_points]]
    hooks = [h for h in (hook(p) for p in ad.selling_points) if good_hook(h, ad.title)]
    return list(dict.fromkeys(hooks))[: config.max_points]


def prompt_content(ad: Ad, config: GeneratorConfig) -> str:
    """The generator prompt's text for ``ad`` before the chat template (placeholders ``<u0>..`` in place).

    One function for training, serving and ``pretrain-lm``'s task examples, so all three see the same text."""
    points = prompt_points(ad, config)
    return GENERATOR_PROMPTS[config.prompt_version][0].format(
        user_tokens="".join(placeholder_tokens(config.num_user_tokens)),
        title=_clip(ad.title, config.max_title_chars),
        brand_line=f"Brand: {_clip(ad.brand, 60)}\n" if ad.brand else "",
        selling_points="\n".join(f"- {p}" for p in points) or "- (none given)",
    )


class PersonalizedGenerator:
    """A causal LM that writes a title for (ad, user vector); see the module docstring for the folder."""

    def __init__(self, model: Any, tokenizer: Any, projector: UserProjector, config: GeneratorConfig) -> None:
        self.model, self.tokenizer, self.projector, self.config = model, tokenizer, projector, config
        self.placeholder_ids = placeholder_ids(tokenizer, config.num_user_tokens)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if getattr(base, "user_projector", None) is not projector:
            attach_user_tokens(base, projector, self.placeholder_ids)
        self._adapter_dir: Path | None = None
        self._artefact_dir: Path | None = None  # the folder this generator was loaded from or saved to
        self._base_ref: str | None = None  # the base it was loaded on ("base" = the artefact's own copy)
        self._grounding_cache: dict[tuple, AdVocabulary] = {}

    # ---- prompts ---------------------------------------------------------------------------------------
    def _templates(self) -> tuple[str, str]:
        return GENERATOR_PROMPTS[self.config.prompt_version]

    def _wrap(self, content: str) -> str:
        if self.config.use_chat_template and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        return content + "\n"

    @property
    def user_space(self) -> str | None:
        """``"mean-minilm"`` when the generator was trained on mean MiniLM history vectors (a pretrained
        adapter that needs no user model of its own), else None: it reads the bundle's user model vectors."""
        from creator.modeling.user_vectors import MEAN_MINILM

        return MEAN_MINILM if self.config.encoders == MEAN_MINILM else None

    def prompt_text(self, ad: Ad) -> str:
        """The prompt for ``ad`` with the user placeholders in place (the chat template applied)."""
        return self._wrap(prompt_content(ad, self.config))

    def profile_prompt_text(self) -> str:
        """The prompt of the profile-reconstruction auxiliary task (user tokens, then the instruction)."""
        return self._wrap(
            self._templates()[1].format(user_tokens="".join(placeholder_tokens(self.config.num_user_tokens)))
        )

    def prompt_ids(self, ad: Ad) -> list[int]:
        """Token ids of ``prompt_text(ad)`` (each placeholder exactly once)."""
        return list(self.tokenizer(self.prompt_text(ad))["input_ids"])

    def completion_ids(self, title: str) -> list[int]:
        """The target tokens: the title, then EOS."""
        return list(self.tokenizer(" ".join(title.split()), add_special_tokens=False)["input_ids"]) + [
            self.tokenizer.eos_token_id
        ]

    # ---- inference -------------------------------------------------------------------------------------
    def prompt_embeds(self, ad: Ad, user_vec: np.ndarray) -> torch.Tensor:
        """(T, hidden) input embeddings for vLLM ``prompt_embeds`` / HF ``inputs_embeds``."""
        ids = torch.tensor(self.prompt_ids(ad), dtype=torch.long)
        vec = torch.as_tensor(np.asarray(user_vec, dtype=np.float32))
        return build_prompt_embeds(self.model, self.projector, ids, vec, self.placeholder_ids)

    def grounding(self, ad: Ad, *, max_chars: int | None = None, wide: bool = False) -> AdVocabulary | None:
        """The words a title of ``ad`` may use under grounded decoding; None when ``config.grounded`` is off.
        ``max_chars``/``wide``: a channel's budget (``Channel.budget``, ``Channel.wide_counts_double``)."""
        if not self.config.grounded:
            return None
        key = (ad.title, ad.brand, tuple(ad.selling_points), self.config.min_topic_share, max_chars, wide)
        if key not in self._grounding_cache:
            self._grounding_cache[key] = AdVocabulary.build(self.tokenizer, ad,
                                                            min_topic_share=self.config.min_topic_share,
                                                            max_chars=max_chars, wide=wide)
        return self._grounding_cache[key]

    @property
    def adapter_dir(self) -> Path | None:
        """The saved LoRA adapter folder (for vLLM ``LoRARequest``); None until saved or loaded."""
        return self._adapter_dir

    @property
    def base_model_path(self) -> str | None:
        """The base model vLLM loads: the artefact's own ``base/``, a named base's converted folder
        (``gemma-270m``), or the hub id / folder the generator was trained from; None until saved or loaded."""
        if self._artefact_dir is None:
            return None
        ref = self._base_ref or self.config.base
        return str(self._artefact_dir / "base") if ref == "base" else resolve_base(ref)

    @property
    def tokenizer_path(self) -> str | None:
        """The artefact's tokenizer folder (with the user-token placeholders); None until saved or loaded."""
        return None if self._artefact_dir is None else str(self._artefact_dir / "tokenizer")

    @torch.no_grad()
    def generate(self, ads: list[Ad], user_vecs: np.ndarray, sampling: Any = None) -> list[list[str]]:
        """``sampling.n`` titles per (ads[i], user_vecs[i]) with HF generate, one prompt at a time.

        The simple reference path for tests and small runs; batched backends live in creator/backends."""
        s = sampling if sampling is not None else SamplingConfig()
        vecs = np.asarray(user_vecs, dtype=np.float32).reshape(len(ads), -1)
        self.model.eval()
        torch.manual_seed(getattr(s, "seed", 0))
        out: list[list[str]] = []
        for ad, vec in zip(ads, vecs, strict=True):
            emb = self.prompt_embeds(ad, vec)[None]  # (1, T, H)
            greedy = bool(getattr(s, "greedy", False))
            kw: dict[str, Any] = dict(
                max_new_tokens=int(getattr(s, "max_new_tokens", 48)),
                do_sample=not greedy,
                num_return_sequences=int(getattr(s, "n", 1)),
                suppress_tokens=self.placeholder_ids,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
            if not greedy:
                kw.update(temperature=float(s.temperature), top_p=float(s.top_p), top_k=int(s.top_k))
            vocab = self.grounding(ad)
            if vocab is not None:
                from transformers import LogitsProcessorList

                rows = [vocab] * int(kw["num_return_sequences"])
                kw["logits_processor"] = LogitsProcessorList([GroundedLogitsProcessor(rows)])
            ids = self.model.generate(
                inputs_embeds=emb,
                attention_mask=torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device),
                **kw,
            )
            texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
            out.append([" ".join(t.strip().split("\n")[0].split()) for t in texts])
        return out

    def generate_batched(self, ads: list[Ad], user_vecs: np.ndarray, sampling: Any = None, *,
                         batch_size: int = 32) -> list[list[str]]:
        """As ``generate``, through the batched HF backend the catalog job serves with (prompts batched, the
        candidates sharing one prompt pass, a grounded row scoring only its allowed tokens): far faster on a
        262k-token vocabulary such as Gemma's. Sampled titles follow the backend's per-request seeds."""
        from creator.backends.base import GenerationRequest
        from creator.backends.hf import HFBackend

        vecs = np.asarray(user_vecs, dtype=np.float32).reshape(len(ads), -1)
        requests = [GenerationRequest(str(i), self.prompt_embeds(ad, vec), self.grounding(ad))
                    for i, (ad, vec) in enumerate(zip(ads, vecs, strict=True))]
        return HFBackend.from_generator(self, batch_size=batch_size).generate(
            requests, sampling if sampling is not None else SamplingConfig())

    # ---- persistence -----------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path, *, save_base: bool | None = None) -> Path:
        """Write the artefact folder. The base weights are written when ``config.base == "base"``."""
        from peft import PeftModel
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(out / "tokenizer")
        save_base = self.config.base == "base" if save_base is None else save_base
        if isinstance(self.model, PeftModel):
            # save_embedding_layers=False: only LoRA (vLLM-servable). The rows the placeholders added are zeros
            # that ensure_vocab rebuilds on load; PEFT's "auto" would copy the whole 262k-row embedding (Gemma)
            self.model.save_pretrained(out / "adapter", selected_adapters=["default"], save_embedding_layers=False)
            base = self.model.get_base_model()
            self._adapter_dir = out / "adapter"
        else:
            base = self.model
        if save_base:
            _save_plain(base, out / "base")
            self.config.base = "base"
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.projector.state_dict().items()},
            str(out / PROJECTOR_FILE),
        )
        (out / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
        self._artefact_dir, self._base_ref = out, self.config.base
        return out

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        trainable: bool = False,
        base_override: str | None = None,
    ) -> PersonalizedGenerator:
        """Load an artefact folder; ``trainable=True`` keeps the adapter and projector trainable (DPO)."""
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not (path / CONFIG_FILE).exists():
            raise FileNotFoundError(
                f"{path} is not a generator artefact (no {CONFIG_FILE}); pass the --out folder "
                "of 'hllm-creator sft' or 'dpo'"
            )
        config = GeneratorConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
        tok = AutoTokenizer.from_pretrained(path / "tokenizer")
        base_ref = base_override or config.base
        base_path = path / "base" if base_ref == "base" else resolve_base(base_ref)
        dtype = getattr(torch, config.dtype)
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
        ensure_vocab(model, tok)
        projector = UserProjector(
            config.d_user, model.config.get_text_config().hidden_size, config.num_user_tokens
        )
        projector.load_state_dict(load_file(str(path / PROJECTOR_FILE)))
        projector.to(dtype)
        attach_user_tokens(model, projector, placeholder_ids(tok, config.num_user_tokens))
        if (path / "adapter").exists():
            model = PeftModel.from_pretrained(model, path / "adapter", is_trainable=trainable)
        model.to(device)
        projector.requires_grad_(trainable)
        gen = cls(model, tok, projector, config)
        gen._adapter_dir = path / "adapter" if (path / "adapter").exists() else None
        gen._artefact_dir, gen._base_ref = path, base_ref
        return gen


def _save_plain(model: Any, out: Path) -> None:
    """Save an HF model without the attached projector (saved on its own) and without injected LoRA layers
    (``q_proj.base_layer.weight`` is written back as ``q_proj.weight``): the plain base, loadable anywhere."""
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith(("user_projector.", "profile_projector.", "aux_heads.")) or ".lora_" in k:
            continue
        state[k.replace(".base_layer.", ".")] = v
    model.save_pretrained(out, state_dict=state)
