"""*Feature collapse* (Laurent, von Brecht, Bresson): the data model, the networks h and h*, the exact
true risk, the collapse configurations and Theorems 1–3, and the SGD trainer of its experiments.

Each NumPy reference module that has a hot path has a compiled twin beside it (``model_numba``,
``exact_numba``, ``layernorm_numba``) with the same function names and signatures.
"""
