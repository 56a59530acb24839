"""Runnable studies and benchmarks: ``python -m sims.NAME``. They only compose library calls."""
