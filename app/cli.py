"""The ``hllm-creator`` command: one console script, each verb a ``module:main`` imported on demand.

    hllm-creator --help
    hllm-creator data inspect examples/office_products_sample --format amazon2018
"""

from __future__ import annotations

import importlib
import logging
import sys

# verb -> (module:function, one-line help). Only verbs that work are listed.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("data_pipelines.inspect:main", "inspect, validate, convert or sample a catalog (ads, users, logs)"),
    "build-cot": ("data_pipelines.cot:main", "build the CoT dataset (profiles, titles, fact check, pairs)"),
    "train-encoders": ("training.encoders.train:main", "train the item/user encoders and the user-ad match head"),
    "train-reward": ("training.reward.train:main", "train the CTR reward model (judge) vs baselines"),
    "pretrain-lm": ("training.pretrain_lm:main", "pretrain the tiny offline base LM on catalog texts"),
    "sft": ("training.sft:main", "LoRA SFT of the generator with soft user tokens and aux losses"),
    "install-generator": ("training.install_generator:main",
                          "install a shipped generator adapter (Gemma 3 270M) into an artefact folder"),
    "dpo": ("training.dpo:main", "DPO of the SFT generator on preference pairs (same user vector for both)"),
    "generate": ("app.generate:main", "personalized titles for a catalog per audience segment (resumable)"),
    "check": ("app.check:main", "check your own titles against a channel's rules with the serving guard"),
    "judge": ("eval.judge:main", "compare two systems' titles per (user, ad): Good/Same/Bad and Adv"),
    "eval": ("eval.report:main", "compare systems' titles: factuality, compliance, personalization, report"),
    "demo": ("app.demo:main", "open the Gradio demo for marketers (segments, titles, constraints, export)"),
    "quickstart": ("app.quickstart:main", "run the main job on the bundled sample and summarise it"),
}


# Third-party modules whose FutureWarnings (deprecations inside their own code) the project cannot fix;
# a FutureWarning raised on the project's own call still shows, so the call gets fixed instead.
THIRD_PARTY_WARNERS = ("transformers", "torch", "trl", "peft", "accelerate", "sentence_transformers",
                       "huggingface_hub", "tokenizers", "datasets", "sklearn", "faiss", "gradio", "pyarrow",
                       "pandas", "ray", "vllm")
# faiss.loader probes for AVX2/AVX512 builds and logs each miss as INFO with a ModuleNotFoundError text
_FAISS_PROBE = ("Loading faiss with", "Could not load library with", "swigfaiss_avx")


class QuietThirdParty(logging.Filter):
    """Drops faiss's CPU-feature probe lines (they read like failures; the generic build loads fine)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(text in message for text in _FAISS_PROBE)


def quiet_third_party_noise() -> None:
    """Filter library noise at the CLI entry (not in the library, not only in tests)."""
    import warnings

    logging.getLogger("faiss.loader").addFilter(QuietThirdParty())
    pattern = r"^(" + "|".join(THIRD_PARTY_WARNERS) + r")(\.|$)"
    warnings.filterwarnings("ignore", category=FutureWarning, module=pattern)


def _usage() -> str:
    width = max(len(v) for v in COMMANDS)
    lines = ["usage: hllm-creator <command> [options]", "", "commands:"]
    lines += [f"  {verb:<{width}}  {text}" for verb, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'hllm-creator <command> --help' for a command's options and an example."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from_shell = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from creator import __version__

        print(f"hllm-creator {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in COMMANDS:
        print(f"hllm-creator: unknown command {verb!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if from_shell:
        sys.argv[0] = f"hllm-creator {verb}"  # the verb parsers' usage lines read their name from here
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party_noise()
    module_name, func_name = COMMANDS[verb][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    from creator.records.errors import DataError

    try:
        return int(func(rest) or 0)
    except DataError as err:  # bad input: one clear message, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
