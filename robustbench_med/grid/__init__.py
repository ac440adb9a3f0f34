"""Grids as first-class objects: a TOML grid file, its dependency plan, and executors.

- :mod:`~robustbench_med.grid.spec` reads and validates a grid file (``GridSpec``);
- :mod:`~robustbench_med.grid.plan` turns it into work: trainings (surrogates included) before the
  evaluation units that need them, units grouped by checkpoint, with what the store already holds;
- :mod:`~robustbench_med.grid.estimate` prices the work from stored timings of similar cells;
- :mod:`~robustbench_med.grid.unit` computes one unit against a private scratch store and hands its
  rows back, so that only the driver writes the results store;
- :mod:`~robustbench_med.grid.local` and :mod:`~robustbench_med.grid.ray_executor` run a plan,
  in-process or as Ray tasks; :mod:`~robustbench_med.grid.run` picks one.

Importing this package is cheap (no torch, no ray).
"""
