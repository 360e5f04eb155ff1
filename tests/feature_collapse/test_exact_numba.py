"""The Numba passes of exact_numba against the NumPy reference exact: each pass, and the three fused
(risk0_and_grads), at several shapes, degenerate ones included, to 1e-12 relative to the reference's
largest entry; the log-domain path for extreme scores; independence from the thread count; the checks'
compiled scan passing only what the reference's checks pass; no import of exact from exact_numba."""

import subprocess
import sys
import threading

import numba
import numpy as np
import pytest

from refimpl import InputError
from refimpl.bench.common import max_rel_err
from refimpl.feature_collapse import data, exact, exact_walk, inputs
from refimpl.feature_collapse import exact_numba as kernels
from refimpl.feature_collapse import exact_steps as steps

TOL = 1e-12


def _mu(rng, sc, kind):
    if kind == "random":
        return rng.dirichlet(np.ones(sc))
    if kind == "with-zero":                                               # µ_1 = 0: sentences of D = 0
        mu = rng.random(sc) + 0.1
        mu[1] = 0.0
        return mu / mu.sum()
    return data.word_frequencies(sc, kind)


def _problem(rng, nc, sc, L, d, K, mu, scale):
    Z = data.latent_variables(nc, L, K, rng)                              # (K, L)
    W = rng.standard_normal((d, nc * sc))                                 # (d, nw)
    U = scale * rng.standard_normal((len(Z), L * d))                      # (K, L·d)
    return W, U, Z, _mu(rng, sc, mu)


def _assert_agree(got, want, what):
    """max |got − want| ≤ TOL · max |want|; a reference that is exactly 0 must be matched to 1e-16."""
    err = max_rel_err([got], [want])
    diff = float(np.max(np.abs(np.asarray(got) - np.asarray(want)), initial=0.0))
    assert err <= TOL or (np.max(np.abs(want), initial=0.0) == 0 and diff <= 1e-16), (what, err, diff)


# (nc, sc, L, d, K, µ, weight scale). K = "all" or a random subset; sc = 1, 2, 3 (a tile of three), 4 (a
# tile of four), 5, 6, 9 (several tiles of three), 7 (two tiles of four), padded slots for 1, 2, 5, 7;
# L = 1 (one word), 2 (a block is a class), 3..6; d = 1, 2.
SHAPES = [
    (3, 2, 3, 4, "all", "uniform", 0.5),
    (3, 4, 4, 6, "all", "zipf", 0.5),
    (2, 3, 5, 2, 9, "random", 1.0),
    (4, 3, 2, 5, "all", "random", 3.0),
    (2, 2, 3, 3, 1, "zipf", 0.5),
    (3, 4, 1, 3, "all", "zipf", 1.0),
    (3, 1, 3, 3, "all", "uniform", 1.0),
    (2, 5, 3, 1, "all", "with-zero", 1.0),
    (3, 6, 3, 2, 20, "zipf", 1.0),
    (2, 9, 2, 2, "all", "random", 2.0),
    (2, 2, 6, 2, "all", "with-zero", 1.0),
    (3, 3, 4, 8, 50, "uniform", 0.7),
    (3, 4, 3, 3, 12, "with-zero", 1.5),
    (2, 7, 3, 2, "all", "zipf", 1.0),
]
IDS = ["-".join(map(str, s)) for s in SHAPES]


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_score_tables_agree(rng, shape):
    W, U, Z, _ = _problem(rng, *shape)
    L = Z.shape[1]
    _assert_agree(kernels.score_tables(W, U, L), exact.score_tables(W, U, L), "S")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_risk0_and_phi_agree(rng, shape):
    W, U, Z, mu = _problem(rng, *shape)
    S = exact.score_tables(W, U, Z.shape[1])                              # (K, L, nw)
    (R_ref, Phi_ref), (R, Phi) = exact.risk0_and_phi(S, Z, mu), kernels.risk0_and_phi(S, Z, mu)
    assert Phi.shape == Phi_ref.shape
    _assert_agree(R, R_ref, "R0")
    _assert_agree(Phi, Phi_ref, "Phi")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_lemma_s_agrees(rng, shape):
    W, U, Z, mu = _problem(rng, *shape)
    _, Phi = exact.risk0_and_phi(exact.score_tables(W, U, Z.shape[1]), Z, mu)
    for got, want, what in zip(kernels.lemma_s(W, U, Phi), exact.lemma_s(W, U, Phi), ("dW0", "dU0"),
                               strict=True):
        _assert_agree(got, want, what)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_risk0_and_grads_agrees(rng, shape):
    """The three passes fused (two compiled calls around the walk) against the reference's in turn."""
    W, U, Z, mu = _problem(rng, *shape)
    for got, want, what in zip(kernels.risk0_and_grads(W, U, Z, mu), exact.risk0_and_grads(W, U, Z, mu),
                               ("R0", "dV0", "dU0"), strict=True):
        _assert_agree(got, want, what)


def test_unchecked_calls_take_any_layout_and_integer_type(rng):
    """check=False skips the checks, not the conversion: Fortran-ordered arrays and int32 latents give
    the bits of the checked call (the compiled steps reshape C-contiguous arrays only)."""
    W, U, Z, mu = _problem(rng, 3, 4, 3, 2, "all", "zipf", 1.0)
    Wf, Uf, Zf = np.asfortranarray(W), np.asfortranarray(U), np.asfortranarray(Z.astype(np.int32))
    S = kernels.score_tables(W, U, 3)                                     # (K, L, nw)
    R0, Phi = kernels.risk0_and_phi(S, Z, mu)                             # float, (nw, K, L)
    pairs = [(kernels.score_tables(Wf, Uf, 3, check=False), [S]),
             (kernels.risk0_and_phi(np.asfortranarray(S), Zf, mu, check=False), (R0, Phi)),
             (kernels.lemma_s(Wf, Uf, np.asfortranarray(Phi), check=False), kernels.lemma_s(W, U, Phi)),
             (kernels.risk0_and_grads(Wf, Uf, Zf, mu, check=False), kernels.risk0_and_grads(W, U, Z, mu))]
    for got, want in pairs:
        got = [got] if isinstance(got, np.ndarray) else got
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_risk0_and_grads_refuses_overflowed_scores_alike(rng):
    W, U, Z, mu = _problem(rng, 3, 4, 3, 2, "all", "zipf", 1.0)
    W[1, 5], U[4, 3] = 1e160, 1e160                                       # S[4, 1, 5] = 1e320: inf
    texts = []
    for backend in (exact, kernels):
        with pytest.raises(InputError) as info:
            backend.risk0_and_grads(W, U, Z, mu)
        texts.append(str(info.value))
    assert texts[0] == texts[1] and "overflowed to inf at index (4, 1, 5)" in texts[0]


def test_check_inputs_scans_plain_arrays_and_sends_the_rest_to_the_reference(rng, monkeypatch):
    """C-contiguous float64 / int64 arrays of consistent shapes take the compiled scan and come back as
    they are; lists, float32, int32 and non-contiguous arrays go through the reference's checks and come
    back converted as there."""
    W, U, Z, mu = _problem(rng, 3, 4, 3, 2, "all", "zipf", 1.0)
    Z = Z.astype(np.int64)
    reference = inputs.risk_inputs
    calls = []
    monkeypatch.setattr(inputs, "risk_inputs", lambda *a: calls.append(a) or reference(*a))
    got = kernels.check_inputs(W, U, Z, mu)
    assert not calls and all(g is a for g, a in zip(got, (W, U, Z, mu), strict=True))
    for args in [(W.tolist(), U, Z, mu), (W, U.astype(np.float32), Z, mu), (W, U, Z.astype(np.int32), mu),
                 (np.asfortranarray(W), U, Z, mu), (W, U, Z, mu.tolist())]:
        got, want = kernels.check_inputs(*args), reference(*args)
        assert calls and all(g.dtype == w.dtype and np.array_equal(g, w)
                             for g, w in zip(got, want, strict=True))
        calls.clear()


def _split_mu(rng, sc):
    """A µ whose pairwise sum (the reference's) lies just outside 1 ± 1e-9 and whose in-order sum just
    inside: its last entry moved by ulps of 1 until the two sums fall on either side."""
    for _ in range(50):
        mu = rng.dirichlet(np.ones(sc)) * (1.0 + 1e-9)
        last = mu[-1]
        for k in range(-200, 200):
            mu[-1] = last + k * 2.0**-53
            in_order = 0.0
            for x in mu:
                in_order += x
            if abs(float(mu.sum()) - 1.0) > 1e-9 and abs(in_order - 1.0) <= 1e-9:
                return mu
    raise AssertionError(f"no split µ found for sc = {sc}")


@pytest.mark.parametrize("sc", [1, 2, 3, 7, 64, 4096])
def test_values_ok_passes_only_sums_the_reference_accepts(rng, sc):
    """µ summing to 1 ± δ, δ across the reference's 1e-9 boundary: the compiled scan's True (µ summed in
    order) implies the reference's acceptance (µ summed pairwise), and it is True well inside. From
    sc = 64 on the two sums can fall on either side of the boundary; the scan says False there."""
    W, U, Z = np.ones((1, sc)), np.ones((1, 1)), np.zeros((1, 1), dtype=np.int64)
    base = rng.dirichlet(np.ones(sc))
    for delta in np.concatenate([np.linspace(-1.2e-9, 1.2e-9, 49), [0.0, 3e-10, -3e-10]]):
        mu = base * (1.0 + delta)
        ok = steps.values_ok(W, U, Z, mu, 1)
        try:
            inputs.risk_inputs(W, U, Z, mu)
            accepted = True
        except InputError:
            accepted = False
        assert accepted or not ok, (sc, delta)
        if abs(delta) <= 3e-10:
            assert ok, (sc, delta)
    if sc >= 64:
        mu = _split_mu(rng, sc)
        with pytest.raises(InputError, match="mu must sum to 1"):
            inputs.risk_inputs(W, U, Z, mu)
        assert not steps.values_ok(W, U, Z, mu, 1)


def _score_spread(S, Z, mu):
    """max over sentences of max_k h(x)_k − min_k h(x)_k."""
    K, L, _ = S.shape
    B, _ = exact.word_choices(mu, L)                                      # (sc^L, L)
    tokens = Z[:, None, :] * mu.shape[0] + B[None]                        # (K, sc^L, L) every sentence
    h = sum(S[:, l, tokens[..., l]] for l in range(L))                    # (K classes, K, sc^L)
    return float(np.max(h.max(axis=0) - h.min(axis=0)))


@pytest.mark.parametrize("scale, spread, every", [(60.0, 1e3, False), (300.0, 5e3, False),
                                                  (3000.0, 5e4, True)])
def test_extreme_scores_take_the_log_domain_path_and_agree(rng, scale, spread, every):
    """Score spreads of 1e3–1e5 across a sentence: the product of exponentials underflows (s(x) < 2^-960)
    for some or all sentences; those are redone in the log domain and the result still matches."""
    W, U, Z, mu = _problem(rng, 3, 4, 4, 6, "all", "zipf", scale)
    S = exact.score_tables(W, U, 4)
    R, Phi, n_log = kernels.enumerate_sentences(S, Z, mu)
    R_ref, Phi_ref = exact.risk0_and_phi(S, Z, mu)
    n = data.sentence_count(len(Z), 4, 4)
    assert _score_spread(S, Z, mu) > spread
    assert 0 < n_log and (n_log == n) == every, (n_log, n)
    _assert_agree(R, R_ref, "R0")
    _assert_agree(Phi, Phi_ref, "Phi")


@pytest.mark.parametrize("ln_on", [False, True], ids=["h", "h*"])
@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[11], SHAPES[12]], ids=[IDS[1], IDS[11], IDS[12]])
def test_risk_and_grads_backends_agree(rng, shape, ln_on):
    """End to end, h and h* (d ≥ 3: with d = 2 the LayerNorm's gradient is 0 up to rounding)."""
    W, U, Z, mu = _problem(rng, *shape)
    ref = exact.risk_and_grads(W, U, Z, mu, lam=0.01, layernorm=ln_on, backend="numpy")
    got = exact.risk_and_grads(W, U, Z, mu, lam=0.01, layernorm=ln_on, backend="numba")
    for g, w, what in zip(got, ref, ("R", "dW", "dU"), strict=True):
        _assert_agree(g, w, what)


def test_the_leaves_logarithm_matches_numpys():
    """_leaf_logs writes log s out (s's exponent and mantissa from its bits, 2 atanh of the mantissa) so
    that it vectorizes: Σ D log s and F = D/(K s) against np.log over sums from 2^-960 (the log-domain
    threshold) to K, with NaN, 0 (padded leaves) and sums below the threshold counted, not used."""
    scp, K = 8, 243
    Dn = 0.37
    s = np.array([1.0, 243.0, 0.5, 1e-300, 2.0**-960, 2.0**-961, 0.0, np.nan, 1.5, np.sqrt(2.0),
                  np.nextafter(np.sqrt(2.0), 3.0), 0.7071067811865476, 3.3e-7, 1e-100, 7.0, 1e-12])
    rng = np.random.default_rng(0)
    s = np.concatenate([s, np.exp(rng.uniform(-660.0, np.log(K), scp * scp - len(s)))])
    Ssum = s.reshape(scp, scp).copy()                                     # (scp, scp)
    mu2 = rng.uniform(0.0, 1.0, (scp, scp))                               # (scp, scp)
    F, Mb = np.full((scp, scp), -1.0), np.zeros(scp * scp, dtype=np.int64)
    risk, fell = exact_walk._leaf_logs(Ssum.ravel(), mu2.ravel(), Dn, K, scp * scp, F.ravel(), Mb)
    D = Dn * mu2.ravel()
    ok = s >= exact_walk.SMALLEST_SUM
    with np.errstate(divide="ignore", invalid="ignore"):
        want_F = np.where(ok, D / (K * s), 0.0)
        terms = np.where(ok, D * np.log(s), 0.0)
    assert fell == int(np.sum(~ok)) == 4                                  # 2^-961, 0, NaN, 1e-300
    assert risk == pytest.approx(float(np.sum(terms)), rel=1e-15, abs=1e-15 * float(np.sum(np.abs(terms))))
    np.testing.assert_allclose(F.ravel(), want_F, rtol=1e-15, atol=0.0)
    logs = np.where(ok & (D > 0), terms / np.where(D > 0, D, 1.0), 0.0)   # each log s on its own
    np.testing.assert_allclose(logs, np.where(ok & (D > 0), np.log(np.where(ok, s, 1.0)), 0.0),
                               rtol=4e-16, atol=2e-16)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("spins", [kernels.SPINS, 0])
def test_result_does_not_depend_on_the_thread_count(rng, monkeypatch, spins):
    """The chunks are fixed by the sizes, so one thread and two give the same bits, whether the caller
    polls for the helper's last chunks or (spins = 0) blocks on it at once."""
    monkeypatch.setattr(kernels, "SERIAL_WORK", 0)                      # no single-thread shortcut
    monkeypatch.setattr(kernels, "SPINS", spins)
    W, U, Z, mu = _problem(rng, 3, 4, 4, 6, "all", "zipf", 0.5)
    S = kernels.score_tables(W, U, 4)
    assert kernels.n_chunks_for(len(Z), 4, 4, 12) > 1
    old = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append(kernels.risk0_and_phi(S, Z, mu))
    finally:
        numba.set_num_threads(old)
    (R_one, Phi_one), (R_two, Phi_two) = results
    assert R_one == R_two and np.array_equal(Phi_one, Phi_two)


def _walk_args(rng, n):
    """chunks()'s arguments up to claims for a K = 81, sc = 4, L = 4 problem cut into n chunks, and zeroed
    (phi, stats, risk), as the kernel makes them."""
    W, U, Z, mu = _problem(rng, 3, 4, 4, 6, "all", "zipf", 0.5)
    St, c, E = steps.tables(kernels.score_tables(W, U, 4), kernels._padded(len(Z)))
    mu2, bounds, _, risk, phi, stats = steps.walk_arrays(St, len(Z), mu, 4, n)  # sc = 4: 4 slots
    return (E, St, c, Z.astype(np.int64), mu, mu2, bounds), (phi, stats, risk)


def test_each_chunk_is_computed_once_by_whoever_claims_it(rng):
    """chunks() takes chunks from claims[0] until none is left and counts each in claims[1]; a second
    caller on the same claims finds none, and finished() sees the count. A caller (call = 0) rings the
    bell on entry, and finished() when it gives up polling."""
    n = 4
    args, (phi, stats, risk) = _walk_args(rng, n)
    claims, bell = np.array([1, 0], dtype=np.int64), np.zeros(1, dtype=np.int64)  # chunk 0 already taken
    assert exact_walk.chunks(*args, claims, phi, stats, risk, bell, 0, 0) == n - 1
    assert claims.tolist() == [n + 1, n - 1] and risk[0] == 0 and not phi[0].any() and risk[1:].all()
    assert exact_walk.finished(claims, n - 1, 1, bell) and bell[0] == 1
    assert not exact_walk.finished(claims, n, 10, bell) and bell[0] == 2  # gives up: rings the bell
    before = phi.copy()
    assert exact_walk.chunks(*args, claims, phi, stats, risk, bell, 0, 0) == 0
    assert np.array_equal(phi, before) and bell[0] == 3


def test_a_helper_lingers_until_the_next_call_rings(rng):
    """A helper of call 5 with nothing left to claim polls the bell until a caller rings it (bell 5 -> 6),
    not before, and without ringing it itself; with few polls it returns on its own."""
    args, outputs = _walk_args(rng, 2)
    done = np.array([2, 2], dtype=np.int64)                               # no chunk left to claim
    bell = np.array([5], dtype=np.int64)
    assert exact_walk.chunks(*args, done, *outputs, bell, 5, 1000) == 0 and bell[0] == 5
    helper = threading.Thread(target=exact_walk.chunks, args=(*args, done, *outputs, bell, 5, 1 << 62),
                              daemon=True)                               # a failure leaves it polling
    helper.start()
    helper.join(0.2)
    assert helper.is_alive() and bell[0] == 5                             # still polling
    assert exact_walk.chunks(*args, done, *outputs, bell, 0, 0) == 0      # the next call's caller rings
    helper.join(10.0)
    assert not helper.is_alive() and bell[0] == 6 and not outputs[0].any()


def test_the_kernel_module_does_not_import_the_reference():
    code = ("import sys; import refimpl.feature_collapse.exact_numba; "
            "print('refimpl.feature_collapse.exact' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert data.sentence_count(243, 4, 5) == 248_832
