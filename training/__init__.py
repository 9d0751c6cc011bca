"""Training entry points: encoders, reward model, generator (SFT, DPO). Thin wrappers over ``creator``."""
