"""The judge: p(click | user history, title), used to rerank and to evaluate.

- ``model``: ``RewardModel``, load/score/save.
- ``net``: its network (DIN attention of a title over the user's history).
- ``metrics``: AUC, group AUC, log loss, ECE, Platt scaling.
- ``cooccurrence``: collaborative signals counted on training users.
- ``gaming``: penalties for titles that try to game a click model.
"""
