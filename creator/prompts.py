"""Every prompt template of hllm-creator, named and versioned (``<NAME>_V<n>``).

The teacher prompts of the CoT pipeline come first (owner: data pipeline); the generator's own
prompt section is the block at the end of this file.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------------------
# Generator prompt (owner: generator). The student LM sees the ad and the user only as soft tokens written
# at the placeholders {user_tokens}; it answers with the title alone. Short on purpose: the tiny offline
# LM has a 512-token context and every token of the prompt costs training time.
# Changing the text changes the model's inputs: add GENERATOR_PROMPT_V2 instead of editing V1, because a
# trained generator records the prompt version it was trained with and refuses a different one.
# ---------------------------------------------------------------------------------------------------------

GENERATOR_PROMPT_V1 = (
    "Rewrite the ad title for this reader: {user_tokens}\n"
    "Title: {title}\n"
    "{brand_line}"
    "Selling points:\n{selling_points}\n"
    "Keep every fact; add nothing the ad does not say."
)
GENERATOR_PROFILE_PROMPT_V1 = "Describe the reader behind {user_tokens} as a JSON profile."
GENERATOR_PROMPTS = {"v1": (GENERATOR_PROMPT_V1, GENERATOR_PROFILE_PROMPT_V1)}
GENERATOR_PROMPT = GENERATOR_PROMPT_V1
GENERATOR_PROMPT_VERSION = "v1"
