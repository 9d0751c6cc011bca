"""Models: item encoder, user encoder, soft user tokens, generator builders."""
