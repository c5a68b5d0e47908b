"""Adapters to other frameworks' contracts: torchrl environments in and out, an rsl_rl-compatible runner (mjlab,
Isaac Lab scripts), mjlab's task registry. The library never imports this package; each framework is imported
lazily inside the module that needs it."""
