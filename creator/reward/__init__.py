"""The judge: p(click | user history, title), used to rerank candidates, to build DPO pairs and to evaluate.

This room holds the model itself, importable with no training code:

- ``model``: ``RewardModel``, the judge as one object: ``from_pretrained`` / ``save_pretrained``, ``score`` (with
  the anti-gaming penalties), ``explain``; and the user model it may read user vectors from.
- ``net``: its network, ``RewardNet`` and ``RewardConfig`` (DIN attention of a title over the user's history).
- ``metrics``: AUC, group AUC, log loss, ECE, Platt scaling (the judge's own quality, on held-out clicks).
- ``cooccurrence``: collaborative signals counted on training users (popularity, co-taken items).
- ``gaming``: penalties for titles that try to game a click model (history copy, repetition, length).

Elsewhere: ``hllm-creator train-reward`` trains it (the ``training`` package's reward modules); comparing two
systems with it (Good / Same / Bad, Adv) is ``eval.judge`` (``compare``, ``GuardedJudge``, ``LLMJudge``), and the
report's judge columns are ``eval.report``.
"""
