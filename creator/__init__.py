"""hllm-creator: personalized, fact-grounded ad titles for every audience segment.

The component library. Importing it has no side effects and it never imports ``training``,
``data_pipelines``, ``eval`` or ``app``.
"""

__version__ = "0.1.0"
