"""User-facing entry points: the ``hllm-creator`` CLI, the quickstart job and the Gradio demo."""
