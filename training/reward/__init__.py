"""The judge's training: ``hllm-creator train-reward`` (``train``), its data, fit, evaluation, card and config."""
