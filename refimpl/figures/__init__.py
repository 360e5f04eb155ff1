"""Figures: one module per figure family, each exposing ``SPECS`` (see :mod:`refimpl.registry`)."""
