"""CPU and RAM energy (and CodeCarbon's own GPU figure) beside the engine's GPU measurement.

CodeCarbon's offline tracker makes no network calls. The grid intensity comes from our region
catalog (``measurements/catalog/regions.csv``) and is forced into the tracker, so its CO2 figure
and ours use the same source; the country code is looked up from the region's names when it is
a country, and is only a label otherwise.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import BaseModel, ConfigDict


class CarbonUnavailable(RuntimeError):
    """CodeCarbon is not installed or could not start."""


class CarbonReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float
    cpu_energy_kwh: float
    ram_energy_kwh: float
    gpu_energy_kwh: float  # CodeCarbon's own GPU figure, for the cross-check against the engine
    codecarbon_emissions_kg: float
    region: str
    country_iso: str
    grid_gco2_kwh: float
    cpu_model: str | None = None

    @property
    def cpu_ram_energy_j(self) -> float:
        return (self.cpu_energy_kwh + self.ram_energy_kwh) * 3.6e6

    def co2_kg(self, energy_kwh: float) -> float:
        """CO2 of any energy at this report's grid intensity."""
        return energy_kwh * self.grid_gco2_kwh / 1000.0


def country_iso3(names: list[str]) -> str | None:
    """ISO 3166 alpha-3 code of the first name that is a country (pycountry ships with CodeCarbon)."""
    try:
        import pycountry
    except ImportError:
        return None
    for n in names:
        try:
            return pycountry.countries.lookup(n).alpha_3
        except LookupError:
            continue
    return None


class CarbonTracker:
    """Start/stop around a run; ``stop()`` returns a CarbonReport."""

    def __init__(self, region: str = "us", measure_power_secs: float = 1.0,
                 gpu_ids: list[int] | None = None):
        from measurements.catalog import resolve_region

        self.region = resolve_region(region)
        names = [self.region.key, self.region.name, *self.region.aliases]
        self.country = country_iso3(names) or "USA"
        self.measure_power_secs = measure_power_secs
        self.gpu_ids = gpu_ids
        self._tracker: Any = None
        self._t0 = 0.0

    def start(self) -> CarbonTracker:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as err:
            raise CarbonUnavailable("codecarbon is not installed (pip install 'ecolobster[engine]'); "
                                    "CPU/RAM energy is not measured") from err
        kwargs: dict[str, Any] = dict(
            country_iso_code=self.country, save_to_file=False, log_level="error",
            measure_power_secs=self.measure_power_secs, tracking_mode="machine",
            force_carbon_intensity_g_co2e_kwh=self.region.grid_gco2_kwh, project_name="ecolobster-bench")
        if self.gpu_ids is not None:
            kwargs["gpu_ids"] = self.gpu_ids
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        try:
            self._tracker = OfflineEmissionsTracker(**kwargs)
            self._t0 = time.monotonic()
            self._tracker.start()
        except Exception as err:  # CodeCarbon probes the machine; any failure is non-fatal for a bench
            raise CarbonUnavailable(f"CodeCarbon could not start: {err}") from err
        return self

    def stop(self) -> CarbonReport:
        if self._tracker is None:
            raise CarbonUnavailable("the tracker was never started")
        emissions = self._tracker.stop() or 0.0
        d = self._tracker.final_emissions_data
        self._tracker = None
        return CarbonReport(
            duration_s=float(getattr(d, "duration", time.monotonic() - self._t0)),
            cpu_energy_kwh=float(d.cpu_energy or 0.0), ram_energy_kwh=float(d.ram_energy or 0.0),
            gpu_energy_kwh=float(d.gpu_energy or 0.0), codecarbon_emissions_kg=float(emissions),
            region=self.region.key, country_iso=self.country, grid_gco2_kwh=self.region.grid_gco2_kwh,
            cpu_model=getattr(d, "cpu_model", None),
        )
