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
