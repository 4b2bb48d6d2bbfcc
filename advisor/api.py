"""One call from a question to an answer: parse, run the protocol, add the voice.

`ask()` never raises for bad text: a question it cannot use becomes an Answer with
protocol="error", a gray mood and the reasons listed, so the chat, the CLI and the MCP server all
handle it the same way.
"""

from __future__ import annotations

from typing import Any

from advisor.answer import Answer
from advisor.limits import UsageError
from advisor.query import Context, Query, QueryError, parse


def error_answer(errors: list[str], lang: str = "en", text: str = "") -> Answer:
    from advisor import persona
    from advisor.messages import t

    ans = Answer(protocol="error", title=t(lang, "unused.error_title"),
                 lang="zh" if lang == "zh" else "en", mood="gray", errors=list(errors),
                 query={"text": text} if text else {})
    return persona.apply(ans, ans.lang)


def answer_query(query: Query, lang: str | None = None) -> Answer:
    """Run a parsed (or structured) query and add the voice."""
    from advisor import persona
    from advisor.protocols import run

    ans = run(query)
    _add_store_problems(ans)
    return persona.apply(ans, lang or query.lang or "en")


def _add_store_problems(ans: Answer) -> None:
    """Lines of the local store that the answer's row reads skipped are said in the answer."""
    from measurements.store import take_problems

    ans.warnings.extend(take_problems())


def ask(text: str, context: Context | None = None, lang: str | None = None,
        protocol: str | None = None) -> tuple[Answer, Context]:
    """Answer a question in English or Chinese. Returns the answer and the context to pass with the
    next question (follow-ups like "and on an A800?" reuse it). `protocol` forces the protocol
    (the chat's /compare, /diagnose, ...) instead of reading it from the words."""
    if isinstance(text, str):
        from advisor.query import clean_text

        text = clean_text(text)
    try:
        q = parse(text, context, protocol=protocol, lang=lang)
    except QueryError as err:
        from advisor.query import detect_lang

        lg = lang or detect_lang(text if isinstance(text, str) else "")
        return error_answer(err.errors, lg, text if isinstance(text, str) else ""), context or Context()
    if lang:
        q = q.model_copy(update={"lang": lang})
    # a general question ("why is 4-bit sometimes worse?") leaves the chat's context as it was
    nxt = context if (q.standalone and context is not None) else q.to_context()
    return answer_query(q, lang), nxt


def filter_rows(args: Any) -> list[Any]:
    """The dataset rows that match the filters on `args` (gpu, model, precision, source, kind, task,
    framework, workload, gpu_count; absent or None: any). `data list`, the chat's /data, the report and
    the MCP query_measurements tool all call this, so they list the same rows. Bad filter values
    raise UsageError naming what is accepted."""
    from measurements import catalog, select
    from measurements.schema import FRAMEWORKS, PRECISIONS, WORKLOADS
    from measurements.store import DataError, load_rows

    try:
        rows = load_rows()
    except DataError as err:
        raise UsageError(f"the dataset does not load: {err}") from None
    gpu = None
    if getattr(args, "gpu", None):
        try:
            # "cpu" selects the engine's CPU-only runs, which have no GPU catalog entry
            gpu = "cpu" if args.gpu.strip().lower() == "cpu" else catalog.resolve_gpu(args.gpu).key
        except catalog.UnknownName as err:
            raise UsageError(f"{err} (or 'cpu' for CPU-only runs)") from None
    prec = None
    if getattr(args, "precision", None):
        prec = args.precision.lower()
        if prec not in PRECISIONS:
            raise UsageError(f"unknown precision '{args.precision}'. Accepted: {', '.join(PRECISIONS)}.")
    fw = getattr(args, "framework", None)
    if fw:
        fw = fw.strip().lower()
        if fw not in FRAMEWORKS:
            raise UsageError(f"unknown framework '{args.framework}'. Accepted: {', '.join(FRAMEWORKS)}.")
    # the one evidence layer selects (the chat's /data and the MCP tool call this function too)
    rows = select.select(rows, gpu=gpu, precision=prec, source=getattr(args, "source", None),
                         kind=getattr(args, "kind", None), task=getattr(args, "task", None),
                         framework=fw or None)
    if getattr(args, "model", None):
        needle = args.model.lower()
        try:
            hub = catalog.resolve_model(args.model).hub_id.lower()
            known = catalog.resolve_model(args.model).key
        except catalog.UnknownName:
            hub, known = None, None
        rows = [
            r for r in rows
            if needle in r.model_id.lower()
            or (hub is not None and _same_model(r.model_id, hub, known))
        ]
    if getattr(args, "workload", None):
        if args.workload not in WORKLOADS:
            raise UsageError(f"unknown workload '{args.workload}'. Accepted: {', '.join(WORKLOADS)}.")
        rows = [r for r in rows if r.workload == args.workload]
    if getattr(args, "gpu_count", None) is not None:
        if args.gpu_count < 1:
            raise UsageError(f"--gpu-count must be 1 or more, got {args.gpu_count}.")
        rows = [r for r in rows if r.gpu_count == args.gpu_count]
    return rows


def _same_model(model_id: str, hub: str, key: str | None) -> bool:
    from measurements import catalog

    if model_id.lower() == hub:
        return True
    arch = catalog.model_by_hub_id(model_id)
    return arch is not None and arch.key == key
