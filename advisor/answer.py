"""The Answer: what every protocol returns and every renderer (rich, Markdown, JSON) shows.

An Answer holds numbers only through tables, charts, costs and alerts whose provenance and
citations say where each figure comes from. The persona layer adds words, never numbers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mood = Literal["green", "yellow", "orange", "red", "gray"]
MOODS: tuple[str, ...] = ("green", "yellow", "orange", "red", "gray")
Protocol = Literal["optimize", "diagnose", "compare", "estimate", "audit", "plan", "explain", "data", "error"]
Tier = Literal["measured", "interpolated", "extrapolated", "simulated", "none"]
Confidence = Literal["high", "medium", "low"]
Lang = Literal["en", "zh"]

# Waste against the best alternative for the same job -> mood (DESIGN.md, principle 3). These are
# the product's policy thresholds (upper bounds, in percent), not measured figures.
MOOD_THRESHOLDS: tuple[tuple[float, Mood], ...] = (
    (5.0, "green"),
    (30.0, "yellow"),
    (100.0, "orange"),
)
MOOD_ORDER: dict[str, int] = {"green": 0, "yellow": 1, "orange": 2, "red": 3, "gray": -1}


def mood_for_waste(waste_pct: float | None, evidence_ok: bool = True) -> Mood:
    """The mood of a configuration that wastes `waste_pct` percent against the best alternative."""
    if waste_pct is None or not evidence_ok:
        return "gray"
    for upper, mood in MOOD_THRESHOLDS:
        if waste_pct < upper:
            return mood
    return "red"


def worst_mood(*moods: Mood) -> Mood:
    known = [m for m in moods if m != "gray"]
    if not known:
        return "gray"
    return max(known, key=lambda m: MOOD_ORDER[m])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Citation(_Model):
    kind: Literal["row", "catalog", "factor", "derivation", "reference", "rule"]
    ref: str = Field(description="row id, catalog key, factor key, method name or document path")
    detail: str = ""


class Provenance(_Model):
    """How a figure (or a group of figures) was obtained."""

    subject: str = Field(description="what the figures describe, e.g. 'rtx4090d / mistral-7b / fp16 / bs1'")
    tier: Tier
    method: str = Field(description="'measured' or the named derivation, e.g. 'batch power law fit'")
    confidence: Confidence
    row_ids: list[str] = Field(default_factory=list)
    note: str = ""


class Alert(_Model):
    code: str = Field(description="stable id of the trap, e.g. INT8_MIXED, NF4_SMALL, BS1_PRODUCTION")
    title: str
    mood: Mood
    message: str
    fix: str | None = None
    impact_pct: float | None = Field(default=None, description="extra energy vs the fix, percent")
    citations: list[Citation] = Field(default_factory=list)


class Table(_Model):
    title: str
    columns: list[str]
    rows: list[list[str | float | int | None]]
    notes: list[str] = Field(default_factory=list)


class BarItem(_Model):
    label: str
    value: float
    mood: Mood
    annotation: str = ""
    current: bool = Field(default=False, description="the user's current configuration")


class Chart(_Model):
    title: str
    metric: str
    unit: str
    lower_is_better: bool = True
    items: list[BarItem]


class Recommendation(_Model):
    title: str
    detail: str = ""
    code: str | None = None
    language: str = "python"
    impact: str | None = None


class CostLine(_Model):
    """Energy, money and carbon of one configuration over a stated workload."""

    label: str
    kwh: float = Field(ge=0)
    usd: float = Field(ge=0)
    kg_co2: float = Field(ge=0)
    equivalents: dict[str, float] = Field(default_factory=dict)
    basis: str = Field(default="", description="the workload and factors the figures assume")


class Answer(_Model):
    protocol: Protocol
    title: str
    lang: Lang = "en"
    query: dict[str, Any] = Field(default_factory=dict, description="the resolved query")
    defaults_applied: list[str] = Field(default_factory=list)
    not_understood: list[str] = Field(
        default_factory=list, description="facts the user stated that this answer could not use (shown before it)")
    mood: Mood = "gray"
    waste_pct: float | None = None
    headline: str = ""
    alerts: list[Alert] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    charts: list[Chart] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)
    costs: list[CostLine] = Field(default_factory=list)
    conversions: list[str] = Field(default_factory=list, description="unit conversions shown to the user")
    provenance: list[Provenance] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    voice: list[str] = Field(default_factory=list, description="persona lines; never hold a number")
    extra: dict[str, Any] = Field(default_factory=dict)

    def stated_waste(self) -> float | None:
        """The waste the headline shows: the user's configuration's against the best. Where nobody
        stated one, waste_pct is the recommendation's own (0) and saying so beside the baseline's
        saving would only confuse."""
        return None if "default_baseline_waste_pct" in self.extra else self.waste_pct
