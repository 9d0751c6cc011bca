"""Generation backends behind one Protocol: transformers (``hf``), vLLM (lazy), Ray Data (``ray``)."""

from creator.backends.base import (
    GenerationBackend,
    GenerationRequest,
    SamplingConfig,
    plan_batches,
    request_seed,
)

__all__ = ["GenerationBackend", "GenerationRequest", "SamplingConfig", "plan_batches", "request_seed"]
