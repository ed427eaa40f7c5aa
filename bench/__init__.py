"""Benchmark figures for Correlator, as ratios against baselines measured in the same run.

Run with ``make bench`` (``python -m bench``). A script, not tests: it measures and reports;
``--strict`` makes it exit non-zero when a target is missed.
"""
