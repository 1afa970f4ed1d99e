"""What ``edgefleet doctor`` reports: checks that are ok, warn or fail, each with its fix.

Both sides' doctors (agent host, controller host) produce these, so their output and
exit codes read the same; ``--json`` prints :class:`DoctorReport` as is.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class CheckStatus(StrEnum):
    """How a check came out: fail makes ``doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class CheckResult(BaseModel):
    """One check: what was found, and (unless ok) the fix in one sentence."""

    name: str
    status: CheckStatus
    summary: str
    fix: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict, description="what was measured")


class DoctorReport(BaseModel):
    """Every check of one host, in the order they ran."""

    host: str
    checks: list[CheckResult]

    @property
    def failed(self) -> bool:
        """Whether any check failed (the exit code is then 1)."""
        return any(check.status is CheckStatus.FAIL for check in self.checks)


def ok(name: str, summary: str, **facts: Any) -> CheckResult:
    """A passing check."""
    return CheckResult(name=name, status=CheckStatus.OK, summary=summary, facts=facts)


def warn(name: str, summary: str, fix: str, **facts: Any) -> CheckResult:
    """A check that does not stop the host from working, but should be looked at."""
    return CheckResult(name=name, status=CheckStatus.WARN, summary=summary, fix=fix, facts=facts)


def fail(name: str, summary: str, fix: str, **facts: Any) -> CheckResult:
    """A check that stops the host from doing its job."""
    return CheckResult(name=name, status=CheckStatus.FAIL, summary=summary, fix=fix, facts=facts)


class LoginOutcome(BaseModel):
    """How one MQTT login attempt ended (each side's paho adapter makes the attempt)."""

    kind: Literal["ok", "refused-login", "refused", "tls", "unreachable", "no-answer"]
    detail: str = ""


LOGIN_REFUSALS = frozenset({4, 5, 134, 135})
"""CONNACK codes that refuse the login itself: bad user name or password, not authorized
(MQTT 3.1.1 return codes and their MQTT 5 reason codes)."""


def connack_outcome(reason: Any | None, timeout_s: float) -> LoginOutcome:
    """A login attempt's outcome from the broker's CONNACK reason (None: none came)."""
    if reason is None:
        return LoginOutcome(kind="no-answer", detail=f"no CONNACK within {timeout_s:.0f} s")
    if not reason.is_failure:
        return LoginOutcome(kind="ok")
    kind = "refused-login" if reason.value in LOGIN_REFUSALS else "refused"
    return LoginOutcome(kind=kind, detail=str(reason))


def broker_result(
    where: str, user: str | None, outcome: LoginOutcome, login_fix: str
) -> CheckResult:
    """The doctor's broker check from a login attempt; ``login_fix`` says where the login is set."""
    facts = {"broker_url": where, "outcome": outcome.kind}
    if outcome.kind == "ok":
        return ok("broker", f"logged in to {where} as {user or '(anonymous)'}", **facts)
    if outcome.kind in ("refused-login", "refused"):
        summary = f"{where} refused the login of {user!r}: {outcome.detail}"
        return fail("broker", summary, login_fix, **facts)
    if outcome.kind == "tls":
        fix = "give the CA that signed the broker's certificate (tls_ca_file), check its host name"
        return fail("broker", f"TLS with {where} failed: {outcome.detail}", fix, **facts)
    if outcome.kind == "no-answer":
        fix = "check that broker_url points at an MQTT listener (and mqtts:// at a TLS one)"
        return fail("broker", f"{where} did not answer the login: {outcome.detail}", fix, **facts)
    fix = "start the broker (systemctl status mosquitto) or correct broker_url"
    return fail("broker", f"cannot reach {where}: {outcome.detail}", fix, **facts)
