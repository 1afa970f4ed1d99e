"""The agent's composition root: builds every part from the settings, starts and stops them.

Start order: outbox, status light, store, serving model, command workers,
chat API, MQTT link (hello and state are set before it connects), reporter.
Stop order is the reverse, and the last message is the retained state
``stopped`` (an unclean exit leaves the broker's ``offline`` will instead).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

from agent import probe
from agent.chat.api import create_chat_app
from agent.chat.metrics import ServingMetrics
from agent.chat.over_mqtt import MqttChatServer
from agent.chat.server import ChatServer
from agent.config import AgentSettings, load_profile, load_settings
from agent.engine.smoke import check_engine
from agent.gpio import Activity, StatusLight
from agent.link.commands import CommandDispatcher, CommandFailed
from agent.link.messenger import Messenger
from agent.link.mqtt import MqttLink
from agent.link.outbox import Outbox, OutboxFull
from agent.models.assign import Assigner, runtime_factory
from agent.models.assignment import ASSIGNMENT_FILE
from agent.models.serving import ModelHost
from agent.models.store import ModelStore
from shared.messages import (
    BenchCommand,
    CachedModel,
    DeviceStatus,
    DownloadProgress,
    EngineReport,
    HeartbeatBody,
    HelloBody,
    IdentifyCommand,
    JudgeCommand,
    StateBody,
)
from shared.topics import Topics

logger = logging.getLogger(__name__)
MB = 1_000_000


def agent_version() -> str:
    """The installed edgefleet version."""
    try:
        return version("edgefleet")
    except PackageNotFoundError:
        return "0+unknown"


class Agent:
    """One device agent; ``start()`` then ``stop()``, or ``run()`` until a signal."""

    def __init__(self, settings: AgentSettings, *, config_path: Any = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.profile = load_profile(settings)
        self.started_at = time.monotonic()
        self.activity = Activity.STARTING
        self.detail: str | None = None
        self.download: DownloadProgress | None = None
        self.outbox = Outbox(
            settings.db_path,
            max_messages=settings.outbox_max_messages,
            max_unconfirmed=settings.outbox_max_unconfirmed,
        )
        self.messenger = Messenger(settings.device_id, self.outbox, Topics(settings.topic_prefix))
        self.metrics = ServingMetrics()
        self.host = ModelHost(settings.chat_queue_size)
        self.store = ModelStore(
            settings.models_dir,
            self.profile.disk_budget_mb * MB,
            base_url=settings.controller_url,
            headers=settings.download_headers(),
            progress=self._on_progress,
        )
        self.assigner = Assigner(
            self.store,
            self.host,
            runtime_factory(lambda: self.profile),
            settings.data_dir / ASSIGNMENT_FILE,
            memory_budget_mb=lambda: self.profile.memory_budget_mb,
        )
        self.dispatcher = CommandDispatcher(self.outbox, self.messenger, self._handlers())
        self.dispatcher.fail_interrupted("interrupted by an agent restart")
        self.link = MqttLink(
            settings,
            self.outbox,
            on_command=self.dispatcher.submit,
            will_payload=self._will,
            on_rejected=self.dispatcher.reject,
        )
        self.messenger.sink = self.link
        self.light: StatusLight | None = None
        self.chat: ChatServer | None = None
        self.chat_over_mqtt: MqttChatServer | None = None
        self.engine: EngineReport | None = None
        self._stop = threading.Event()
        self._reporter = threading.Thread(target=self._report_loop, name="reporter", daemon=True)

    def _handlers(self) -> dict[str, Any]:
        return {
            "assign": self._assign,
            "bench": self._bench,
            "judge": self._judge,
            "reload-config": self._reload_config,
            "identify": self._identify,
        }

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start every part in order; the MQTT link connects in the background."""
        self.light = StatusLight(
            self.profile.gpio,
            mock=self.settings.gpio_mock,
            on_short_press=self.announce,
            on_long_press=self._bench_from_button,
        )
        problem = self._check_engine() or self.assigner.restore(self.settings.initial_model)
        self.host.on_busy = self._on_busy
        self.dispatcher.start()
        if self.settings.chat_enabled:
            self._start_chat()
        if problem is None:
            self.set_activity(Activity.IDLE)
        else:
            self.set_activity(Activity.ERROR, problem)
        self.announce()
        self.link.start()
        self._reporter.start()
        logger.info("agent %s started", self.settings.device_id)

    def _check_engine(self) -> str | None:
        """Run the engine's smoke check in a child before any model is loaded here.

        A broken engine (SIGILL, SIGSEGV) would kill this process at the first load;
        found in a child, it is a reason to report instead. Returns that reason.
        """
        self.engine = check_engine(threads=1)
        if self.engine.ok:
            logger.info("engine ok: %s", self.engine.cpu_backend)
            return None
        logger.error("engine check failed: %s", self.engine.reason)
        return f"engine: {self.engine.reason}"

    def _require_engine(self) -> None:
        """Refuse work that would load a model into a broken engine."""
        if self.engine is not None and not self.engine.ok:
            raise CommandFailed(f"this device's engine cannot run models: {self.engine.reason}")

    def _start_chat(self) -> None:
        token = self.settings.chat_token
        app = create_chat_app(
            self.host,
            self.metrics,
            token=token.get_secret_value() if token else None,
            default_max_tokens=self.settings.chat_max_tokens,
            device_id=self.settings.device_id,
        )
        self.chat = ChatServer(app, self.settings.chat_host, self.settings.chat_port)
        self.chat.start()
        if self.settings.chat_mqtt_concurrent:
            self.chat_over_mqtt = MqttChatServer(
                app,
                self.link.topics,
                self.settings.device_id,
                self.link.publish_chat_reply,
                self.settings.chat_mqtt_concurrent,
            )
            self.link.on_chat_request = self.chat_over_mqtt.submit

    def stop(self) -> None:
        """Stop in reverse order; publish state ``stopped`` and drain the outbox briefly."""
        self._stop.set()
        if self.chat is not None:
            self.chat.stop()
        if self.chat_over_mqtt is not None:
            self.chat_over_mqtt.stop()
        self.dispatcher.stop()
        if self._reporter.is_alive():
            self._reporter.join(timeout=5)
        self.link.stop(self.messenger.encode(self.state_body(DeviceStatus.STOPPED)))
        self.host.close()
        self.store.close()
        if self.light is not None:
            self.light.close()
        self.outbox.close()
        logger.info("agent %s stopped", self.settings.device_id)

    def run(self) -> None:
        """Start, block until ``request_stop()`` (e.g. from a signal handler), then stop."""
        self.start()
        try:
            self._stop.wait()
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Ask ``run()`` to return (safe from a signal handler)."""
        self._stop.set()

    # --- messages --------------------------------------------------------------

    def hello_body(self) -> HelloBody:
        """Hardware, version and cached models, for the retained hello."""
        return HelloBody(
            agent_version=agent_version(),
            device_class=self.profile.name,
            hardware=probe.probe_hardware(self.settings.data_dir),
            cached_models=[
                CachedModel(model_id=m.model_id, sha256=m.sha256, size_bytes=m.size_bytes)
                for m in self.store.models()
            ],
            chat_api_url=(self.settings.chat_public_url or self.chat.url) if self.chat else None,
            engine=self.engine,
        )

    def state_body(self, status: DeviceStatus = DeviceStatus.ONLINE) -> StateBody:
        """Status, serving model and activity, for the retained state (and the will)."""
        serving = self.host.serving
        return StateBody(
            status=status,
            model_id=serving.model_id if serving else None,
            model_sha256=serving.sha256 if serving else None,
            refine=serving.strategy.refines if serving else False,
            strategy=serving.strategy.name if serving else None,
            activity=self.activity.value,
            detail=self.detail,
        )

    def heartbeat_body(self) -> HeartbeatBody:
        """Vital signs, outbox and chat queue depth, and any download under way."""
        return HeartbeatBody(
            uptime_s=time.monotonic() - self.started_at,
            load_1m=probe.load_1m(),
            cpu_percent=psutil.cpu_percent(None),
            mem_available_mb=probe.mem_available_mb(),
            rss_mb=probe.rss_mb(),
            disk_free_mb=probe.disk_free_mb(self.settings.data_dir),
            temperature_c=probe.soc_temperature(),
            outbox_depth=self.outbox.depth(),
            download=self.download,
            queue=self.host.depth(),
        )

    def announce(self) -> None:
        """(Re)set the retained hello and state."""
        self.messenger.retain(self.hello_body())
        self.messenger.retain(self.state_body())

    def set_activity(self, activity: Activity, detail: str | None = None) -> None:
        """Show an activity on the LED and in the retained state."""
        self.activity, self.detail = activity, detail
        if self.light is not None:
            self.light.show(activity)
        self.messenger.retain(self.state_body())

    def _will(self) -> bytes:
        return self.messenger.encode(self.state_body(DeviceStatus.OFFLINE))

    def _report_loop(self) -> None:
        next_heartbeat = next_metrics = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_heartbeat:
                self._report(lambda: self.messenger.send(self.heartbeat_body()))
                next_heartbeat = now + self.settings.heartbeat_interval_s
            if now >= next_metrics:
                self._report(self._send_metrics)
                next_metrics = now + self.settings.metrics_interval_s
            self._stop.wait(max(0.0, min(next_heartbeat, next_metrics) - time.monotonic()))

    def _send_metrics(self) -> None:
        serving = self.host.serving
        self.messenger.send(self.metrics.report(serving.model_id if serving else None))

    @staticmethod
    def _report(send: Any) -> None:
        try:
            send()
        except OutboxFull as exc:  # the report is skipped; what is queued stays and drains
            logger.error("periodic report not queued: %s", exc)
        except Exception:  # noqa: BLE001 - one failed report must not end reporting
            logger.exception("periodic report failed")

    # --- command handlers --------------------------------------------------------

    def _assign(self, command: Any) -> dict[str, Any]:
        self._require_engine()
        try:
            return self.assigner.assign(
                command, on_download=lambda: self.set_activity(Activity.DOWNLOADING)
            )
        finally:
            self.download = None
            if self.host.serving is not None:
                self.set_activity(Activity.IDLE)  # a served model also clears a start-up error
            else:
                self.set_activity(Activity.ERROR, "no model is serving")
            self.announce()

    def _bench(self, command: BenchCommand) -> dict[str, Any]:
        # imported here: the eval set is loaded only when a bench is asked for
        from agent.bench.command import BenchCrashed, prepare_bench, run_bench_command

        self._require_engine()
        self.set_activity(Activity.BENCHMARKING)
        crash: str | None = None
        try:
            job = prepare_bench(
                command,
                store=self.store,
                host=self.host,
                protected=self.assigner.protected(),
                on_download=lambda: self.set_activity(Activity.DOWNLOADING),
                memory_budget_mb=self.profile.memory_budget_mb,
            )
            self.download = None
            if self.activity is not Activity.BENCHMARKING:  # after a download
                self.set_activity(Activity.BENCHMARKING)
            return run_bench_command(
                command,
                job,
                profile=self.profile,
                host=self.host,
                publish=self.messenger.send,
                stopping=self._stop,
            )
        except BenchCrashed as exc:
            crash = str(exc)  # stays in the state detail until the next activity
            raise
        finally:
            self.download = None
            self.set_activity(Activity.IDLE, crash)
            self.announce()  # fetched models are now in the hello's cached_models

    def _judge(self, command: JudgeCommand) -> dict[str, Any]:
        """Grade other devices' answers (the controller chose this device for its judge)."""
        from agent.bench.grading import run_judge_command

        self._require_engine()
        self.set_activity(Activity.BENCHMARKING, "judging")
        try:
            return run_judge_command(
                command,
                store=self.store,
                host=self.host,
                profile=self.profile,
                protected=self.assigner.protected(),
                on_download=lambda: self.set_activity(Activity.DOWNLOADING),
                stopping=self._stop,
            )
        finally:
            self.download = None
            self.set_activity(Activity.IDLE)
            self.announce()

    def _bench_from_button(self) -> None:
        command_id = f"button-{uuid.uuid4().hex[:12]}"
        self.dispatcher.submit_local(BenchCommand(command_id=command_id))

    def _reload_config(self, command: Any) -> dict[str, Any]:
        try:
            fresh = load_settings(self.config_path) if self.config_path else self.settings
            self.profile = load_profile(fresh)
        except ValueError as exc:
            raise CommandFailed(f"configuration not reloaded: {exc}") from None
        self.store.budget_bytes = self.profile.disk_budget_mb * MB
        self.announce()
        note = "broker and chat settings need a restart"
        return {"device_class": self.profile.name, "note": note}

    def _identify(self, command: IdentifyCommand) -> dict[str, Any]:
        if self.light is None or self.light.led is None:
            raise CommandFailed("this device has no status LED")
        self.light.identify(command.seconds)
        return {"seconds": command.seconds}

    def _on_progress(self, model_id: str, done: int, total: int) -> None:
        self.download = DownloadProgress(model_id=model_id, bytes_done=done, bytes_total=total)

    def _on_busy(self, busy: bool) -> None:
        if self.light is not None and self.activity == Activity.IDLE:
            self.light.show(Activity.SERVING if busy else Activity.IDLE)
