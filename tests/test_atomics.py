"""refimpl.atomics: an atomic add hands out every ticket exactly once across GIL-free threads, and an
acquire load in a polling loop sees another thread's write."""

import threading

import numba
import numpy as np
import pytest

from refimpl import atomics

N = 2_000_000       # tickets per thread: milliseconds of overlap (a plain += lost updates in 2 of 3 tries)


@numba.njit(nogil=True)
def _take_tickets(counter, tickets):
    for t in range(tickets.shape[0]):
        tickets[t] = atomics.fetch_add(counter, 0, 1)


@numba.njit(nogil=True)
def _poll(flag, spins):
    """How many polls until flag[0] != 0 (−1: never, within `spins`)."""
    for t in range(spins):
        if atomics.load(flag, 0) != 0:
            return t
    return -1


@numba.njit(nogil=True)
def _add(flag, v):
    return atomics.fetch_add(flag, 0, v)


def _in_threads(*calls):
    """Run each (fn, args) in its own thread, started together."""
    start = threading.Barrier(len(calls))
    threads = [threading.Thread(target=lambda fn=fn, args=args: (start.wait(), fn(*args)))
               for fn, args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_fetch_add_returns_the_old_value_and_adds():
    a = np.array([5, 7], dtype=np.int64)
    assert _add(a[1:], 3) == 7 and _add(a[1:], -10) == 10
    assert a.tolist() == [5, 0]


def test_two_threads_take_every_ticket_exactly_once():
    counter = np.zeros(1, dtype=np.int64)
    mine, theirs = np.full(N, -1, dtype=np.int64), np.full(N, -1, dtype=np.int64)
    _take_tickets(counter, mine[:10])                                     # compile outside the race
    counter[0], mine[:] = 0, -1
    _in_threads((_take_tickets, (counter, mine)), (_take_tickets, (counter, theirs)))
    assert counter[0] == 2 * N
    assert np.array_equal(np.sort(np.concatenate([mine, theirs])), np.arange(2 * N))


def test_a_polling_load_sees_another_threads_write():
    flag = np.zeros(1, dtype=np.int64)
    _poll(flag, 1)
    _add(flag, 0)
    seen = []
    _in_threads((lambda: seen.append(_poll(flag, 1 << 40)), ()), (lambda: _add(flag, 1), ()))
    assert seen[0] >= 0


@pytest.mark.parametrize("bad", [np.zeros(2), np.zeros((2, 2), dtype=np.int64), np.zeros(2, dtype=np.int32)])
def test_only_1d_int64_slots_are_accepted(bad):
    with pytest.raises(numba.core.errors.TypingError):
        _add(bad, 1)
