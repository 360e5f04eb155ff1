"""Benchmarks behind ``python cli.py bench``: each validates a kernel against its reference, then
times it. One module per hot path, each exposing ``SPECS`` (see :mod:`refimpl.registry`)."""
