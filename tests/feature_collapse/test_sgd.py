"""The SGD trainer: learns a small task, is deterministic, resumes exactly, fails clearly."""

import numpy as np
import pytest

from refimpl.errors import InputError, RunError
from refimpl.feature_collapse import data, settings, sgd


@pytest.fixture(scope="module")
def task():
    return data.make_task(3, 30, 5, 40, 5, freq="zipf", seed=11)


def _cfg(**kw):
    base = dict(d=16, epochs=4, batch=20, lr=0.5, layernorm=True, decay_W=False, test_every=2)
    return settings.TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("ln", [False, True], ids=["h", "h*"])
def test_small_run_reaches_full_train_accuracy(task, ln):
    result = sgd.train(task, _cfg(epochs=40, layernorm=ln, decay_W=not ln, lr=0.5 if ln else 2.0))
    assert result.train_accuracy == 1.0, result.history[-1]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 10
    assert 0.0 <= result.test_accuracy <= 1.0


def test_same_seed_gives_identical_weights_and_other_seed_does_not(task):
    a, b, c = (sgd.train(task, _cfg(seed=s)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.U, b.U)
    assert not np.array_equal(a.W, c.W)


def test_resume_continues_exactly_as_the_uninterrupted_run(task, tmp_path):
    ckpt = tmp_path / "run.npz"
    full = sgd.train(task, _cfg(epochs=4))
    sgd.train(task, _cfg(epochs=2), checkpoint=ckpt)
    resumed = sgd.train(task, _cfg(epochs=4), checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.W, full.W)
    np.testing.assert_array_equal(resumed.U, full.U)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]


def test_init_is_pytorch_default_over_1000():
    W, U = sgd.init_params(500, 40, 30, 5, seed=0)
    assert W.shape == (40, 500) and U.shape == (30, 200) and W.dtype == np.float32
    assert np.std(W) == pytest.approx(1e-3, rel=0.02)                          # N(0, 1)/1000
    bound = 1e-3 / np.sqrt(200)
    assert np.max(np.abs(U)) <= bound and np.std(U) == pytest.approx(bound / np.sqrt(3), rel=0.03)


def test_divergence_names_the_step(task):
    with pytest.raises(RunError, match=r"diverged: the loss became .* at epoch 1, step \d+"):
        sgd.train(task, _cfg(layernorm=False, lr=1e30, init_scale=1.0))


def test_unreadable_checkpoint_is_a_one_line_error(task, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    for path, message in ((bad, "is not a checkpoint written by refimpl"), (tmp_path / "missing.npz",
                                                                             "does not exist")):
        with pytest.raises(InputError, match=message) as info:
            sgd.train(task, _cfg(), checkpoint=path, resume=True)
        assert "\n" not in str(info.value)


def test_checkpoint_of_other_settings_is_refused(task, tmp_path):
    ckpt = tmp_path / "run.npz"
    sgd.train(task, _cfg(epochs=1), checkpoint=ckpt)
    with pytest.raises(InputError, match="written with different settings: lr is 0.5 there, 0.1 here"):
        sgd.train(task, _cfg(epochs=2, lr=0.1), checkpoint=ckpt, resume=True)


@pytest.mark.parametrize("kw, message", [(dict(lr=-1.0), "lr"), (dict(d=0), "d must"),
                                         (dict(batch=0), "batch"), (dict(dtype="float16"), "dtype")])
def test_bad_settings_raise(kw, message):
    with pytest.raises(InputError, match=message):
        _cfg(**kw)
