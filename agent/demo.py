"""``edgefleet demo run``: the real SmolLM2 answers one question with self-refinement.

``edgefleet demo fleet`` (the whole product on this machine) lives in
``controller.demo``; the root command adds it to this group (entry point ``demo.fleet``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.rule import Rule

from agent.bench.cli import load_class_profile
from shared.demo_models import DEMO_MODELS, models_dir
from shared.profiles import ProfileError

if TYPE_CHECKING:  # llama.cpp is imported only when the demo really runs
    from agent.inference.refine import StageLimits
    from agent.inference.runtime import Generation, ModelRuntime

console = Console()
demo_app = typer.Typer(help="Run the demo on the embedded defaults.", no_args_is_help=True)

DEMO_MODEL_ID = "smollm2-135m-instruct-q4_1"
DEMO_PROFILE = "dev-x86-1core"
DEFAULT_QUESTION = "Give three simple ways to keep drinking water safe at home."
STAGE_TITLES = {
    "answer": "y0: zero-shot answer",
    "critique": "c0: the model critiques its own answer",
    "refine": "y1: refined answer",
}


def _stage_line(name: str, g: Generation) -> str:
    return (
        f"[dim]{name}: {g.prompt_tokens_evaluated}/{g.prompt_tokens} prompt tokens evaluated "
        f"in {g.prefill_s:.2f} s, TTFT {g.ttft_s:.2f} s, {g.generated_tokens} tokens in "
        f"{g.decode_s:.2f} s ({g.decode_tok_s:.1f} tok/s), {g.finish_reason}[/dim]"
    )


@demo_app.command("run")
def run(
    question: Annotated[str, typer.Option(help="what to ask")] = DEFAULT_QUESTION,
    model: Annotated[
        Path | None, typer.Option(help="GGUF to use (default: the demo SmolLM2)")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=8, help="token limit per stage")] = 160,
) -> None:
    """Load the demo model under the dev-x86-1core profile and answer with self-refinement."""
    path = model or models_dir() / DEMO_MODELS[DEMO_MODEL_ID].filename
    if not path.exists():
        console.print(
            f"[red]error:[/red] {path} is missing. Fetch the demo models first: "
            "[bold]edgefleet models fetch-demo[/bold] (or `make demo`, which does it).",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    try:
        profile = load_class_profile(DEMO_PROFILE)
    except ProfileError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    from agent.inference.refine import StageLimits
    from agent.inference.runtime import InferenceError, ModelRuntime

    try:
        runtime = ModelRuntime(path, profile=profile)
        info = runtime.info
        console.print(
            f"model {runtime.model_id} ({info.quantization}, {info.parameters / 1e6:.0f}M "
            f"parameters), profile {profile.name}: {runtime.threads} thread(s), "
            f"n_ctx {runtime.n_ctx}, KV cache {runtime.kv_cache_type}, "
            f"instruction-tuned: {runtime.instruction_tuned}"
        )
        console.print(f"[bold]question:[/bold] {question}")
        _answer(runtime, question, StageLimits(max_tokens, min(max_tokens, 128), max_tokens))
    except InferenceError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None


def _answer(runtime: ModelRuntime, question: str, limits: StageLimits) -> None:
    from agent.inference.refine import answer

    current = {"stage": ""}

    def on_token(stage: str, text: str) -> None:
        if stage != current["stage"]:
            if current["stage"]:
                console.print()
            current["stage"] = stage
            console.print(Rule(STAGE_TITLES[stage], align="left"))
        console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    result = answer(runtime, question, limits=limits, on_token=on_token)
    console.print()
    console.print(Rule("timings", align="left"))
    for name, stage in zip(("answer", "critique", "refine"), result.stages, strict=False):
        console.print(_stage_line(name, stage))
    evaluated = result.prompt_tokens_evaluated
    final = result.stages[-1].prompt_tokens + result.stages[-1].generated_tokens
    console.print(
        f"total {result.total_s:.2f} s; prompt tokens evaluated over all stages: {evaluated} "
        f"for a final conversation of {final} tokens (the KV cache served the rest)"
    )
    if result.fell_back:
        console.print(f"[yellow]served y0: {result.fallback_reason}[/yellow]")
