"""Section labels of the renderers in English and Chinese (the answer's own text stays as the
protocols wrote it; the voice is translated by the persona)."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "alert": "Alert", "quick_fix": "Quick fix", "waste": "waste vs best", "errors": "Errors", "warnings": "Warnings",
        "error": "error", "warning": "warning", "money": "Money and carbon", "configuration": "configuration",
        "km": "km driven", "phones": "phone charges", "recommendations": "Recommendations",
        "impact": "Expected impact", "derived": "How the numbers were derived", "defaults": "Defaults applied",
        "provenance": "Provenance", "figures": "figures", "tier": "tier", "method": "method", "confidence": "confidence",
        "rows": "rows", "caveats": "Caveats", "sources": "Sources", "mood": "mood", "here": "<- you are here",
        "bar": "bar = efficiency relative to the best",
        "not_understood": "Stated but not used in this answer", "continued": "continued", "more_rows": "... {n} more rows",
        "more_hint": "More (tables, chart, code, provenance): {how}",
    },
    "zh": {
        "alert": "警报", "quick_fix": "快速修复", "waste": "相对最佳的浪费", "errors": "错误", "warnings": "警告",
        "error": "错误", "warning": "警告", "money": "费用与碳排放", "configuration": "配置",
        "km": "相当于驾车公里", "phones": "相当于手机充电次数", "recommendations": "建议",
        "impact": "预期效果", "derived": "数字是怎么算出来的", "defaults": "使用的默认值",
        "provenance": "数据来源与推导", "figures": "数据", "tier": "层级", "method": "方法", "confidence": "置信度",
        "rows": "测量行", "caveats": "注意事项", "sources": "引用", "mood": "心情", "here": "<- 你在这里",
        "bar": "条形 = 相对最佳的效率",
        "not_understood": "你提到但本回答未能使用的信息", "continued": "续", "more_rows": "……还有 {n} 行",
        "more_hint": "更多内容（表格、图表、代码、来源）：{how}",
    },
}


def label(lang: str | None, key: str) -> str:
    return LABELS.get(lang or "en", LABELS["en"]).get(key, LABELS["en"][key])
