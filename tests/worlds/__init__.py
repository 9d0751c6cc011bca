"""The synthetic worlds the tests share, as fixtures (registered by ``tests/conftest.py``; never imported by a
test): see ``tests/README.md``."""
