"""`ecolobster ask "QUESTION"` and the structured forms `ecolobster optimize|compare|estimate|diagnose
--model ... --gpu ...`. Imports stay inside the handlers so the command starts fast."""

from __future__ import annotations

import argparse
import sys

from advisor.cli import width_arg

PROTOCOLS = ("optimize", "compare", "estimate", "diagnose")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("rich", "markdown", "json", "html"), default="rich",
                   help="output format (default rich; html: a self-contained page with the charts drawn, "
                        "needs the report extra)")
    p.add_argument("--lang", choices=("en", "zh"), default=None, help="answer language (default: the question's)")
    p.add_argument("--width", type=width_arg, default=None,
                   help="terminal width for rich output (20-1000 columns)")
    p.add_argument("--detail", choices=("brief", "full"), default="brief",
                   help="rich output: brief (the point and one table, default) or full (every table, chart, "
                        "code, provenance); Markdown and JSON always hold everything")


def _serving_flags(p: argparse.ArgumentParser) -> None:
    """The serving levers every question command takes (values checked by advisor.query)."""
    p.add_argument("--framework", help="hf-eager, hf-static-cache, hf-continuous-batching, vllm, sglang, tgi, "
                                       "trt-llm, llama.cpp (or vLLM, TensorRT-LLM, Ollama, ...)")
    p.add_argument("--gpu-count", type=str, help="GPUs serving one replica (tensor parallel size), 1-8")
    p.add_argument("--latency-target-ms", type=str,
                   help="per-token (inter-token) latency target in ms; configurations that miss it are left out")
    p.add_argument("--latency-percentile", type=str,
                   help="percentile the latency target applies to (50, 90, 95, 99; measured serving rows have them)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask a question in English or Chinese",
                       description="Answer a free-text question, e.g. ecolobster ask \"greenest config for "
                                   "Qwen2.5-7B on an RTX 4090D?\"")
    p.add_argument("question", nargs="+", help="the question (quote it)")
    _serving_flags(p)
    p.add_argument("--explain-parse", action="store_true",
                   help="print what was read from the question (slots and the words they came from, defaults, "
                        "what was not understood) instead of answering")
    _common(p)
    p.set_defaults(handler=_ask)
    for name in PROTOCOLS:
        sp = sub.add_parser(name, help=f"{name.upper()} a configuration from flags",
                            description=f"The {name.upper()} protocol with explicit parameters.")
        sp.add_argument("--model", help="model: catalog name, hub id or '<name>-7B'")
        sp.add_argument("--gpu", help="GPU (e.g. rtx4090d, a800, h100)")
        sp.add_argument("--precision", help="fp16, bf16, fp32, fp8, nf4, int8_mixed, int8_pure")
        sp.add_argument("--fp8-mode", choices=("dynamic", "weight_only"), default=None,
                        help="with --precision fp8: dynamic (FP8 matmuls) or weight_only (default: the one measured "
                             "on the GPU, else dynamic where it has FP8 tensor cores)")
        sp.add_argument("--batch-size", type=str, help="1-4096 (above 64 the figures are extrapolated)")
        _serving_flags(sp)
        sp.add_argument("--prompt-tokens", type=str, help="input length in tokens")
        sp.add_argument("--gen-tokens", type=str, help="generated tokens per request")
        sp.add_argument("--requests-per-month", type=str)
        sp.add_argument("--requests-per-day", type=str)
        sp.add_argument("--users-per-day", type=str)
        sp.add_argument("--tokens-per-month", type=str)
        sp.add_argument("--region", help="e.g. us, china, eu, france, us_cloud")
        sp.add_argument("--price", type=str, help="electricity price, USD/kWh")
        sp.add_argument("--grid", type=str, help="grid carbon intensity, gCO2/kWh")
        sp.add_argument("--pue", type=str)
        sp.add_argument("--own-gpus", action="store_true",
                        help="the GPUs are yours: amortised purchase price + electricity instead of rental")
        sp.add_argument("--lifetime-years", type=str, help="years an owned GPU is amortised over (default: factor "
                                                          "gpu_lifetime_years)")
        sp.add_argument("--purchase-usd", type=str, help="what one owned GPU cost, USD (default: the catalog's price)")
        sp.add_argument("--use-case", help="production_api, interactive_chat, offline_batch")
        if name == "compare":
            sp.add_argument("--axis", choices=("precision", "gpu", "batch_size", "model_size", "framework"), default=None)
            sp.add_argument("--gpus", help="comma-separated GPUs to compare (axis gpu)")
            sp.add_argument("--frameworks", help="comma-separated frameworks to compare (axis framework), e.g. "
                                                 "hf-eager,vllm")
        if name == "diagnose":
            sp.add_argument("--reported-tok-s", type=str, help="throughput you observe")
            sp.add_argument("--reported-power-w", type=str, help="power you observe")
            sp.add_argument("--nightly", action="store_true", help="a nightly/dev torch or torchao build")
        _common(sp)
        sp.set_defaults(handler=_structured, protocol=name)


def _emit(answer, args) -> int:
    from advisor.render import write_answer

    write_answer(answer, args.format, args.width, args.detail)
    return 0


def _ask(args: argparse.Namespace) -> int:
    from advisor.api import ask
    from advisor.limits import UsageError

    text = " ".join(args.question).strip()
    ctx = _flags_context(args, text)
    if args.explain_parse:
        return _explain_parse(text, args, ctx)
    answer, _ = ask(text, ctx, lang=args.lang)
    if answer.protocol == "error":
        if args.format != "rich":
            _emit(answer, args)
        raise UsageError("; ".join(answer.errors))
    return _emit(answer, args)


def _flags_context(args: argparse.Namespace, text: str = ""):  # noqa: ANN202
    """--framework, --gpu-count and --latency-target-ms beside a free-text question, as its context
    (a bad value is said in the question's language, or --lang's)."""
    from advisor.api import QueryError, detect_lang, flags_context
    from advisor.limits import UsageError
    from advisor.messages import t

    lang = args.lang or detect_lang(text)
    try:
        return flags_context(args.framework, args.gpu_count, args.latency_target_ms, args.latency_percentile,
                             lang=lang)
    except QueryError as err:
        raise UsageError("\n  ".join([t(lang, "fields.invalid"), *err.errors])) from None


def _explain_parse(text: str, args: argparse.Namespace, ctx=None) -> int:  # noqa: ANN001
    from advisor.api import QueryError, clean_text, explain_parse, parse
    from advisor.limits import UsageError

    try:
        q = parse(clean_text(text), ctx)
    except QueryError as err:
        raise UsageError("; ".join(err.errors)) from None
    if args.format == "json":
        sys.stdout.write(q.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(explain_parse(q, args.lang))
    return 0


def _structured(args: argparse.Namespace) -> int:
    from advisor.api import QueryError, answer_query, from_fields
    from advisor.limits import UsageError
    from advisor.messages import t

    fields = {
        "model": args.model, "gpu": args.gpu, "precision": args.precision, "fp8_mode": args.fp8_mode,
        "batch_size": args.batch_size,
        "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens, "gpu_count": args.gpu_count,
        "framework": args.framework, "latency_target_ms": args.latency_target_ms,
        "latency_percentile": args.latency_percentile,
        "requests_per_month": args.requests_per_month, "requests_per_day": args.requests_per_day,
        "users_per_day": args.users_per_day, "tokens_per_month": args.tokens_per_month, "region": args.region,
        "price_usd_kwh": args.price, "grid_gco2_kwh": args.grid, "pue": args.pue, "use_case": args.use_case,
        "own_gpus": args.own_gpus or None, "gpu_lifetime_years": args.lifetime_years,
        "gpu_purchase_usd": args.purchase_usd,
        "lang": args.lang,
    }
    if args.protocol == "compare":
        fields["compare_axis"] = args.axis
        if args.gpus:
            fields["compare_gpus"] = [g.strip() for g in args.gpus.split(",") if g.strip()]
            fields["compare_axis"] = fields["compare_axis"] or "gpu"
        if args.frameworks:
            fields["compare_frameworks"] = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if args.protocol == "diagnose":
        fields["reported_tok_s"] = args.reported_tok_s
        fields["reported_power_w"] = args.reported_power_w
        fields["nightly"] = args.nightly or None
    try:
        q = from_fields(args.protocol, **{k: v for k, v in fields.items() if v is not None})
    except QueryError as err:
        raise UsageError("\n  ".join([t(args.lang, "fields.invalid"), *err.errors])) from None
    for w in q.warnings:
        print(f"{t(args.lang, 'label.warning')}: {w}", file=sys.stderr)
    return _emit(answer_query(q, args.lang), args)
