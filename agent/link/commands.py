"""Command dispatch: every command gets an ack echoing its id; duplicates are re-acked only.

Quick commands (identify, reload-config) run on the dispatcher thread; long
ones (assign, bench) are acknowledged ``accepted`` at once and then run one at
a time on a worker thread, ending with ``ok`` or ``error`` and a reason. The
outcome of each command id is kept in the outbox database, so a command
redelivered by the broker (QoS 1), even after a restart, is answered again
without running twice.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from agent.link.messenger import Messenger
from agent.link.outbox import Outbox
from shared.messages import AckBody, AckStatus, AssignCommand, BenchCommand, Body, CmdBody, Envelope

logger = logging.getLogger(__name__)
LONG_COMMANDS = (AssignCommand, BenchCommand)

Handler = Callable[[Any], dict[str, Any] | None]
"""Runs one command; returns ack detail, raises CommandFailed (or anything) to refuse."""


class CommandFailed(RuntimeError):
    """A command that could not be carried out; the message is the ack's reason."""


class CommandDispatcher:
    """Routes commands to handlers by type and acknowledges each exactly by its id."""

    def __init__(self, outbox: Outbox, messenger: Messenger, handlers: dict[str, Handler]) -> None:
        self.outbox = outbox
        self.messenger = messenger
        self.handlers = handlers
        self._quick: queue.Queue[Body | None] = queue.Queue()
        self._long: queue.Queue[Body | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._quick, self._dispatch), daemon=True),
            threading.Thread(target=self._loop, args=(self._long, self._run), daemon=True),
        ]
        self.handled = 0

    def start(self) -> None:
        """Start both workers: quick commands are acked while a long one (assign, bench) runs."""
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the running command finish (up to ``timeout``) and stop."""
        self._quick.put(None)
        self._long.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def submit(self, envelope: Envelope[Any]) -> None:
        """Take a validated ``cmd`` envelope (called from the MQTT thread: never blocks)."""
        body = envelope.body
        if not isinstance(body, CmdBody):
            logger.warning("ignoring non-command message %s", envelope.schema_id)
            return
        self._quick.put(body.command)

    def reject(self, payload: bytes, reason: str) -> None:
        """Answer an invalid command with an error ack, when its command_id can be read."""
        command_id = _command_id_of(payload)
        if command_id is not None:
            self._ack(command_id, AckStatus.ERROR, f"invalid command: {reason}", {})

    def submit_local(self, command: Body) -> None:
        """Queue a command raised on the device itself (e.g. the button), acked like others."""
        self._quick.put(command)

    def _loop(self, inbox: queue.Queue[Body | None], step: Callable[[Any], None]) -> None:
        while (command := inbox.get()) is not None:
            try:
                step(command)
            except Exception:  # noqa: BLE001 - one bad command must not stop the loop
                logger.exception("command dispatch failed")

    def _dispatch(self, command: Any) -> None:
        command_id = command.command_id
        previous = self.outbox.command(command_id)
        if previous is not None:
            logger.info("duplicate command %s: acknowledging again", command_id)
            detail = {**previous.detail, "duplicate": True}
            self._ack(command_id, AckStatus(previous.status), previous.reason, detail)
            return
        if isinstance(command, LONG_COMMANDS):
            accepted = {"type": command.type}
            self.outbox.record_command(command_id, AckStatus.ACCEPTED.value, None, accepted)
            self._ack(command_id, AckStatus.ACCEPTED, None, accepted)
            self._long.put(command)
            return
        self._run(command)

    def _run(self, command: Any) -> None:
        command_id = command.command_id
        handler = self.handlers.get(command.type)
        try:
            if handler is None:
                raise CommandFailed(f"command type {command.type!r} is not supported here")
            detail = handler(command) or {}
        except CommandFailed as exc:
            self._finish(command_id, AckStatus.ERROR, str(exc), {"type": command.type})
        except Exception as exc:  # noqa: BLE001 - reported in the ack, not raised
            logger.exception("command %s (%s) failed", command_id, command.type)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            self._finish(command_id, AckStatus.ERROR, reason, {"type": command.type})
        else:
            self._finish(command_id, AckStatus.OK, None, {"type": command.type, **detail})

    def fail_interrupted(self, reason: str) -> int:
        """Answer commands a previous run accepted but never finished with an error ack.

        Without it the controller would wait for them forever (a bench the agent's
        restart cut off stayed ``accepted``). Returns how many there were.
        """
        interrupted = self.outbox.fail_unfinished_commands(reason)
        for record in interrupted:
            self._ack(record.command_id, AckStatus.ERROR, reason, record.detail)
        return len(interrupted)

    def _finish(
        self, command_id: str, status: AckStatus, reason: str | None, detail: dict[str, Any]
    ) -> None:
        self.outbox.record_command(command_id, status.value, reason, detail)
        self._ack(command_id, status, reason, detail)
        self.handled += 1

    def _ack(
        self, command_id: str, status: AckStatus, reason: str | None, detail: dict[str, Any]
    ) -> None:
        self.messenger.send(
            AckBody(command_id=command_id, status=status, reason=reason, detail=detail)
        )


def _command_id_of(payload: bytes) -> str | None:
    """The command_id of a raw (possibly invalid) command payload, if it has a usable one."""
    try:
        raw = json.loads(payload)
        command_id = raw["body"]["command"]["command_id"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(command_id, str) and 0 < len(command_id) <= 64:
        return command_id
    return None
