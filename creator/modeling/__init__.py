"""Models: item encoder, user encoder, user model and match head, soft user tokens, generator builders, named
pretrained bases, prompts, and the fluency score (a title's NLL under a reference LM)."""
