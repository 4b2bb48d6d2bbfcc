"""`ecolobster plan`: plan a fine-tuning run (full, LoRA, QLoRA or all three compared).

    ecolobster plan --model olmo-7b --examples 140 --avg-tokens 1500 --seq-len 2048 --epochs 2 --gpu rtx4090
    ecolobster plan "LoRA or QLoRA for OLMo-7B on a 24GB GPU with budget $20"

Flags override what the free-text question says. Imports stay inside the handler.
"""

from __future__ import annotations

import argparse
import sys

from advisor.cli import width_arg


def _tristate(text: str) -> bool | None:
    t = text.strip().lower()
    if t in ("on", "yes", "true", "1"):
        return True
    if t in ("off", "no", "false", "0"):
        return False
    if t == "auto":
        return None
    raise argparse.ArgumentTypeError(f"'{text}': accepted on, off or auto")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="plan a fine-tuning run: VRAM, fit on GPUs, time, cost, energy, CO2",
        description="The PLAN protocol: memory breakdown per strategy, a fit matrix over the catalog GPUs, "
                    "time/cost/energy/CO2 per run, a recommendation and a ready peft + transformers config.")
    p.add_argument("question", nargs="*", help="optional free-text question (flags override it)")
    p.add_argument("--model", help="model to fine-tune: catalog name or hub id (e.g. olmo-7b, Qwen/Qwen2.5-7B)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--examples", type=int, help="number of training examples")
    data.add_argument("--tokens", type=float, help="training tokens per epoch (instead of --examples)")
    p.add_argument("--avg-tokens", type=float, help="average tokens per example (with --examples)")
    p.add_argument("--seq-len", type=int, help="maximum sequence length (default: 2048 or the model's context)")
    p.add_argument("--epochs", type=float, help="epochs (default 1)")
    p.add_argument("--method", choices=("full", "lora", "qlora", "compare"), help="strategy (default compare)")
    p.add_argument("--rank", type=int, help="LoRA rank (default 16)")
    p.add_argument("--target-modules", help="all-linear (default), attention, mlp, or a list such as q,v")
    p.add_argument("--batch-size", type=int, help="micro-batch size per step (default 1)")
    p.add_argument("--grad-accum", type=int, help="gradient accumulation steps (default 1)")
    p.add_argument("--grad-checkpointing", type=_tristate, default="auto", metavar="on|off|auto",
                   help="auto (default): off where it fits, on where it is needed")
    p.add_argument("--double-quant", type=_tristate, default="auto", metavar="on|off",
                   help="QLoRA double quantisation of the NF4 absmax values (default on)")
    p.add_argument("--optimizer", help="adamw (default), adamw_fused, adamw_8bit, paged_adamw_8bit, "
                                       "paged_adamw_32bit, sgd")
    p.add_argument("--gpu", action="append", default=[], help="a GPU you have (repeat for several)")
    p.add_argument("--vram-gb", type=float, help="plan for any catalog GPU with this much memory")
    p.add_argument("--budget-usd", type=float, help="budget per run in USD")
    p.add_argument("--gpu-price", type=float, help="hourly rental price overriding the catalog (one --gpu)")
    p.add_argument("--region", help="electricity price and grid carbon (default us)")
    p.add_argument("--pue", type=float, help="data-centre PUE (default by region kind)")
    p.add_argument("--format", choices=("rich", "markdown", "json", "html"), default="rich",
                   help="output format (html: a self-contained page with the memory breakdown drawn, needs the "
                        "report extra)")
    p.add_argument("--width", type=width_arg, default=None,
                   help="terminal width for rich output (20-1000 columns)")
    p.add_argument("--detail", choices=("brief", "full"), default="brief",
                   help="rich output: brief (the point and one table, default) or full")
    p.add_argument("--lang", choices=("en", "zh"), default=None, help="answer language (default: the question's, else en)")
    p.set_defaults(handler=_plan)


_FLAGS = {"model": "model", "examples": "examples", "tokens": "tokens", "avg_tokens": "avg_tokens",
          "seq_len": "seq_len", "epochs": "epochs", "method": "method", "rank": "rank",
          "target_modules": "target_modules", "batch_size": "batch_size", "grad_accum": "grad_accum",
          "optimizer": "optimizer", "vram_gb": "vram_gb", "budget_usd": "budget_usd", "region": "region",
          "pue": "pue", "gpu_price": "gpu_price_usd_h"}


def request_from_args(args: argparse.Namespace):
    """A PlanRequest from the question (if any) and the flags; raises UsageError on bad input."""
    from pydantic import ValidationError

    from advisor.api import PlanRequest, request_from_text
    from advisor.limits import UsageError

    fields: dict[str, object] = {}
    text = " ".join(args.question).strip()
    if text:
        req, problems = request_from_text(text)
        if req is None and not args.model:
            raise UsageError("; ".join(problems))
        if req is not None:
            fields.update(req.model_dump(exclude_defaults=True))
    for flag, field in _FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            fields[field] = v
    if args.tokens is not None or args.examples is not None:  # a flag replaces the question's dataset
        for k in ("tokens", "examples"):
            if getattr(args, k) is None:
                fields.pop(k, None)
    if args.gpu:
        fields["gpus"] = [g for item in args.gpu for g in item.split(",") if g.strip()]
    if getattr(args, "lang", None):
        fields["lang"] = args.lang
    if args.double_quant not in ("auto", None):
        fields["double_quant"] = args.double_quant
    if args.grad_checkpointing != "auto":
        fields["grad_checkpointing"] = args.grad_checkpointing
    if "model" not in fields:
        raise UsageError("give --model (e.g. --model olmo-7b) or a question naming the model")
    try:
        return PlanRequest(**fields)  # type: ignore[arg-type]
    except ValidationError as err:
        from advisor.api import validation_messages

        msgs = validation_messages(err, "--{where}: {msg}", loc_sep="-")
        raise UsageError("; ".join(m.replace("_", "-") for m in msgs)) from None


def _plan(args: argparse.Namespace) -> int:
    from advisor.api import plan
    from advisor.limits import UsageError
    from advisor.render import render, write_answer

    answer = plan(request_from_args(args))
    if answer.errors and not answer.tables:  # nothing planned: the message alone (JSON still gets the Answer)
        if args.format == "json":
            sys.stdout.write(render(answer, "json") + "\n")
        raise UsageError("; ".join(answer.errors))
    write_answer(answer, args.format, args.width, args.detail)
    return 0
