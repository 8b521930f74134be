"""The first-look delay learns from evidence and never runs away on our own waits."""

from __future__ import annotations

from ecs_nic_operator.reconcile.timing import FirstLook, poll_max_age


def test_late_successful_looks_do_not_lengthen_the_delay() -> None:
    look = FirstLook(initial=2.0)
    for _ in range(50):
        look.seen(True, 9.0)  # found done, but only because the look itself waited (a busy limiter)
    assert look.delay < 2.0


def test_a_look_that_came_too_early_moves_the_delay_past_it_within_bounds() -> None:
    look = FirstLook(initial=1.0)
    look.seen(False, 2.0)
    assert abs(look.delay - 2.2) < 1e-9
    look.seen(False, 0.5)  # an earlier failure proves nothing new
    assert abs(look.delay - 2.2) < 1e-9
    look.seen(False, 60.0)
    assert look.delay == 10.0
    for _ in range(500):
        look.seen(True, 0.1)
    assert look.delay == 0.2


def test_a_poll_accepts_a_list_sent_up_to_one_latency_earlier() -> None:
    assert poll_max_age(0.5, 0.0) == 1.0
    assert poll_max_age(0.5, 2.0) == 3.0  # a list still out for 2 s at L = 2 s is as fresh as one just sent
    assert poll_max_age(0.5, -1.0) == 1.0
