"""Observe (RFC 7641) facts the client side needs: the notification ordering rule (§3.4)."""

from __future__ import annotations

OBSERVE_WRAP = 1 << 23  # half the 24-bit Observe sequence space
OBSERVE_MAX_SILENCE_S = 128.0  # after this long, any notification is newer (the sequence may have wrapped)


def is_fresher(last: int, last_at: float, new: int, now: float) -> bool:
    """Whether a notification with Observe ``new`` received at ``now`` is newer than the last one (``last``,
    received at ``last_at``), RFC 7641 §3.4: an older one must not replace the observed state."""
    return (
        (last < new and new - last < OBSERVE_WRAP)
        or (last > new and last - new > OBSERVE_WRAP)
        or now > last_at + OBSERVE_MAX_SILENCE_S
    )
