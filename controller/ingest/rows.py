"""Turn validated envelopes into table rows and device-column updates (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.messages import (
    AckBody,
    BenchBody,
    Envelope,
    HeartbeatBody,
    HelloBody,
    MetricsBody,
    StateBody,
)


def _base(envelope: Envelope[Any], received_at: datetime) -> dict[str, Any]:
    return {
        "device_id": envelope.device_id,
        "seq": envelope.seq,
        "sent_at": envelope.sent_at,
        "received_at": received_at,
    }


def heartbeat_row(envelope: Envelope[HeartbeatBody], received_at: datetime) -> dict[str, Any]:
    """A ``heartbeat`` table row."""
    body = envelope.body
    row = _base(envelope, received_at) | body.model_dump(exclude={"download"})
    row["download"] = body.download.model_dump() if body.download else None
    return row


def metric_row(envelope: Envelope[MetricsBody], received_at: datetime) -> dict[str, Any]:
    """A ``serving_metric`` table row."""
    return _base(envelope, received_at) | envelope.body.model_dump()


def state_row(envelope: Envelope[StateBody], received_at: datetime) -> dict[str, Any]:
    """A ``device_state`` (history) table row."""
    return _base(envelope, received_at) | envelope.body.model_dump(mode="json")


def ack_row(envelope: Envelope[AckBody], received_at: datetime) -> dict[str, Any]:
    """A ``command_ack`` table row."""
    return _base(envelope, received_at) | envelope.body.model_dump(mode="json")


def hello_update(envelope: Envelope[HelloBody]) -> dict[str, Any]:
    """Device columns a ``hello`` sets."""
    body = envelope.body
    hardware = body.hardware
    return {
        "agent_version": body.agent_version,
        "hello_class": body.device_class,
        "arch": hardware.arch,
        "cpu_model": hardware.cpu_model,
        "cores": hardware.cores,
        "ram_total_mb": hardware.ram_total_mb,
        "disk_free_mb": hardware.disk_free_mb,
        "hardware": hardware.model_dump(mode="json"),
        "cached_models": [m.model_dump(mode="json") for m in body.cached_models],
        "chat_api_url": body.chat_api_url,
        "hello_at": envelope.sent_at,
    }


def state_update(envelope: Envelope[StateBody]) -> dict[str, Any]:
    """Device columns a ``state`` sets."""
    body = envelope.body
    return {
        "status": body.status.value,
        "model_id": body.model_id,
        "model_sha256": body.model_sha256,
        "refine": body.refine,
        "activity": body.activity,
        "state_detail": body.detail,
        "state_at": envelope.sent_at,
    }


def heartbeat_update(envelope: Envelope[HeartbeatBody]) -> dict[str, Any]:
    """Device columns a ``heartbeat`` sets."""
    return {
        "last_heartbeat_at": envelope.sent_at,
        "last_heartbeat": envelope.body.model_dump(mode="json"),
    }


def bench_run_row(envelope: Envelope[BenchBody], received_at: datetime) -> dict[str, Any]:
    """A ``benchmark_run`` row: speed, latency and memory of one model on one device."""
    body = envelope.body
    row: dict[str, Any] = {
        "device_id": envelope.device_id,
        "device_class": body.device_class,
        "model_id": body.model.model_id,
        "model_sha256": body.model.sha256,
        "run_id": body.run_id,
        "command_id": body.command_id,
        "seq": envelope.seq,
        "model_ref": body.model.model_dump(mode="json"),
        "judge_model_id": body.judge.model_id if body.judge else None,
        "judge_sha256": body.judge.sha256 if body.judge else None,
        "reference_model_id": body.reference.model_id if body.reference else None,
        "suite_name": body.suite.name if body.suite else None,
        "suite_sha256": body.suite.sha256 if body.suite else None,
        "sent_at": envelope.sent_at,
        "received_at": received_at,
    }
    row |= body.model_dump(
        include={
            "threads", "n_ctx", "kv_cache_type", "pp_tokens", "tg_tokens", "peak_rss_mb",
            "cpu_seconds", "load_1m_before", "load_1m_after", "contended", "started_at",
            "finished_at",
        }
    )  # fmt: skip
    if body.prefill_tok_s:
        row |= {
            "prefill_tok_s": body.prefill_tok_s.mean,
            "prefill_tok_s_std": body.prefill_tok_s.std,
        }
    if body.decode_tok_s:
        row |= {
            "decode_tok_s": body.decode_tok_s.mean,
            "decode_tok_s_std": body.decode_tok_s.std,
            "speed_samples": body.decode_tok_s.n,
        }
    for prefix, latency in (("zero_shot", body.zero_shot), ("refined", body.refined)):
        if latency is not None:
            row |= {
                f"{prefix}_ttft_ms_p50": latency.ttft_ms_p50,
                f"{prefix}_ttft_ms_p95": latency.ttft_ms_p95,
                f"{prefix}_e2e_ms_p50": latency.e2e_ms_p50,
                f"{prefix}_e2e_ms_p95": latency.e2e_ms_p95,
                f"{prefix}_tokens_mean": latency.generated_tokens_mean,
                f"{prefix}_n": latency.n,
            }
    return row


def bench_detail_rows(
    envelope: Envelope[BenchBody], run_pk: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``benchmark_result`` rows (per category and mode) and ``benchmark_question`` rows."""
    body = envelope.body
    common = {
        "run_pk": run_pk,
        "device_id": envelope.device_id,
        "device_class": body.device_class,
        "model_id": body.model.model_id,
        "measured_at": body.finished_at or envelope.sent_at,
    }
    results = []
    for cat in body.categories:
        latency = body.refined if cat.refined else body.zero_shot
        results.append(
            common
            | cat.model_dump()
            | {
                "decode_tok_s": body.decode_tok_s.mean if body.decode_tok_s else None,
                "prefill_tok_s": body.prefill_tok_s.mean if body.prefill_tok_s else None,
                "e2e_ms_p50": latency.e2e_ms_p50 if latency else None,
                "e2e_ms_p95": latency.e2e_ms_p95 if latency else None,
                "peak_rss_mb": body.peak_rss_mb,
            }
        )
    questions = [common | q.model_dump() for q in body.questions]
    return results, questions
