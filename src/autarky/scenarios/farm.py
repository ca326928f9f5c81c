"""Farms for a day: irrigation controllers that buy weather data when their sensors are not enough.

Machines: ``--machines`` irrigation controllers (one field each, a soil moisture sensor), one weather
station per 50 fields (a weather site: its fields share its rain and evapotranspiration), one farm
owner per 100 fields.

The world (``autarky.world``): hourly weather of each site (temperature, clouds, rain), reference
evapotranspiration from clear-sky irradiance under the clouds, a bucket water balance per field
(``soil_flows``: moisture, crop ET, drainage) and soil sensors that get stuck for a day
(``soil_sensor``; the stuck readings are the ground truth of a faulty sensor).

Every hour each controller reads its sensor (its last 24 hourly readings, with the water its valve
applied before each) and decides with ``IrrigationController`` (``irrigation-balance/1``, trained on
generated weather). When the soil will reach its refill point within six hours (its sensor's or,
stuck, its reckoned moisture) and it holds no fresh forecast, it **buys** the next hour of its
station's weather stream through the ``data`` module (``data/buy``: escrow, a read grant; the
station seals the stream key to it; it checks and acknowledges the delivery, which pays the station)
and **decides again** with the 30-hour forecast (rain and evapotranspiration): it irrigates what the
next 24 hours need, or nothing if rain will cover it; a forecast serves for six hours. Irrigation is
physical (no transaction) but every irrigation decision is a decision record, and every purchase
carries the decision that asked for it.

Baseline: the usual rule, run on a copy of every field with the same weather and sensors, in the
run's hours only: irrigate back to field capacity whenever the sensor reads below the refill point
(half the available water), trusting the sensor and ignoring rain. The report compares water used,
water drained below the roots, the soil water left at the end, hours below the refill point and
crop-stress hours (true moisture below a quarter of the available water).
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import numpy as np

from autarky import world
from autarky.agent import Machine
from autarky.encoding import canonical_decode, canonical_encode
from autarky.models import IrrigationController
from autarky.scenarios._datasale import DataBuyer, DataSeller, count_sales
from autarky.scenarios.base import HOUR_MS, Scenario, ScenarioContext, scenario
from autarky.scenarios.genesis import GenesisBuilder
from autarky.scenarios.models import models_dir, registration_skill, trained_models
from autarky.scenarios.report import Section, table
from autarky.scenarios.svg import line_chart

POLICY = "irrigation"
FIELDS_PER_STATION = 50
FIELDS_PER_FARM = 100
HISTORY_H = 6
"""Hours of weather and soil before the run starts (no irrigation)."""
READINGS_H = 24
"""The sensor readings a controller decides on (fewer in the first hours): enough to see the whole of
a day stuck, and reckon the soil from the last reading it trusts."""
FORECAST_H = 30
FORECAST_TTL_MS = 6 * HOUR_MS
WEATHER_PRICE = 30
"""aut per hour of a station's stream."""
STRESS_FRACTION = 0.25
RATE_MM_PER_H = 5.0
"""The irrigation system's application rate: a decided amount is delivered over the next hours."""
START_MS = 1_781_478_000_000
"""2026-06-15 00:00 at the site (UTC+1): a summer day, when irrigation matters."""


@functools.lru_cache(maxsize=4)
def controller(seed: int) -> IrrigationController:
    """The controllers' policy, trained on generated weather with the run's seed (cached on disk by
    ``scenarios.models``) and loaded from its model file."""
    return IrrigationController(trained_models([POLICY], seed)[POLICY].model)


def _pair(both: dict[str, Any]) -> str:
    return f"{both['controller']} / {both['rule_baseline']}"


def _milli(values: Any) -> list[int]:
    return [int(v) for v in np.rint(np.asarray(values) * 1000.0)]


@scenario
class Farm(Scenario):
    name = "farm"
    summary = "irrigation controllers buying weather data (data module) when their sensors are not enough"
    tail_ms = 2 * HOUR_MS

    day_start_ms = START_MS

    # -- genesis and the world ----------------------------------------------------------------------

    def build_genesis(self, g: GenesisBuilder) -> None:
        n = max(1, self.config.machines)
        self.n = n
        self.model_owner = g.actor("agronomist", "model-owner")
        farms = [g.actor(f"farm-{k}", "farm-owner", balance=100_000) for k in range(-(-n // FIELDS_PER_FARM))]
        self.stations = [
            g.actor(f"station-{k}", "weather-station", balance=1_000)
            for k in range(-(-n // FIELDS_PER_STATION))
        ]
        self.fields = [
            g.actor(f"field-{i}", "irrigation-controller", owner=farms[i // FIELDS_PER_FARM], balance=5_000)
            for i in range(n)
        ]
        seed = self.config.seed
        sites = np.arange(len(self.stations))
        self.site = np.arange(n) // FIELDS_PER_STATION
        first = self.start_ms - HISTORY_H * HOUR_MS
        hours = HISTORY_H + self.config.hours + self.tail_ms // HOUR_MS + FORECAST_H + 1
        self.times = first + np.arange(hours, dtype=np.int64) * HOUR_MS
        sky = world.weather(seed, sites, self.times)
        _, clear = world.clearsky(self.times + HOUR_MS // 2)
        ghi = clear.ghi[None, :] * world.cloud_transmittance(sky.cloud_cover)
        self.et = world.reference_et_mm_per_h(sky.temperature_c, ghi)  # (S, T) mm/h
        self.rain = sky.rain_mm_per_h  # (S, T) mm/h
        self.soil = world.soil_params(seed, np.arange(n))
        rng = np.random.default_rng(seed)
        available = self.soil.field_capacity - self.soil.wilting_point
        self.refill = self.soil.wilting_point + 0.5 * available
        self.stress = self.soil.wilting_point + STRESS_FRACTION * available
        start = self.soil.wilting_point + (0.45 + 0.5 * rng.random(n)) * available
        t = len(self.times)
        self.truth = np.zeros((n, t))
        self.base = np.zeros((n, t))  # the rule baseline's fields
        self.truth[:, 0] = self.base[:, 0] = start
        self.water = np.zeros((n, t))  # mm irrigated in the hour starting at each column
        self.base_water = np.zeros((n, t))
        self.drained = np.zeros((n, t))  # mm lost below the roots (or run off) in the hour from each column
        self.base_drained = np.zeros((n, t))
        self.pending = np.zeros(n)  # mm decided and not yet delivered
        self.base_pending = np.zeros(n)
        self.column = 0
        self.readings = self._sensor(self.truth, 0)
        self.base_readings = self._sensor(self.base, 0)
        for c in range(1, HISTORY_H + 1):  # the hours before the run: no irrigation
            self._step(c)

    def _sensor(self, moisture: np.ndarray, c: int) -> world.SensorReadings:
        return world.soil_sensor(
            self.config.seed, np.arange(self.n), self.times[: c + 1], moisture[:, : c + 1]
        )

    def _step(self, c: int) -> None:
        """Advance every field (and its baseline copy) from column c-1 to c, read the sensors, and
        apply the baseline rule for the hour starting at c if it is one of the run's (the controllers
        decide only then too)."""
        site = self.site
        rain, et = self.rain[site, c - 1], self.et[site, c - 1]
        flows = world.soil_flows(self.soil, self.truth[:, c - 1], rain, self.water[:, c - 1], et)
        base = world.soil_flows(self.soil, self.base[:, c - 1], rain, self.base_water[:, c - 1], et)
        self.truth[:, c], self.drained[:, c - 1] = flows.moisture, flows.drained_mm + flows.runoff_mm
        self.base[:, c], self.base_drained[:, c - 1] = base.moisture, base.drained_mm + base.runoff_mm
        self.column = c
        self.readings = self._sensor(self.truth, c)
        self.base_readings = self._sensor(self.base, c)
        read = self.base_readings.value[:, -1]
        running = HISTORY_H <= c < HISTORY_H + self.config.hours
        start = (read < self.refill) & (self.base_pending <= 0) & running
        self.base_pending += np.where(start, (self.soil.field_capacity - read) * self.soil.root_depth_mm, 0.0)
        self.base_water[:, c] = np.minimum(self.base_pending, RATE_MM_PER_H)
        self.base_pending -= self.base_water[:, c]
        self.water[:, c] = np.minimum(self.pending, RATE_MM_PER_H)  # what the valves still deliver
        self.pending -= self.water[:, c]

    def world_at(self, time_ms: int) -> int:
        """The column of ``time_ms``, the world advanced to it (once per hour, by the first machine)."""
        c = int((time_ms - self.times[0]) // HOUR_MS)
        while self.column < c:
            self._step(self.column + 1)
        return c

    def forecast(self, site: int, time_ms: int) -> bytes:
        """A station's stream content for the hour: rain and reference ET for the next 30 hours."""
        c = int((time_ms - self.times[0]) // HOUR_MS)
        return canonical_encode(
            {
                "from_ms": int(self.times[c]),
                "rain_mm_milli": _milli(self.rain[site, c : c + FORECAST_H]),
                "et_mm_milli": _milli(self.et[site, c : c + FORECAST_H]),
            }
        )

    # -- machines -----------------------------------------------------------------------------------

    def setup(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.sales = count_sales(ctx)
        self.reasons: Counter[str] = Counter()
        self.forecast_reasons: Counter[str] = Counter()
        seed = self.config.seed
        ctx.model_dir = models_dir(seed)
        owner = ctx.machine(self.model_owner)
        owner.include(registration_skill(trained_models([POLICY], seed), self.start_ms))
        self.sellers = [
            DataSeller(
                ctx,
                ctx.machine(actor),
                name=f"weather/site-{k}",
                description="hourly rain and reference evapotranspiration, 30 hours ahead",
                price=WEATHER_PRICE,
                content=functools.partial(self.forecast, k),
            )
            for k, actor in enumerate(self.stations)
        ]
        for i, actor in enumerate(self.fields):
            self._controller(ctx.machine(actor), i)

    def _controller(self, m: Machine, i: int) -> None:
        policy = controller(self.config.seed)
        site = int(self.site[i])
        soil = {
            "field_capacity_milli": round(float(self.soil.field_capacity[i]) * 1000),
            "wilting_point_milli": round(float(self.soil.wilting_point[i]) * 1000),
            "root_depth_mm": round(float(self.soil.root_depth_mm[i])),
        }
        held: dict[str, Any] = {"forecast": None}

        def inputs(now: int, c: int) -> dict[str, Any]:
            first = max(0, c + 1 - READINGS_H)
            readings = self.readings.value[i, first : c + 1]
            # the water applied in the hour before each reading (none before the first column)
            applied = np.concatenate([[0.0], self.water[i, :c]])[first : c + 1]
            values: dict[str, Any] = {
                "time_ms": now,
                "moisture_milli": _milli(readings),
                "irrigated_mm_milli": _milli(applied),
                **soil,
            }
            forecast = held["forecast"]
            if forecast is not None and now - forecast["from_ms"] < FORECAST_TTL_MS:
                skip = (now - forecast["from_ms"]) // HOUR_MS
                values["rain_mm_milli"] = forecast["rain_mm_milli"][skip:]
                values["et_mm_milli"] = forecast["et_mm_milli"][skip:]
            return values

        async def with_forecast(m: Machine, content: bytes) -> None:
            held["forecast"] = canonical_decode(content)
            now = m.now_ms()
            c = self.world_at(now)
            decision = m.decide(policy, inputs(now, c))
            self.forecast_reasons[str(decision.output["reason"])] += 1
            self._irrigate(m, i, c, decision)

        buyer = DataBuyer(self.ctx, m, with_forecast)

        @m.on_interval(period_ms=HOUR_MS, offset_ms=0)
        async def hourly(m: Machine) -> None:
            now = m.now_ms()
            if not self.start_ms <= now < self.end_ms:
                return
            c = self.world_at(now)
            if self.pending[i] > 0 or self.water[i, c] > 0:
                return  # the valve is still delivering the last decision's water
            decision = m.decide(policy, inputs(now, c))
            out = decision.output
            offer = self.sellers[site].offer_id
            if out["buy_weather"] and offer is not None:
                self.reasons[str(out["reason"])] += 1
                await buyer.buy(m, offer, 1, decision)
                return
            self._irrigate(m, i, c, decision)

    def _irrigate(self, m: Machine, i: int, c: int, decision: Any) -> None:
        amount = int(decision.output["irrigate_mm_milli"])
        if amount > 0:
            now = min(amount / 1000.0, RATE_MM_PER_H)
            self.water[i, c] += now
            self.pending[i] += amount / 1000.0 - now
            m.record(decision, tx=None)  # a physical action: no transaction, still a decision record

    # -- metrics and report -------------------------------------------------------------------------

    def finish(self, ctx: ScenarioContext) -> dict[str, Any]:
        end = HISTORY_H + self.config.hours
        run = slice(HISTORY_H, end)
        self.world_at(self.end_ms)
        truth, base = self.truth[:, run], self.base[:, run]
        water, base_water = float(self.water[:, run].sum()), float(self.base_water[:, run].sum())
        faulty = self.readings.faulty[:, HISTORY_H:end]
        depth = self.soil.root_depth_mm

        def both(controller_mm: float, baseline_mm: float) -> dict[str, float]:
            return {
                "controller": round(float(controller_mm), 1),
                "rule_baseline": round(float(baseline_mm), 1),
            }

        return {
            "fields": self.n,
            "weather_stations": len(self.stations),
            "controller": {
                "policy": controller(self.config.seed).name,
                "model_hash": (controller(self.config.seed).model_hash or b"").hex(),
            },
            "water": {
                "controller_mm": round(water, 1),
                "rule_baseline_mm": round(base_water, 1),
                "saved_mm": round(base_water - water, 1),
                "saved_pct": round(100 * (base_water - water) / base_water, 1) if base_water else 0.0,
                "mm_per_field": round(water / self.n, 2),
                "baseline_mm_per_field": round(base_water / self.n, 2),
                "drained_mm": both(self.drained[:, run].sum(), self.base_drained[:, run].sum()),
                "soil_water_end_mm": both(
                    (self.truth[:, end] * depth).sum(), (self.base[:, end] * depth).sum()
                ),
                "valves_still_to_deliver_mm": both(
                    (self.pending + self.water[:, end]).sum(),
                    (self.base_pending + self.base_water[:, end]).sum(),
                ),
            },
            "stress_hours": {
                "controller": int((truth < self.stress[:, None]).sum()),
                "rule_baseline": int((base < self.stress[:, None]).sum()),
            },
            "below_refill_hours": {
                "controller": int((truth < self.refill[:, None]).sum()),
                "rule_baseline": int((base < self.refill[:, None]).sum()),
            },
            "sensors": {
                "stuck_sensor_hours": int(faulty.sum()),
                "fields_with_stuck_sensor": int(faulty.any(axis=1).sum()),
            },
            "weather_data": {
                "purchases": self.sales["bought"],
                "delivered_and_acknowledged": self.sales["delivered"],
                "refunded": self.sales["refunded"],
                "paid_to_stations": self.sales["paid_to_sellers"],
                "buy_reasons": dict(sorted(self.reasons.items())),
                "decisions_with_forecast": sum(self.forecast_reasons.values()),
                "decided_with_forecast": dict(sorted(self.forecast_reasons.items())),
            },
        }

    def sections(self, metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
        run = range(HISTORY_H, HISTORY_H + self.config.hours)
        hours = [float(c - HISTORY_H) for c in run]
        water = self.water.sum(axis=0)
        base_water = self.base_water.sum(axis=0)
        w, s, d = metrics["water"], metrics["stress_hours"], metrics["weather_data"]
        return [
            Section(
                "Irrigation: controller vs rule",
                table(
                    [
                        ("water, controller (mm over all fields)", w["controller_mm"]),
                        ("water, rule baseline (mm)", w["rule_baseline_mm"]),
                        ("saved", f"{w['saved_mm']} mm ({w['saved_pct']} %)"),
                        ("drained below the roots, controller / rule (mm)", _pair(w["drained_mm"])),
                        ("soil water at the end, controller / rule (mm)", _pair(w["soil_water_end_mm"])),
                        (
                            "valves still to deliver, controller / rule (mm)",
                            _pair(w["valves_still_to_deliver_mm"]),
                        ),
                        (
                            "field-hours below the refill point, controller / rule",
                            _pair(metrics["below_refill_hours"]),
                        ),
                        ("crop-stress field-hours, controller / rule", _pair(s)),
                        ("stuck sensor field-hours", metrics["sensors"]["stuck_sensor_hours"]),
                    ]
                )
                + line_chart(
                    {
                        "controller": [[h, float(water[c])] for h, c in zip(hours, run, strict=True)],
                        "rule baseline": [[h, float(base_water[c])] for h, c in zip(hours, run, strict=True)],
                    },
                    y_label="mm irrigated",
                ),
                "The baseline irrigates to field capacity whenever its sensor reads below the refill point "
                "(trusting stuck sensors, ignoring rain), on a copy of every field with the same weather. "
                "Water it puts in the soil and that has not drained is still there at the end: over one day "
                "the difference in water used is mostly water the rule banks in the soil, the difference in "
                "water drained is what it wastes.",
            ),
            Section(
                "Weather data bought",
                table(
                    [
                        ("purchases (data/buy)", d["purchases"]),
                        ("keys delivered and acknowledged", d["delivered_and_acknowledged"]),
                        ("refunded (no delivery)", d["refunded"]),
                        ("paid to stations (aut)", d["paid_to_stations"]),
                        ("why bought", d["buy_reasons"]),
                        ("decisions made again with a forecast", d["decisions_with_forecast"]),
                        ("what they decided", d["decided_with_forecast"]),
                    ]
                ),
            ),
        ]
