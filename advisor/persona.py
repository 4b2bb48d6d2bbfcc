"""The EcoLobster voice: a few lines in English or Chinese, chosen by the answer's mood and its
first alert. The voice is a layer over the Answer; it never carries a number (a test checks every
line for digits), so it can never contradict the figures."""

from __future__ import annotations

import re

from advisor.answer import Answer

_OPEN = {
    "en": {
        "green": "[Green] EcoLobster here, swimming happily in cool water: this is an efficient choice.",
        "yellow": "[Yellow] EcoLobster here. The water is getting warm: there is energy left on the table.",
        "orange": "[Orange] *shell turns orange* Oh no, I can feel the heat: this configuration hits an energy trap.",
        "red": "[Red] *shell turns red* I'm boiling! This configuration is cooking me alive.",
        "gray": "[Gray] EcoLobster here, antennae twitching: the evidence is thin, so I'll stay cautious.",
    },
    "zh": {
        "green": "[绿色] 我是节能龙虾，在清凉的水里开心地游着：这个选择很高效。",
        "yellow": "[黄色] 我是节能龙虾。水有点变暖了：还有能耗可以省下来。",
        "orange": "[橙色] *龙虾壳变橙了* 哎呀，我感觉到热了：这个配置踩中了能耗陷阱。",
        "red": "[红色] *龙虾壳变红了* 我要被煮熟了！这个配置在严重浪费能源。",
        "gray": "[灰色] 我是节能龙虾，触角在抖：证据还不够充分，我先谨慎些。",
    },
}
_ALERT = {
    "en": {
        "INT8_MIXED": "Default mixed-precision decomposition is a classic trap: a small config change cools me down.",
        "FP8_EAGER": "Low-precision float weights in eager mode make my shell glow: the hardware is ready, the software path is not.",
        "NF4_SMALL": "Low-bit weights on a small model are the wrong tool: the dequantization tax outweighs the savings.",
        "BS1_PRODUCTION": "Serving requests individually keeps the water boiling: batch them up.",
        "NIGHTLY_BUILD": "A nightly build makes me nervous: pin stable releases before trusting any figure.",
    },
    "zh": {
        "INT8_MIXED": "默认的混合精度分解是经典陷阱：改动配置就能让我凉快下来。",
        "FP8_EAGER": "eager 模式下的低精度浮点权重让我的壳发烫：硬件准备好了，软件路径还没有。",
        "NF4_SMALL": "小模型用低比特量化是用错了工具：反量化的开销超过了节省。",
        "BS1_PRODUCTION": "请求逐个处理会让水持续沸腾：把请求合并成批吧。",
        "NIGHTLY_BUILD": "夜间构建版让我很紧张：先换成稳定版本，再相信测量结果。",
    },
}
_CLOSE = {
    "en": {
        "green": "Keep it up and I'll keep swimming in cool water.",
        "yellow": "A small change and we're both back in cool water.",
        "orange": "*shell cools to green* Apply the fix above and I'm back to happy swimming.",
        "red": "*shell cools to green* Switch to the recommendation above and the water turns cool again.",
        "gray": "Measure it on your GPU and I'll give you a confident answer.",
        "error": "Fix the items above and ask me again: I'm ready when you are.",
    },
    "zh": {
        "green": "继续保持，我就能始终在凉水里游。",
        "yellow": "稍作调整，我们就都回到凉水里了。",
        "orange": "*龙虾壳恢复绿色* 按上面的方法修好，我就又能开心地游了。",
        "red": "*龙虾壳恢复绿色* 换成上面推荐的配置，水就凉下来了。",
        "gray": "在你的显卡上实测，我就能给出更有把握的答案。",
        "error": "把上面的问题改好再问我吧，我随时待命。",
    },
}
_SIGN = {"en": "-- Your EcoLobster", "zh": "—— 你的节能龙虾"}

_DIGIT = re.compile(r"\d")


def lines_for(answer: Answer, lang: str) -> list[str]:
    lang = lang if lang in _OPEN else "en"
    if answer.protocol == "error":
        return [_OPEN[lang]["gray"], _CLOSE[lang]["error"], _SIGN[lang]]
    out = [_OPEN[lang][answer.mood]]
    if answer.alerts and answer.alerts[0].code in _ALERT[lang]:
        out.append(_ALERT[lang][answer.alerts[0].code])
    out.append(_CLOSE[lang][answer.mood])
    out.append(_SIGN[lang])
    return out


def apply(answer: Answer, lang: str | None = None) -> Answer:
    """A copy of `answer` with the EcoLobster voice lines for its mood, in `lang` (default: the
    answer's own language)."""
    lg = lang or answer.lang or "en"
    lines = [ln for ln in lines_for(answer, lg) if not _DIGIT.search(ln)]
    return answer.model_copy(update={"voice": lines, "lang": lg if lg in ("en", "zh") else "en"})
