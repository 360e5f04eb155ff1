"""The DUFM trainer: initializations, both backends taking the same steps, and end points that match
the closed forms of refimpl.dufm.structures and critical (DNC for L = 1, the block LR optimum for K = 4,
L = 3)."""

import inspect

import numpy as np
import pytest

from refimpl.dufm import critical, structures
from refimpl.dufm import model as m
from refimpl.dufm import train as tr
from refimpl.errors import InputError


def test_default_steps_are_twenty_e_folds_of_weight_decay():
    assert tr.default_steps(1.0, 1e-3) == 20_000
    assert tr.default_steps(0.1, 1e-3) == 200_000
    assert tr.default_steps(1.0, 1e-4) == 200_000
    assert tr.default_steps(1.0, 0.0) == 20_000


@pytest.mark.parametrize("K,d,L,n", [(3, 5, 2, 1), (4, 4, 3, 2), (10, 12, 1, 3)])
def test_orthogonal_init_has_orthonormal_rows_or_columns_times_gain(K, d, L, n):
    p = tr.init_params(K, d, L, seed=3, n=n, init="orthogonal", gain=0.5)
    assert [x.shape for x in p] == [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d)]
    for x in p:
        small = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
        np.testing.assert_allclose(small, 0.25 * np.eye(min(x.shape)), atol=1e-14)
    q = tr.init_params(K, d, L, seed=3, n=n, init="orthogonal", gain=0.5)
    r = tr.init_params(K, d, L, seed=4, n=n, init="orthogonal", gain=0.5)
    assert all(np.array_equal(a, b) for a, b in zip(p, q, strict=True))
    assert not np.allclose(p[0], r[0])


def test_gaussian_init_is_isotropic_with_variance_gain_squared_over_d():
    p = tr.init_params(10, 400, 2, seed=0, init="gaussian", gain=2.0)
    for x in p:
        assert abs(x.mean()) < 0.01 and x.var() == pytest.approx(4.0 / 400, rel=0.05)


@pytest.mark.parametrize("args,kwargs,match", [
    ((4, 6, 0), {}, "L must be a positive integer, got 0"),          # not silently an L = 1 model
    ((4, 6, -1), {}, "L must be a positive integer, got -1"),
    ((0, 6, 2), {}, "K must be a positive integer, got 0"),
    ((4, 3, 2), {}, "width d = 3 is smaller than the number of classes K = 4"),
    ((4, 6, 2), {"n": 0}, "n must be a positive integer, got 0"),
    ((4, 6, 2), {"init": "he"}, "unknown init 'he'"),
    ((4, 6, 2), {"gain": np.float64(-2.0)}, r"gain must be a finite number > 0, got -2$"),
])
def test_bad_init_input_is_a_one_line_error(args, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        tr.init_params(*args, seed=0, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_trainer_input_is_a_one_line_error():
    p = tr.init_batch(3, 4, 2, [0, 1])
    for kwargs, match in [({"backend": "torch"}, "unknown backend"), ({"steps": 0}, "steps must be"),
                          ({"lr": -1.0}, r"lr must be a finite number > 0, got -1$"),
                          ({"tol": -1.0}, "tol must be"),
                          ({"record_every": -3}, "record_every must be"),
                          ({"check_every": 2.5}, "check_every must be")]:
        args = {"lam": 0.1, "lr": 0.1, "steps": 5, **kwargs}
        with pytest.raises(InputError, match=match) as info:
            tr.gradient_descent(p, **args)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("model_name,power", [("linear", None), ("relu", None), ("mse", 2)])
def test_numba_and_numpy_backends_take_the_same_steps(model_name, power):
    p = tr.init_batch(4, 6, 3, [0, 1, 2], init="gaussian")
    lr = np.array([0.05, 0.05, 0.02]) if model_name == "mse" else np.array([0.2, 0.3, 0.2])   # stable
    kw = dict(lam=np.array([1e-3, 1e-2, 0.1]), lr=lr, steps=120,
              model_name=model_name, power=power, record_every=20)
    a = tr.gradient_descent(p, **kw)
    b = tr.gradient_descent(p, backend="numpy", **kw)
    for x, y in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-10)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-10)


def test_backends_agree_on_tolerance_stops_and_divergence_across_chunks():
    p = tr.init_batch(3, 4, 2, [0, 1, 2], init="gaussian")
    kw = dict(lam=0.05, lr=np.array([0.5, 1.0, 300.0]), steps=12_000, tol=1e-8, check_every=10)
    a = tr.gradient_descent(p, **kw)
    b = tr.gradient_descent(p, backend="numpy", **kw)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    assert a.diverged_at[2] >= 0 and np.all(a.diverged_at[:2] == -1)
    assert np.all(a.steps[:2] % 10 == 1) and np.all(a.grad_norm[:2] <= 1e-7)
    rows = tr.summarize(a)
    assert rows[2]["end"] == "diverged"


def test_a_tolerance_met_on_the_last_step_of_a_chunk_stops_the_run(monkeypatch):
    p = tr.init_batch(3, 4, 2, [0], init="gaussian")
    kw = dict(lam=0.05, lr=0.5, steps=5000, tol=1e-6, check_every=1)
    ref = tr.gradient_descent(p, backend="numpy", **kw)
    assert ref.steps[0] < 5000
    monkeypatch.setattr(tr, "CHUNK", int(ref.steps[0]))                  # the stop falls on a chunk end
    np.testing.assert_array_equal(tr.gradient_descent(p, **kw).steps, ref.steps)


def test_l1_converges_to_the_dnc_optimum_of_the_closed_form():
    """L = 1 (the UFM): DNC is the global optimum (Zhu et al.); GD reaches its loss and structure."""
    K, d, L, lam = 4, 6, 1, 1e-2
    trained = tr.gradient_descent(tr.init_batch(K, d, L, [0, 1]), lam=lam, lr=1.0, steps=6000)
    best = critical.optimal_dnc(K, L, lam)
    for row in tr.summarize(trained):
        assert row["end"] == "DNC" and row["rank"] == K - 1
        assert row["loss"] == pytest.approx(best.loss, rel=1e-9)
        assert max(row["balancedness"]) < 1e-7 and max(row["nc2"][1:]) < 1e-7 and max(row["nc3"]) < 1e-7


def test_k4_l3_reaches_the_block_low_rank_optimum_below_dnc():
    """Theorem 1 (K ≥ 4, L ≥ 3): the block LR structure beats DNC; GD from seed 0 lands on it."""
    K, d, L, lam = 4, 6, 3, 1e-2
    trained = tr.gradient_descent(tr.init_batch(K, d, L, [0, 1], init="gaussian"), lam=lam, lr=1.0,
                                  steps=6000)
    rows = tr.summarize(trained)
    lr_best, dnc_best = structures.optimal_lr(K, L, lam), critical.optimal_dnc(K, L, lam)
    assert lr_best.loss < dnc_best.loss
    assert (rows[0]["end"], rows[0]["rank"]) == ("low rank", 2)
    assert rows[0]["loss"] == pytest.approx(lr_best.loss, rel=1e-9)
    assert rows[1]["end"] == "DNC" and rows[1]["loss"] == pytest.approx(dnc_best.loss, rel=1e-9)
    for row in rows:
        assert row["grad_norm"] < 1e-7
        Z = m.forward([x[rows.index(row)] for x in trained.params])[0]
        assert structures.reduced_loss(Z, L, lam) == pytest.approx(row["loss"], rel=1e-9)   # Lemma 1


def test_backends_agree_when_record_and_check_periods_do_not_divide_each_other(monkeypatch):
    """Kernel chunks must be a multiple of both periods: with CHUNK = 20, record_every = 3 and
    check_every = 10 a chunk of 20 would shift the kernel's record/check steps after the first chunk."""
    monkeypatch.setattr(tr, "CHUNK", 20)
    p = tr.init_batch(3, 4, 2, [0, 1], init="gaussian")
    kw = dict(lam=0.05, lr=np.array([0.5, 0.3]), steps=300, tol=3e-3, check_every=10, record_every=3)
    a = tr.gradient_descent(p, **kw)
    b = tr.gradient_descent(p, backend="numpy", **kw)
    assert np.all((b.steps > 20) & (b.steps < 300)), b.steps            # stops after the first chunk
    assert np.all(((b.steps - 1) % 3 == 0) | ((b.steps - 1) % 10 == 0))
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-10)        # NaN where not reached, both
    for x, y in zip(a.params, b.params, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-10)


def test_the_default_backend_is_the_packages():
    from refimpl.validate import DEFAULT_BACKEND

    default = inspect.signature(tr.gradient_descent).parameters["backend"].default
    assert default == DEFAULT_BACKEND == "numba"


def test_train_seeds_is_init_batch_then_gradient_descent_then_summarize():
    K, d, L, lam, lr = 3, 4, 2, 0.05, 0.5
    trained, rows, steps = tr.train_seeds(K, d, L, lam=lam, lr=lr, steps=300, seeds=2, init="gaussian",
                                          gain=0.7)
    ref = tr.gradient_descent(tr.init_batch(K, d, L, [0, 1], init="gaussian", gain=0.7), lam=lam, lr=lr,
                              steps=300)
    assert steps == 300 and len(rows) == 2
    for x, y in zip(trained.params, ref.params, strict=True):
        np.testing.assert_array_equal(x, y)
    assert rows == tr.summarize(ref)
    assert tr.train_seeds(K, d, 1, lam=1e-3, lr=1.0, steps=0, seeds=1)[2] == tr.default_steps(1.0, 1e-3)


@pytest.mark.parametrize("kwargs,match", [
    ({"seeds": 0}, "seeds must be a positive integer, got 0"),
    ({"lr": 0.0}, "lr must be a finite number > 0, got 0"),
    ({"gain": -1.0}, "gain must be a finite number > 0, got -1"),
    ({"steps": -5}, "steps must be an integer >= 0, got -5"),
    ({"init": "he"}, "unknown init 'he'"),
])
def test_seed_options_are_checked_before_any_run(kwargs, match):
    options = {"seeds": 2, "lr": 0.1, "gain": 1.0, "steps": 10, "init": "orthogonal", **kwargs}
    with pytest.raises(InputError, match=match):
        tr.check_seed_options(**options)
    with pytest.raises(InputError, match=match):
        tr.train_seeds(3, 4, 2, lam=0.1, **options)


def test_a_diverged_run_is_an_error_naming_its_seed_and_step():
    from refimpl.errors import RunError
    with pytest.raises(RunError, match=r"run seed \d+ diverged .* non-finite at step \d+.*smaller lr"):
        tr.train_seeds(3, 4, 2, lam=1e-3, lr=1e6, steps=50, seeds=2, gain=3.0)
