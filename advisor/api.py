"""The one API every way in (the CLI, the chat, the MCP server) calls the core through.

One call from a question to an answer: parse, run the protocol, add the voice. `ask()` never raises for bad text: a question it cannot use becomes an Answer with
protocol="error", a gray mood and the reasons listed, so the chat, the CLI and the MCP server all
handle it the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advisor.limits import UsageError

if TYPE_CHECKING:
    from advisor.query import Context


def error_answer(errors: list[str], lang: str = "en", text: str = "") -> Answer:
    from advisor import persona
    from advisor.answer import Answer
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
    from advisor.query import Context, QueryError, clean_text, parse

    if isinstance(text, str):
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
    import measurements.catalog as catalog

    if model_id.lower() == hub:
        return True
    arch = catalog.model_by_hub_id(model_id)
    return arch is not None and arch.key == key


# --------------------------------------------------------------------------------------------
# The rest of what the ways in use from the core, by name. Each is imported from its module when
# first used (PEP 562), so `import advisor.api` stays cheap and `ecolobster --help` starts fast;
# the TYPE_CHECKING block gives type checkers the real objects.
# --------------------------------------------------------------------------------------------

# name -> (module, attribute); attribute None: the module itself
_EXPORTS: dict[str, tuple[str, str | None]] = {
    # answers
    "Answer": ("advisor.answer", "Answer"),
    "Citation": ("advisor.answer", "Citation"),
    "Provenance": ("advisor.answer", "Provenance"),
    "Table": ("advisor.answer", "Table"),
    # questions
    "Query": ("advisor.query", "Query"),
    "QueryError": ("advisor.query", "QueryError"),
    "clean_text": ("advisor.query", "clean_text"),
    "from_fields": ("advisor.query", "from_fields"),
    "flags_context": ("advisor.query", "flags_context"),
    "parse": ("advisor.query", "parse"),
    "explain_parse": ("advisor.query.explain", "explain_parse"),
    "unreadable_count": ("advisor.textcheck", "unreadable_count"),
    # fine-tuning plans
    "PlanRequest": ("advisor.protocols.plan", "PlanRequest"),
    "plan": ("advisor.protocols.plan", "plan"),
    "plan_from_text": ("advisor.protocols.plan", "plan_from_text"),
    "request_from_text": ("advisor.protocols.plan", "request_from_text"),
    # the auditor
    "Auditor": ("advisor.audit", "Auditor"),
    "SettingsError": ("advisor.audit", "SettingsError"),
    "all_rules": ("advisor.audit", "all_rules"),
    "load_settings": ("advisor.audit", "load_settings"),
    "audit_cache_dir": ("advisor.audit.cache", "cache_dir"),
    "CONFIDENCES": ("advisor.audit.ci", "CONFIDENCES"),
    "SEVERITIES": ("advisor.audit.ci", "SEVERITIES"),
    "BaselineError": ("advisor.audit.ci", "BaselineError"),
    "apply_filters": ("advisor.audit.ci", "apply_filters"),
    "concise_report": ("advisor.audit.ci", "concise"),
    "github_report": ("advisor.audit.ci", "github"),
    "json_report": ("advisor.audit.ci", "json_report"),
    "load_baseline": ("advisor.audit.ci", "load_baseline"),
    "nothing_audited_message": ("advisor.audit.ci", "nothing_audited_message"),
    "Policy": ("advisor.audit.policy", "Policy"),
    "sarif_report": ("advisor.audit.sarif", "dumps"),
    "DEFAULT_EXCLUDES": ("advisor.audit.walk", "DEFAULT_EXCLUDES"),
    "IgnoreRules": ("advisor.audit.walk", "IgnoreRules"),
    "real_path": ("advisor.audit.walk", "real_path"),
    "source_kind": ("advisor.audit.sources", "kind_for"),
    "audit_code": ("advisor.protocols.audit", "audit_code"),
    "detect_lang": ("advisor.query", "detect_lang"),
    "audit_paths": ("advisor.protocols.audit", "audit_paths"),
    "report_to_answer": ("advisor.protocols.audit", "report_to_answer"),
    # benchmark results files (the report command)
    "ReportError": ("advisor.bench_report", "ReportError"),
    "report_from_rows": ("advisor.bench_report", "from_rows"),
    "load_results": ("advisor.bench_report", "load_source"),
    # the dataset and its catalogs
    "catalog": ("measurements.catalog", None),
    "MeasurementRow": ("measurements.schema", "MeasurementRow"),
    "BENCH_PRECISIONS": ("measurements.vocab", "BENCH_PRECISIONS"),
    "BenchPrecision": ("measurements.vocab", "BenchPrecision"),
    "Precision": ("measurements.vocab", "Precision"),
    "PRECISIONS": ("measurements.vocab", "PRECISIONS"),
    "implausible": ("measurements.plausible", "implausible"),
    "field_errors": ("measurements.validation", "field_errors"),
    "validation_messages": ("measurements.validation", "messages"),
    "DataError": ("measurements.store", "DataError"),
    "data_home": ("measurements.store", "data_home"),
    "load_rows": ("measurements.store", "load_rows"),
    "shipped_rows": ("measurements.store", "shipped_rows"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'advisor.api' has no attribute '{name}'") from None
    import importlib

    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value  # the next lookup is a plain global
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # the real objects behind _EXPORTS, for type checkers (ruff: F401 ignored here)
    from advisor.answer import Answer, Citation, Provenance, Table
    from advisor.audit import Auditor, SettingsError, all_rules, load_settings
    from advisor.audit.ci import (
        CONFIDENCES,
        SEVERITIES,
        BaselineError,
        apply_filters,
        json_report,
        load_baseline,
        nothing_audited_message,
    )
    from advisor.audit.ci import concise as concise_report
    from advisor.audit.ci import github as github_report
    from advisor.audit.policy import Policy
    from advisor.audit.sarif import dumps as sarif_report
    from advisor.audit.sources import kind_for as source_kind
    from advisor.audit.walk import DEFAULT_EXCLUDES, IgnoreRules, real_path
    from advisor.bench_report import ReportError
    from advisor.bench_report import from_rows as report_from_rows
    from advisor.bench_report import load_source as load_results
    from advisor.protocols.audit import audit_code, audit_paths, report_to_answer
    from advisor.protocols.plan import PlanRequest, plan, plan_from_text, request_from_text
    from advisor.query import Query, QueryError, clean_text, from_fields, parse
    from advisor.query.explain import explain_parse
    from advisor.textcheck import unreadable_count
    from measurements import catalog
    from measurements.plausible import implausible
    from measurements.schema import MeasurementRow
    from measurements.store import DataError, data_home, load_rows, shipped_rows
    from measurements.validation import field_errors
    from measurements.validation import messages as validation_messages
    from measurements.vocab import BENCH_PRECISIONS, PRECISIONS, BenchPrecision, Precision
