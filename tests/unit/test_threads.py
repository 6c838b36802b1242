"""The wait-policy exception for a later OpenMP runtime: only alignkit's own PASSIVE is lifted, and
only inside; the user's choice stays."""

from __future__ import annotations

import os

from alignkit.threads import CHOSEN_BY_ALIGNKIT, WAIT_POLICY, library_wait_policy, thread_defaults


def test_alignkits_choice_is_lifted_inside_and_restored(monkeypatch):
    monkeypatch.delenv(WAIT_POLICY, raising=False)
    monkeypatch.delenv(CHOSEN_BY_ALIGNKIT, raising=False)
    monkeypatch.delenv("ALIGNKIT_NO_THREAD_DEFAULTS", raising=False)
    thread_defaults()
    assert os.environ[WAIT_POLICY] == "PASSIVE" == os.environ[CHOSEN_BY_ALIGNKIT]
    with library_wait_policy():
        assert WAIT_POLICY not in os.environ
    assert os.environ[WAIT_POLICY] == "PASSIVE"


def test_the_users_policy_is_kept(monkeypatch):
    monkeypatch.setenv(WAIT_POLICY, "PASSIVE")
    monkeypatch.delenv(CHOSEN_BY_ALIGNKIT, raising=False)
    thread_defaults()  # the user chose: nothing is set or marked
    assert CHOSEN_BY_ALIGNKIT not in os.environ
    with library_wait_policy():
        assert os.environ[WAIT_POLICY] == "PASSIVE"
    # the user changed alignkit's choice afterwards (a child process's environment, say): theirs stays
    monkeypatch.setenv(CHOSEN_BY_ALIGNKIT, "PASSIVE")
    monkeypatch.setenv(WAIT_POLICY, "ACTIVE")
    with library_wait_policy():
        assert os.environ[WAIT_POLICY] == "ACTIVE"


def test_nothing_set_stays_unset(monkeypatch):
    monkeypatch.delenv(WAIT_POLICY, raising=False)
    monkeypatch.setenv("ALIGNKIT_NO_THREAD_DEFAULTS", "1")
    thread_defaults()
    with library_wait_policy():
        assert WAIT_POLICY not in os.environ
    assert WAIT_POLICY not in os.environ
