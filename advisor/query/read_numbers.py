"""Readers of stated quantities: batch size and lengths, latency targets, reported throughput and power,
prices and grid intensity, workloads at any rate, and what is left over afterwards."""

from __future__ import annotations

import re

from advisor.messages import For
from advisor.query.draft import _Draft
from advisor.query.finish import _range_errors
from advisor.query.lookup import _dpm, _factor, _monthly, _per_month, _period
from advisor.query.text import _MULT_RE, _NUM, _blank, _fmt, _mentions, _number
from advisor.query.vocab import _BYTES, _LEAD_PERIOD_RE, _LEFTOVER_RE, _PCT_RE, _PERIOD_RE

_LEN_NUM = r"(?<![\d.,])~?\s*((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)\s*(k|千)?(?![a-z\d])"


_LEN_FILL = r"(?:\s*(?:of|with|at|around|about|roughly|approx\.?|approximately|averag\w*|avg|typically|usually|up\s+to|" \
            r"under|below|max(?:imum)?|length|len|size|is|are|=|:|~|为|是|约|大约|大概|长度|平均|左右)\s*)*"


_PROMPT_WORDS = (r"(?:prompts?|inputs?|input\s+length|context(?:\s+length|\s+window)?|sequence[\s_-]*length|seq[\s_-]*len(?:gth)?|"
                 r"prefill|输入|提示词?|上下文|序列长度)")


_GEN_WORDS = (r"(?:max_new_tokens|answers?|responses?|outputs?|output\s+length|completions?|generations?|generation[\s_-]*length|"
              r"gen[\s_-]*len(?:gth)?|repl(?:y|ies)|generat(?:e|es|ing)|new\s+tokens|输出|生成|回答|回复|答案)")


_TOK = r"(?:\s*(?:-\s*)?(?:tokens?|toks?|个?\s*token|词元))"


def _length_patterns(words: str) -> list[re.Pattern[str]]:
    return [
        # "1,500-token prompts", "300 token answers", "1500 input tokens", "8k context"
        re.compile(_LEN_NUM + _TOK + r"[\s-]+(?:long\s+)?(?:of\s+)?" + words + r"(?![a-z])"),
        re.compile(_LEN_NUM + r"[\s-]*" + words + r"[\s-]*(?:tokens?|toks?)(?![a-z])"),
        re.compile(_LEN_NUM + r"[\s-]*(?:context|上下文)(?![a-z])") if "context" in words else None,
        # "prompts of 1500 tokens", "input 2k", "answers of about 300 tokens", "输入 1500 token"
        re.compile(words + r"(?![a-z])" + _LEN_FILL + _LEN_NUM + r"(?:" + _TOK + r")?"),
    ]


_PROMPT_RES = [p for p in _length_patterns(_PROMPT_WORDS) if p is not None]


_GEN_RES = [p for p in _length_patterns(_GEN_WORDS) if p is not None]


def _read_batch_and_lengths(d: _Draft) -> None:
    t = d.t
    m = None
    if _mentions(t, "batch", "bs", "批", "concurrent", "并发", "concurrency"):
        m = re.search(r"(?:batch[\s_-]*sizes?(?:\s+of)?|\bbs\b|批大小|批量大小|批次大小|批量|batch|concurrency|并发数?)\s*"
                      r"(?:=|:|of|is|to|at|为|是|设为)?\s*(-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:e[+-]?\d+)?)"
                      r"((?:\s*(?:,|and|or|vs\.?|versus|/|和|或)\s*-?\d+(?![\d.,a-z%])"
                      r"(?!\s*(?:k\b|m\b|b\b|thousand|million|billion|万|亿|tokens?|toks?|input|output|prompt|gen|requests?|reqs?|users?|gpus?|ms\b|s\b|"
                      r"seconds?|%|x\b|examples|epochs?|个|次|张|块)))*)", t) \
            or re.search(r"(-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+))\s*(?:concurrent\s+(?:requests|users|sequences|streams)|并发)", t)
    if m:
        raw = m.group(1).replace(",", "")
        v = _number(raw.lstrip("-")) * (-1 if raw.startswith("-") else 1)
        more = [int(x) for x in re.findall(r"-?\d+", m.group(2))] if m.lastindex and m.lastindex >= 2 and m.group(2) else []
        if v != int(v):
            d.errors.append(d.m("error.bs_whole", raw=raw))
        else:
            d.put("batch_size", int(v), m)
        if more:  # "batch 0 and 9999": a comparison of batch sizes, or a contradiction (decided with the protocol)
            values = list(dict.fromkeys([int(v), *more]))
            d.extra["batch_sizes"] = values
            for x in values:
                d.errors += [e for e in _range_errors({"batch_size": x}, d.m.lang) if e not in d.errors]
        t = _blank(t, m)
    # "input 2k output 500" / "2k in, 500 out"
    m = re.search(_LEN_NUM + r"\s*(?:tokens?\s*)?(?:in|input)\s*[,/]?\s*(?:and\s+)?" + _LEN_NUM + r"\s*(?:tokens?\s*)?"
                  r"(?:out|output)\b", t)
    if m:
        if "prompt_tokens" not in d.slots:
            d.put("prompt_tokens", int(_number(m.group(1), "k" if m.group(2) else None)), m)
        if "gen_tokens" not in d.slots:
            d.put("gen_tokens", int(_number(m.group(3), "k" if m.group(4) else None)), m)
        t = _blank(t, m)
    # "800/200 tokens", "input/output 800/200", "ISL/OSL 2k/500": prompt, then answer (never a rate:
    # "800/200 tokens/s" is not a length)
    pair = _LEN_NUM + r"\s*/\s*" + _LEN_NUM
    m = re.search(r"(?:input|prompt|isl)\s*/\s*(?:output|answer|gen(?:eration)?|osl)(?:\s+(?:tokens?|lengths?))?\s*"
                  r"(?:of|=|:|are|is)?\s*" + pair, t) \
        or re.search(pair + _TOK + r"(?!\s*(?:/|per)\s*(?:s\b|sec|second))", t)
    if m:
        for slot, i in (("prompt_tokens", 1), ("gen_tokens", 3)):
            if slot not in d.slots:
                d.put(slot, int(_number(m.group(i), "k" if m.group(i + 1) else None)), m)
        t = _blank(t, m)
    for slot, rxs, trigger in (("prompt_tokens", _PROMPT_RES, ("prompt", "input", "context", "seq", "prefill", "输入",
                                                                "提示", "上下文", "序列")),
                               ("gen_tokens", _GEN_RES, ("new_tokens", "answer", "respon", "output", "complet", "generat",
                                                         "gen", "repl", "输出", "生成", "回答", "回复", "答案"))):
        if not _mentions(t, *trigger):
            continue
        for rx in rxs:
            m = rx.search(t)
            if m:
                v = _number(m.group(1), "k" if m.group(2) else None)
                if v != int(v) or v < 1:
                    d.errors.append(d.m("error.tokens_whole", slot=slot, words=m.group(0).strip()))
                else:
                    d.put(slot, int(v), m)
                    if m.group(2):
                        d.conversions.append(d.m("reading.tokens_k", words=m.group(0).strip(), n=f"{int(v):,}",
                                                 slot=slot.replace("_", " ")))
                t = _blank(t, m)
                break
    d.t = t


def _read_latency(d: _Draft) -> None:
    """Latency targets: per token ("p90 under 50 ms per token", "ITL 40ms") and per answer
    ("under 2 s per answer"). Time to first token has no slot yet: reported, not dropped."""
    if not _mentions(d.t, "ms", "sec", " s", "毫秒", "秒", "latency", "延迟"):
        return
    for m in list(re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(ms|milliseconds?|毫秒|s|secs?|seconds?|秒)(?![a-z])", d.t)):
        lo, hi = max(0, m.start() - 45), min(len(d.t), m.end() + 25)
        around = d.t[lo:hi]
        value = _number(m.group(1))
        unit_s = value / 1000 if m.group(2) in ("ms", "millisecond", "milliseconds", "毫秒") else value
        pct = _PCT_RE.search(around)
        span = (m.start(), m.end())
        after = d.t[m.end():m.end() + 22]
        itl_cue = (r"per[\s-]*token|/\s*tok|\bitl\b|tpot|inter[\s-]*token|token[\s-]*latency|每\s*个?\s*token|逐字")
        e2e_cue = (r"answer|response|request|reply|completion|end[\s-]*to[\s-]*end|\be2e\b|回答|响应|请求|回复")
        # the words right after the number decide first ("50 ms per token and 2 s per answer")
        cue = re.search(itl_cue, after) if "itl_target_ms" not in d.slots else None
        cue = cue or (re.search(e2e_cue, after) if "e2e_target_s" not in d.slots else None)
        if cue:
            around = after[:cue.end()]
        words = m.group(0) + (around if cue else "")
        if re.search(r"first\s+token|ttft|首\s*token|首字", around):
            d.not_understood.append(d.m("reading.ttft", words=around.strip()))
        elif re.search(itl_cue, around):
            d.put("itl_target_ms", unit_s * 1000, words)
            if pct:
                d.put("itl_percentile", _number(next(g for g in pct.groups() if g)), pct)
        elif re.search(e2e_cue + r"|延迟|latency", around):
            d.put("e2e_target_s", unit_s, words)
            if pct:
                d.extra["e2e_percentile"] = _number(next(g for g in pct.groups() if g))
        else:
            continue
        d.t = _blank(d.t, span)
        if pct:
            d.t = _blank(d.t, (lo + pct.start(), lo + pct.end()))


def _read_reported(d: _Draft) -> None:
    t = d.t
    m = re.search(_NUM + r"\s*(?:tok/s|tokens?/s(?:ec)?|tokens?\s+per\s+second|t/s|tps\b|个?token每秒)", t) \
        if _mentions(t, "/s", "second", "tps", "每秒") else None
    if m:
        d.extra["reported_tok_s"] = _number(m.group(1))
        d.words["reported_tok_s"] = m.group(0).strip()
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*(kw|w|watts?|瓦)(?![a-z])(?!\s*h)", t)
    if m:
        d.extra["reported_power_w"] = _number(m.group(1)) * (1000 if m.group(2) == "kw" else 1)
        d.words["reported_power_w"] = m.group(0).strip()
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*j\s*(?:/|per)\s*1k", t) if _mentions(t, "1k") else None
    if m:
        d.extra["reported_j_per_1k_tok"] = _number(m.group(1))
        d.words["reported_j_per_1k_tok"] = m.group(0).strip()
        t = _blank(t, m)
    d.t = t


def _read_money_and_grid(d: _Draft) -> None:
    t = d.t
    if not _mentions(t, "kwh", "度", "pue"):
        return
    m = re.search(r"\$\s*" + _NUM + r"\s*(?:/|per|a)\s*kwh", t) or re.search(
        _NUM + r"\s*(?:usd|\$|dollars?|美元)\s*(?:/|per|a|每)\s*(?:kwh|度)", t)
    if m:
        d.put("price_usd_kwh", _number(m.group(1)), m)
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*(?:g|grams?|克)\s*(?:co2e?|co₂)?\s*(?:/|per|每)\s*(?:kwh|度)", t)
    if m:
        d.put("grid_gco2_kwh", _number(m.group(1)), m)
        t = _blank(t, m)
    m = re.search(r"\bpue\s*(?:of|=|:|is|为)?\s*" + _NUM, t)
    if m:
        d.put("pue", _number(m.group(1)), m)
        t = _blank(t, m)
    d.t = t


_OWN_RE = re.compile(r"\b(?:(?:my|our)\s+own|(?:i|we)\s+(?:own|bought)|owned|on[\s-]?prem(?:ise|ises)?|self[\s-]hosted\s+on\s+"
                     r"(?:my|our)|(?:buy|buying|purchas\w*)\s+(?:the\s+)?(?:gpus?|cards?))\b|自有|自购|自己的\s*(?:gpu|显卡|卡)|买的")
_LIFETIME_RE = re.compile(r"(?:amorti[sz]\w*|depreciat\w*|lifetime|useful\s+life|life\s+of|over|for|折旧|摊销|使用)\s*"
                          r"(?:of|over|is|=|:|期|为)?\s*" + _NUM + r"\s*(?:-\s*)?(?:years?|yrs?|年)"
                          r"|" + _NUM + r"\s*(?:-\s*)?(?:years?|yrs?|年)\s*(?:lifetime|of\s+use|useful\s+life|life|折旧|摊销)")


def _read_ownership(d: _Draft) -> None:
    """Own GPUs ("on my own H100s", "we bought 4 A100s", "自有显卡") and the years their price is
    amortised over ("over 4 years", "a 3-year lifetime", "折旧 5 年")."""
    t = d.t
    m = _OWN_RE.search(t)
    if m:
        d.put("own_gpus", True, m)
    m = _LIFETIME_RE.search(t) if _mentions(t, "year", "yr", "年") else None
    if m and (m.group(0).split()[0] not in ("over", "for") or "own_gpus" in d.slots):
        d.put("gpu_lifetime_years", _number(m.group(1) or m.group(2)), m)
        t = _blank(t, m)
    d.t = t


def _read_workload(d: _Draft) -> None:
    t = d.t
    conv = d.conversions
    people = _mentions(t, "user", "people", "customer", "employee", "用户", "人")
    # N users each sending M messages a day: both stated, no factor needed
    m = re.search(_NUM + _MULT_RE + r"\s*(?:daily\s+)?(?:active\s+)?(?:users?|people|customers|employees|个?用户|人)"
                  r"[\s,，]*(?:who\s+)?(?:each|every\s+one|每人|每个人?)?\s*(?:send(?:s|ing)?|mak(?:es|ing)|ask(?:s|ing)?|"
                  r"with|having|do(?:es|ing)?|发|发送|问)?\s*(?:about|around|~|roughly|约)?\s*" + _NUM + _MULT_RE
                  + r"\s*(?:messages|requests|queries|questions|chats|prompts|calls|条消息|次请求|个问题|条|次)" + _PERIOD_RE, t) \
        if people else None
    if m:
        users, each = _number(m.group(1), m.group(2)), _number(m.group(3), m.group(4))
        per = _period(m.group(5)) or "day"
        rpm = users * each * _per_month(per)
        d.put("requests_per_month", rpm, m)
        d.put("workload", m.group(0).strip(), m)
        conv.append(d.m("reading.users_each", users=_fmt(users), each=_fmt(each), per=d.m(f"period.{per}"),
                        k=_fmt(_per_month(per)), pers=d.m(f"periods.{per}"), rpm=_fmt(rpm)))
        d.t = _blank(t, m)
        return
    # users per day x requests per user per day
    m = re.search(_NUM + _MULT_RE + r"\s*(?:daily\s+)?(?:active\s+)?(?:users?|people|customers|个?用户|人)" + _PERIOD_RE, t) \
        if people else None
    lead = re.search(_LEAD_PERIOD_RE + _NUM + _MULT_RE + r"\s*(?:个?用户|人|users?)", t) if people and not m else None
    if m or lead:
        if m:
            n, per = _number(m.group(1), m.group(2)), _period(m.group(3)) or "day"
        else:
            assert lead is not None
            n, per = _number(lead.group(3), lead.group(4)), _period(lead.group(1) or lead.group(2)) or "day"
        rpu = _factor("requests_per_user_day")
        per_day_users = n * _per_month(per) / _dpm()
        rpm = per_day_users * rpu * _dpm()
        d.put("requests_per_month", rpm, m or lead)  # type: ignore[arg-type]
        d.put("workload", (m or lead).group(0).strip(), m or lead)  # type: ignore[union-attr,arg-type]
        conv.append(d.m("reading.users_day", users=_fmt(per_day_users), rpu=_fmt(rpu), dpm=f"{_dpm():.2f}",
                        rpm=_fmt(rpm)))
        t = _blank(t, m or lead)  # type: ignore[arg-type]
        d.t = t
        return
    # requests (and what users call them: messages, chats, queries), QPS / RPS
    asks = _mentions(t, "req", "call", "quer", "inference", "prompt", "messag", "chat", "conversation", "question",
                     "completion", "qps", "rps", "请求", "调用", "推理", "次", "消息", "对话", "问题")
    noun = (r"(?:requests?|reqs?|calls?|queries|query|inferences|prompts|messages|msgs|chats|conversations|questions|"
            r"completions|generations|次请求|个请求|次调用|次推理|条消息|次对话|个问题|请求|消息|次)")
    m = lead = None
    per_second = re.search(r"(?:\b(?:qps|rps)\s*(?:of|=|:|is|about|around|~|at|peak|峰值|为|约)?\s*~?" + _NUM + _MULT_RE
                           + r"|" + _NUM + _MULT_RE + r"\s*(?:qps|rps|req/s|requests/s)\b)", t) \
        if _mentions(t, "qps", "rps", "/s") else None
    if per_second:
        num, mult = (per_second.group(1), per_second.group(2)) if per_second.group(1) else (per_second.group(3),
                                                                                           per_second.group(4))
        n, per = _number(num, mult), "second"
    elif asks:
        m = re.search(_NUM + _MULT_RE + r"\s*((?:[a-z-]+\s+){0,2}?)" + noun + _PERIOD_RE, t)
        if m is None or m.group(4) is None:  # "每秒 10 个请求": the period comes first
            lead = re.search(_LEAD_PERIOD_RE + _NUM + _MULT_RE + r"\s*(?:次|个|条)?(?:[\u4e00-\u9fff]{0,4}?)?"
                             r"(?:请求|调用|推理|消息|对话|问题|requests?|calls?|messages|queries)", t)
            m = None if lead else m
        if m:
            adverb = re.search(r"\b(daily|monthly|hourly|weekly|yearly)\b", m.group(3))  # "1M daily requests"
            n, per = _number(m.group(1), m.group(2)), _period(m.group(4)) or _period(adverb and adverb.group(1))
        elif lead:
            n, per = _number(lead.group(3), lead.group(4)), _period(lead.group(1) or lead.group(2))
    hit = per_second or m or lead
    if hit:
        rpm = _monthly(n, per)
        d.put("requests_per_month", rpm, hit)
        d.put("workload", hit.group(0).strip(), hit)
        if per and per != "month":
            conv.append(d.m("reading.requests_per", n=_fmt(n), per=d.m(f"period.{per}"), k=_fmt(_per_month(per)),
                            pers=d.m(f"periods.{per}"), rpm=_fmt(rpm)))
        elif per is None:
            conv.append(d.m("reading.no_period", words=hit.group(0).strip()))
        d.t = _blank(t, hit)
        return
    # characters (Chinese 字 / 万字 / "wan zi" or English characters)
    m = re.search(_NUM + _MULT_RE + r"\s*(?:(chinese|english)\s+)?(characters|chars|汉字|个字|字|zi)(?![a-z])" + _PERIOD_RE, t) \
        if _mentions(t, "char", "字", "zi") else None
    if m:
        chars = _number(m.group(1), m.group(2))
        chinese = m.group(3) == "chinese" or m.group(4) in ("汉字", "个字", "字", "zi") or (m.group(2) or "") in ("万", "亿", "wan", "yi")
        key = "chinese_chars_per_token" if chinese else "english_chars_per_token"
        cpt = _factor(key)
        tokens = chars / cpt
        stated = m.group(0).strip()
        conv.append(d.m("reading.chars", stated=stated, chars=_fmt(chars),
                        which=d.m("reading.chinese" if chinese else "reading.english"), cpt=_fmt(cpt), key=key,
                        tokens=_fmt(tokens)))
        _set_tokens(d, tokens, _period(m.group(5)), stated)
        d.t = _blank(t, m)
        return
    # bytes of text
    m = re.search(_NUM + r"\s*(kb|mb|gb|tb|gigabytes?|megabytes?|terabytes?)\b\s*(?:of\s+)?(?:\w+\s+)?(?:text|data|corpus|"
                  r"documents|logs|文本|数据|语料)" + _PERIOD_RE, t) \
        if _mentions(t, "b ", "byte") or t.endswith("b") else None
    if m:
        unit = m.group(2)[0] + "b"
        gb = _number(m.group(1)) * _BYTES[unit] / _BYTES["gb"]
        tpg = _factor("english_tokens_per_gb")
        tokens = gb * tpg
        conv.append(d.m("reading.bytes", stated=m.group(0).strip(), gb=_fmt(gb), tpg=_fmt(tpg), tokens=_fmt(tokens)))
        _set_tokens(d, tokens, _period(m.group(3)), m.group(0).strip())
        d.t = _blank(t, m)
        return
    # tokens
    m = re.search(_NUM + _MULT_RE + r"\s*(?:tokens?|toks?|个?token|词元)" + _PERIOD_RE, t) if _mentions(t, "tok", "词元") else None
    if m:
        tokens = _number(m.group(1), m.group(2))
        _set_tokens(d, tokens, _period(m.group(3)), m.group(0).strip())
        d.t = _blank(t, m)
        return
    # hours a day of continuous generation
    if not _mentions(t, "h", "小时"):
        return
    m = re.search(_NUM + r"\s*(?:hours?|hrs?|h|小时)\s*(?:a|per|/|each|every|每)?\s*(?:day|天|日)", t) or re.search(
        r"(?:每天|每日|a day)\s*" + _NUM + r"\s*(?:hours?|小时)", t)
    if m:
        d.put("hours_per_day", _number(m.group(1)), m)
        d.put("workload", m.group(0).strip(), m)
        d.t = _blank(t, m)


def _set_tokens(d: _Draft, tokens: float, period: str | None, stated: str) -> None:
    d.put("workload", stated, stated)
    if period is None:
        d.put("job_tokens", tokens, stated)
    else:
        d.put("tokens_per_month", _monthly(tokens, period), stated)
        if period != "month":
            d.conversions.append(d.m("reading.tokens_per", tokens=_fmt(tokens), per=d.m(f"period.{period}"),
                                     k=_fmt(_per_month(period)), tpm=_fmt(d.slots["tokens_per_month"])))


def _leftover_facts(t: str, lang: str = "en") -> list[str]:
    """Quantities still in the text after every reader took its part: stated, but not used."""
    out = []
    for m in _LEFTOVER_RE.finditer(t):
        out.append(For(lang)("reading.leftover", words=" ".join(m.group(0).split())))
    return out
