"""The controller's background parts, started and stopped in order: DB, broker, ingest, planner.

``edgefleet controller run`` builds one :class:`ControllerRuntime`, starts it,
then serves ``controller.app.create_app`` with the runtime's command publisher,
planning parts, ingest and enrollment (which keeps the local broker's logins in
step), so the loop and the API share them.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from controller import crud
from controller.broker.local import LocalBroker, start_local_broker
from controller.broker.passwords import generate_password
from controller.core.config import ControllerSettings
from controller.core.db import create_db_engine, migrate, session_scope, startup_lock
from controller.core.lease import PLANNER_LEASE, Lease, replica_name
from controller.enrollment import Enrollment, broker_accounts
from controller.ingest.commands import CommandPublisher
from controller.ingest.mqtt import MqttOptions
from controller.ingest.service import IngestConfig, IngestService
from controller.plans.loop import PlannerLoop
from controller.plans.wiring import Planning, build_planning

logger = logging.getLogger(__name__)


class ControllerRuntime:
    """Owns the engine, the local broker (if any), ingest and the command publisher."""

    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self.broker: LocalBroker | None = None
        self.ingest: IngestService | None = None
        self.commands: CommandPublisher | None = None
        self.planning: Planning | None = None
        self.planner: PlannerLoop | None = None
        self.enrollment: Enrollment | None = None

    def start(self) -> ControllerRuntime:
        """Migrate the database, start the local broker unless one is configured, then ingest."""
        settings = self.settings
        self.engine = create_db_engine(settings.db_url, echo=settings.database_echo)
        with startup_lock(self.engine):
            migrate(self.engine)
            if settings.device_classes_dir is not None:
                with session_scope(self.engine) as session:
                    directory = settings.device_classes_dir
                    loaded = crud.load_device_classes(session, directory=directory)
                logger.info("loaded %d device classes from %s", len(loaded), directory)
        options = self._mqtt_options(self.engine)
        self.enrollment = Enrollment(self.engine, settings, broker=self.broker)
        self.ingest = IngestService(
            self.engine, options, topics=settings.topics, config=self._ingest_config()
        ).start()
        self.commands = CommandPublisher(
            self.engine, self.ingest.connection, topics=settings.topics
        )
        self.planning = build_planning(self.engine, self.commands, settings)
        if not self.ingest.connection.wait_connected(15):
            logger.warning("MQTT broker not reachable yet; ingest keeps retrying in the background")
        if settings.planner_loop:
            self.planner = self._planner_loop(self.engine, self.commands).start()
        return self

    def _planner_loop(self, engine: Engine, commands: CommandPublisher) -> PlannerLoop:
        """The loop under the planner lease: with replicas, one of them runs it at a time.

        Its applier and profiler are fenced by the lease; the API's (``self.planning``)
        are not, so an operator's apply or profiling round works on any replica.
        """
        settings = self.settings
        lease = Lease(
            engine,
            PLANNER_LEASE,
            replica_name(settings.mqtt_client_id),
            ttl_s=settings.planner_lease_ttl_s,
        )
        planning = build_planning(engine, commands, settings, fence=lease.fence)
        return PlannerLoop(
            engine,
            planning.applier,
            auto_apply=settings.planner_auto_apply,
            interval_s=settings.planner_interval_s,
            profiler=planning.profiler if settings.planner_auto_profile else None,
            profile_interval_s=settings.planner_profile_interval_s,
            grader=planning.grader,
            lease=lease,
        )

    def _mqtt_options(self, engine: Engine) -> MqttOptions:
        """How ingest connects: to the configured broker, else to a local one started here."""
        settings = self.settings
        secret = settings.mqtt_password
        common = {
            "client_id": settings.mqtt_client_id,
            "session_expiry_s": settings.mqtt_session_expiry_s,
            "keepalive_s": settings.mqtt_keepalive_s,
        }
        if settings.broker_url is not None:
            return MqttOptions.from_url(
                settings.broker_url,
                username=settings.mqtt_username,
                password=secret.get_secret_value() if secret else None,
                protocol=settings.mqtt_protocol or "5",
                **common,
            )
        self.broker, options = start_local_broker(
            settings,
            controller_password=secret.get_secret_value() if secret else generate_password(),
            accounts=lambda: broker_accounts(engine),
            **common,  # type: ignore[arg-type]
        )
        return options

    def _ingest_config(self) -> IngestConfig:
        settings = self.settings
        return IngestConfig(
            batch_size=settings.ingest_batch_size,
            flush_interval_s=settings.ingest_flush_interval_s,
            queue_size=settings.ingest_queue_size,
            keep_payload_bytes=settings.dead_letter_payload_bytes,
            max_future_skew_s=settings.ingest_max_future_skew_s,
            dead_letter_max_rows=settings.dead_letter_max_rows,
            dead_letter_max_bytes=settings.dead_letter_max_bytes,
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
