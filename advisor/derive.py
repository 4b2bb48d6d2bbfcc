"""The one set of functions that turns the primary metric (J per 1,000 generated tokens) into
everything else: energy per request, per month, cost, CO2 and everyday equivalents.

Every protocol derives through these, so no two figures in the product disagree. Factors (PUE,
equivalences) come from measurements/catalog/factors.csv with their sources.
"""

from __future__ import annotations

from advisor.answer import CostLine
from measurements import catalog
from measurements.schema import Region

J_PER_KWH = 3.6e6  # definition of the kilowatt-hour


def energy_j(j_per_1k_tok: float, tokens: float) -> float:
    """Joules to generate `tokens` tokens at `j_per_1k_tok`."""
    return j_per_1k_tok * tokens / 1000.0


def energy_per_request_j(j_per_1k_tok: float, gen_tokens: int) -> float:
    return energy_j(j_per_1k_tok, gen_tokens)


def energy_kwh(j_per_1k_tok: float, tokens: float, pue: float = 1.0) -> float:
    """Facility energy in kWh: GPU joules times the data-centre overhead (PUE)."""
    return energy_j(j_per_1k_tok, tokens) * pue / J_PER_KWH


def cost_usd(kwh: float, price_usd_kwh: float) -> float:
    return kwh * price_usd_kwh


def co2_kg(kwh: float, grid_gco2_kwh: float) -> float:
    return kwh * grid_gco2_kwh / 1000.0


def equivalents(kg_co2: float, kwh: float) -> dict[str, float]:
    """Everyday equivalents, each from a sourced factor."""
    return {
        "km_driven": kg_co2 * catalog.factor("km_driven_per_kgco2"),
        "smartphone_charges": kwh / catalog.factor("smartphone_charge_kwh"),
    }


def pue_for(region: Region | None, pue: float | None = None) -> float:
    """An explicit PUE wins; otherwise the cloud default for cloud rates, the local one for grids."""
    if pue is not None:
        return pue
    if region is not None and region.kind == "cloud":
        return catalog.factor("pue_cloud")
    return catalog.factor("pue_local")


def cost_line(
    label: str,
    j_per_1k_tok: float,
    tokens: float,
    price_usd_kwh: float,
    grid_gco2_kwh: float,
    pue: float = 1.0,
    basis: str = "",
) -> CostLine:
    kwh = energy_kwh(j_per_1k_tok, tokens, pue)
    kg = co2_kg(kwh, grid_gco2_kwh)
    return CostLine(
        label=label,
        kwh=kwh,
        usd=cost_usd(kwh, price_usd_kwh),
        kg_co2=kg,
        equivalents=equivalents(kg, kwh),
        basis=basis,
    )


def load_concurrency(tokens_per_s: float, itl_s: float) -> float:
    """Sequences in flight on a continuous-batching server that a load keeps busy (Little's law:
    each running sequence gains one token per decode step, so tokens/s = in flight / step time)."""
    return tokens_per_s * itl_s


def waste_pct(value: float, best: float) -> float:
    """How much more a configuration spends than the best alternative, in percent."""
    if best <= 0:
        raise ValueError("the best alternative must spend a positive amount")
    return (value / best - 1.0) * 100.0
