"""What a protection may spend and what it must show for it, as the service's `Policy` message."""

from __future__ import annotations

from dataclasses import dataclass, field

from faceshield.v1 import faceshield_pb2 as pb

from .errors import InputError

PROCESSINGS = ("jpeg95", "jpeg85", "jpeg75", "downscale2")  # and any jpegQ (1-100), downscaleF (2-8); the server checks


@dataclass(frozen=True)
class Policy:
    """`kind` "ensure" (the server's default) keeps protecting an image whose edits are not all
    disrupted, up to `budget_steps` I-FGSM steps, and stops an image as soon as every edit is
    disrupted with `margin` (`early_stop`); "fixed" runs the method's steps once, as the paper.
    `verify_after`: real processing (`PROCESSINGS`) the verdict must also survive. None leaves
    a field to the server's default (`ModelInfo.defaults["policy"]`)."""

    kind: str = "ensure"
    budget_steps: int | None = None
    margin: float | None = None
    early_stop: bool | None = None
    verify_after: tuple[str, ...] = field(default=())

    def to_message(self) -> pb.Policy:
        if self.kind not in ("ensure", "fixed"):
            raise InputError("policy", f"kind must be 'ensure' or 'fixed', got {self.kind!r}")
        unknown = [p for p in self.verify_after if p not in PROCESSINGS]
        if unknown:
            raise InputError("policy", f"unknown processing {unknown[0]!r}; choose from {', '.join(PROCESSINGS)}")
        msg = pb.Policy(kind=self.kind, verify_after=list(self.verify_after))
        if self.budget_steps is not None:
            msg.budget_steps = int(self.budget_steps)
        if self.margin is not None:
            msg.margin = float(self.margin)
        if self.early_stop is not None:
            msg.early_stop = bool(self.early_stop)
        return msg


def to_policy(value: Policy | str | None) -> pb.Policy | None:
    if value is None:
        return None
    return (Policy(value) if isinstance(value, str) else value).to_message()
