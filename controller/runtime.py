"""The controller's background parts, started and stopped in order: DB, broker, ingest, planner.

``edgefleet controller run`` builds one :class:`ControllerRuntime`, starts it,
then serves ``controller.app.create_app(settings)`` with uvicorn; the app
finds the runtime (ingest stats, command publisher, enrollment) on
``app.state.runtime``.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from sqlalchemy import Engine

from controller import crud
from controller.broker.embedded import LOOPBACK, EmbeddedAuth, EmbeddedBroker
from controller.broker.passwords import generate_password, hash_password
from controller.core.config import ControllerSettings
from controller.core.db import create_db_engine, migrate, session_scope, startup_lock
from controller.core.lease import PLANNER_LEASE, Lease, replica_name
from controller.enrollment import Enrollment
from controller.ingest.commands import CommandPublisher
from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from controller.plans.apply import PlanApplier, RolloutConfig
from controller.plans.loop import PlannerLoop
from controller.plans.profiler import Profiler, profiling_settings

logger = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ControllerRuntime:
    """Owns the engine, the embedded broker (if any), ingest and the command publisher."""

    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.broker: EmbeddedBroker | None = None
        self.ingest: IngestService | None = None
        self.commands: CommandPublisher | None = None
        self.enrollment: Enrollment | None = None
        self.planner: PlannerLoop | None = None

    def start(self) -> ControllerRuntime:
        """Migrate the database, start the broker if embedded, then ingest."""
        settings = self.settings
        self.engine = create_db_engine(settings.db_url, echo=settings.database_echo)
        with startup_lock(self.engine):
            migrate(self.engine)
            if settings.device_classes_dir is not None:
                with session_scope(self.engine) as session:
                    directory = settings.device_classes_dir
                    loaded = crud.load_device_classes(session, directory=directory)
                logger.info("loaded %d device classes from %s", len(loaded), directory)
        self.enrollment = Enrollment(self.engine, settings)
        self.ingest = IngestService(
            self.engine, self._mqtt_options(), topics=settings.topics, config=self._ingest_config()
        ).start()
        self.commands = CommandPublisher(
            self.engine, self.ingest.connection, topics=settings.topics
        )
        if not self.ingest.connection.wait_connected(15):
            logger.warning("MQTT broker not reachable yet; ingest keeps retrying in the background")
        if settings.planner_loop:
            self.planner = self._planner_loop(self.engine, self.commands).start()
        return self

    def _planner_loop(self, engine: Engine, commands: CommandPublisher) -> PlannerLoop:
        """The loop under the planner lease: with replicas, one of them runs it at a time."""
        settings = self.settings
        lease = Lease(
            engine,
            PLANNER_LEASE,
            replica_name(settings.mqtt_client_id),
            ttl_s=settings.planner_lease_ttl_s,
        )
        profiler = None
        if settings.planner_auto_profile:
            profiler = Profiler(
                engine,
                commands,
                model_url=settings.model_file_url,
                profiling=profiling_settings(settings),
                fence=lease.fence,
            )
        return PlannerLoop(
            engine,
            PlanApplier(
                engine,
                commands,
                model_url=settings.model_file_url,
                config=RolloutConfig(timeout_s=settings.planner_rollout_timeout_s),
                fence=lease.fence,
            ),
            auto_apply=settings.planner_auto_apply,
            interval_s=settings.planner_interval_s,
            profiler=profiler,
            profile_interval_s=settings.planner_profile_interval_s,
            lease=lease,
        )

    def _mqtt_options(self) -> MqttOptions:
        settings = self.settings
        common = {
            "client_id": settings.mqtt_client_id,
            "protocol": settings.effective_mqtt_protocol,
            "session_expiry_s": settings.mqtt_session_expiry_s,
            "keepalive_s": settings.mqtt_keepalive_s,
        }
        if settings.broker_url is None:
            return self._start_embedded_broker(common)
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return MqttOptions.from_url(
            settings.broker_url, username=settings.mqtt_username, password=password, **common
        )

    def _start_embedded_broker(self, common: dict[str, Any]) -> MqttOptions:
        """Start amqtt with the registry's logins; the controller logs in like anyone else."""
        settings = self.settings
        host = settings.embedded_broker_host
        port = settings.embedded_broker_port or _free_port(host)
        anonymous = settings.embedded_broker_allow_anonymous
        if anonymous is None:
            anonymous = host in LOOPBACK
        secret = settings.mqtt_password
        password = secret.get_secret_value() if secret else generate_password()
        auth = EmbeddedAuth(
            db_url=settings.db_url,
            controller_user=settings.mqtt_username,
            controller_password_hash=hash_password(password),
            topic_prefix=settings.topic_prefix,
            allow_anonymous=anonymous,
        )
        self.broker = EmbeddedBroker(host=host, port=port, auth=auth).start()
        return MqttOptions(
            host=host, port=port, username=settings.mqtt_username, password=password, **common
        )

    def _ingest_config(self) -> IngestConfig:
        settings = self.settings
        return IngestConfig(
            batch_size=settings.ingest_batch_size,
            flush_interval_s=settings.ingest_flush_interval_s,
            queue_size=settings.ingest_queue_size,
            keep_payload_bytes=settings.dead_letter_payload_bytes,
            share_group=settings.mqtt_share_group,
            ledger_retention_s=settings.ingest_ledger_retention_s,
        )

    def stop(self) -> None:
        """Stop the planner loop, ingest (storing what is queued), the broker, the engine."""
        if self.planner is not None:
            self.planner.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.engine is not None:
            self.engine.dispose()
        logger.info("controller runtime stopped (ingest drained, broker closed)")
