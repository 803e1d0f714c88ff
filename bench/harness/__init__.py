"""The benchmark suite's parts: peers (the systems under test), the load generator, scenarios,
process statistics and the report. ``bench/run.py`` is the one command that drives them."""
