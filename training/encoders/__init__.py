"""The user model's training: ``hllm-creator train-encoders`` (``train``), next-item pretraining, ranking metrics."""
