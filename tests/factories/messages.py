"""One valid example body per topic kind, for tests on both sides."""

from __future__ import annotations

from shared.messages import (
    AckBody,
    AckStatus,
    AnswerLatency,
    AssignCommand,
    BenchBody,
    Body,
    CategoryQuality,
    CmdBody,
    DeviceStatus,
    HardwareInfo,
    HeartbeatBody,
    HelloBody,
    MetricsBody,
    ModelRef,
    QuestionResult,
    Spread,
    StateBody,
    StoredBody,
)
from shared.topics import TopicKind

SHA = "ab" * 32


def hello_body(device_class: str = "pi4-4gb") -> HelloBody:
    return HelloBody(
        agent_version="0.1.0",
        device_class=device_class,
        hardware=HardwareInfo(
            arch="aarch64",
            cpu_model="Cortex-A72",
            cores=4,
            ram_total_mb=3906,
            ram_available_mb=3100,
            disk_free_mb=20000,
        ),
    )


def bench_body(model_id: str = "smollm2", device_class: str = "pi4-4gb") -> BenchBody:
    return BenchBody(
        run_id="run-1",
        model=ModelRef(model_id=model_id, sha256=SHA, quantization="Q4_1", parameters=134_515_008),
        device_class=device_class,
        threads=4,
        n_ctx=2048,
        pp_tokens=64,
        tg_tokens=32,
        prefill_tok_s=Spread(mean=250.0, std=5.0, n=3),
        decode_tok_s=Spread(mean=40.0, std=1.0, n=3),
        zero_shot=AnswerLatency(
            ttft_ms_p50=80,
            ttft_ms_p95=120,
            e2e_ms_p50=3000,
            e2e_ms_p95=4200,
            generated_tokens_mean=120,
            n=9,
        ),
        peak_rss_mb=215.0,
        categories=[
            CategoryQuality(
                category="math", refined=False, n=3, judge_mean=5.5, pct_of_reference=61.1
            )
        ],
        questions=[
            QuestionResult(
                item_id="math-1",
                category="math",
                refined=False,
                judge_score=6,
                correct=True,
                e2e_ms=2900,
                generated_tokens=110,
                prompt_tokens_evaluated=60,
            )
        ],
    )


EXAMPLE_BODIES: dict[TopicKind, Body] = {
    TopicKind.HELLO: hello_body(),
    TopicKind.STATE: StateBody(status=DeviceStatus.ONLINE, model_id="smollm2", refine=True),
    TopicKind.HEARTBEAT: HeartbeatBody(
        uptime_s=12.5, load_1m=0.4, mem_available_mb=2900, outbox_depth=3
    ),
    TopicKind.METRICS: MetricsBody(
        window_s=10, requests=3, generated_tokens=300, latency_ms_p95=4100
    ),
    TopicKind.BENCH: bench_body(),
    TopicKind.CMD: CmdBody(
        command=AssignCommand(
            command_id="c-1",
            model_id="smollm2",
            sha256=SHA,
            url="http://c/models/smollm2",
            size_bytes=10,
        )
    ),
    TopicKind.ACK: AckBody(command_id="c-1", status=AckStatus.OK),
    TopicKind.STORED: StoredBody(seqs=[(1, 4), (7, 7)]),
}
