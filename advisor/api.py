"""One call from a question to an answer: parse, run the protocol, add the voice.

`ask()` never raises for bad text: a question it cannot use becomes an Answer with
protocol="error", a gray mood and the reasons listed, so the chat, the CLI and the MCP server all
handle it the same way.
"""

from __future__ import annotations

from advisor.answer import Answer
from advisor.query import Context, Query, QueryError, parse


def error_answer(errors: list[str], lang: str = "en", text: str = "") -> Answer:
    from advisor import persona

    ans = Answer(protocol="error", title="I could not use that question" if lang != "zh" else "无法处理这个问题",
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
        q = parse(text, context, protocol=protocol)
    except QueryError as err:
        from advisor.query import detect_lang

        lg = lang or detect_lang(text if isinstance(text, str) else "")
        return error_answer(err.errors, lg, text if isinstance(text, str) else ""), context or Context()
    if lang:
        q = q.model_copy(update={"lang": lang})
    # a general question ("why is 4-bit sometimes worse?") leaves the chat's context as it was
    nxt = context if (q.standalone and context is not None) else q.to_context()
    return answer_query(q, lang), nxt
