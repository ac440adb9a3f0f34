"""The ``medrobust`` command line: thin; it parses, calls the library, prints with rich.

One module per command (``run``, ``train``, ``sweep``, ``info``, ``listing``,
``leaderboard``, ``grid``), shared options and consoles in ``common``, the app
and its error handling in ``app``. Domain logic lives in the library
(``model_request``, ``models.describe``, ``report.sweep``, ...), never here.
"""

from robustbench_med.cli.app import app, entry, main

__all__ = ["app", "entry", "main"]
