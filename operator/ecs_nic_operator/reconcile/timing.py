"""When to take the first look after asking the cloud for something it does asynchronously (a new port turning
ACTIVE, a detached port leaving the list), learnt from what first looks find."""

from __future__ import annotations


class FirstLook:
    """A first look that finds the change not yet done proves it takes longer than that look came: move up to
    it. One that finds it done may have come later than needed: shorten a little. This settles where most
    first looks succeed. (Averaging the time until the change was seen would feed every wait, ours included,
    back in and run up to the cap.)"""

    def __init__(self, initial: float = 1.0, low: float = 0.2, high: float = 10.0) -> None:
        self.delay = initial
        self._low, self._high = low, high

    def seen(self, done: bool, elapsed: float) -> None:
        """A first look, elapsed seconds after the cloud accepted the request, found the change done or not."""
        delay = self.delay * 0.97 if done else max(self.delay, 1.1 * elapsed)
        self.delay = min(self._high, max(self._low, delay))


def poll_max_age(poll_min: float, latency: float) -> float:
    """How long before a poll of a DOWN port a server's list may have been sent and still answer it: twice the
    shortest poll interval, plus the cloud's observed latency. A list shows the server as the cloud read it, up
    to one latency after it was sent, and a list still out counts only if sent within this age: at a fixed
    2 x poll_min (1 s), every poll of a server at L = 2 s found the list out too old and sent its own."""
    return 2.0 * poll_min + max(0.0, latency)
