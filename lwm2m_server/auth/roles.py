"""Operator roles, ordered: each role may do everything the roles below it may."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1  # reads: devices, values, events, rollouts, models, metrics
    OPERATOR = 2  # + device operations, updates, rollouts, model and package uploads
    ADMIN = 3  # + tokens (and, from the dtls branch, device credentials and bootstrap configs)

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: expected one of {', '.join(r.label for r in cls)}") from None
