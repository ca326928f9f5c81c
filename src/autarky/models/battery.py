"""Battery policies: ``BatteryScheduler`` (a linear programme over the next 96 intervals) and the
``RuleBattery`` baseline, plus ``simulate_battery_day`` that scores either on a generated day.

The battery sits behind a household meter with PV. Per interval t (energy in Wh, prices in integer
price units per kWh): charge c_t, discharge d_t, grid import i_t and export e_t, state of charge s_t::

    minimise   sum_t  buy_t i_t - sell_t e_t + wear (c_t + d_t)        buy_t = p_t, sell_t = p_t - spread
    subject to i_t - e_t - c_t + d_t = load_t - pv_t
               s_t = s_{t-1} + eta_c c_t - d_t / eta_d,     soc_min <= s_t <= soc_max
               0 <= c_t <= P_c dt,  0 <= d_t <= P_d dt,  0 <= i_t <= I_t,  0 <= e_t <= E_t

``I_t`` and ``E_t`` (default: no bound) are how much the battery may buy and sell in interval t at
the price ``p_t`` it plans with: in a small market its own orders move the price, so a planner
that only knew prices would buy and sell more than the market can take at them (``plan_batch``'s
``import_max_wh`` and ``export_max_wh``; the microgrid scenario gives each battery its share of its
feeder's forecast surplus and deficit).

A solve takes a few milliseconds (scipy's HiGHS, sparse), so the scheduler re-plans at most every
``replan_every_ms`` (default one hour) and follows its plan in between (``decide`` then costs tens of
microseconds); ``plan_batch`` solves many batteries in sparse LPs of up to 64 batteries each.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray
from scipy.optimize import linprog

from autarky import world
from autarky.models.modelfile import ModelFile
from autarky.models.policy import CborValue, InputError, Inputs, optional_ints, require_int, require_ints

Floats = NDArray[np.float64]
STEP_MS = world.INTERVAL_MS
DT_H = STEP_MS / world.HOUR_MS


@dataclass(frozen=True)
class BatterySpec:
    """One battery, in integers as a machine knows them."""

    capacity_wh: int
    max_charge_w: int
    max_discharge_w: int
    charge_efficiency_bp: int  # basis points (9500 = 95 %)
    discharge_efficiency_bp: int
    soc_min_wh: int
    soc_max_wh: int

    @classmethod
    def from_world(cls, params: world.BatteryParams, index: int) -> BatterySpec:
        return cls(
            capacity_wh=round(float(params.capacity_wh[index])),
            max_charge_w=round(float(params.max_charge_w[index])),
            max_discharge_w=round(float(params.max_discharge_w[index])),
            charge_efficiency_bp=round(float(params.charge_efficiency[index]) * 10_000),
            discharge_efficiency_bp=round(float(params.discharge_efficiency[index]) * 10_000),
            soc_min_wh=round(float(params.soc_min_wh[index])),
            soc_max_wh=round(float(params.soc_max_wh[index])),
        )

    def to_world(self) -> world.BatteryParams:
        def one(value: float) -> Floats:
            return np.asarray([float(value)])

        return world.BatteryParams(
            capacity_wh=one(self.capacity_wh),
            max_charge_w=one(self.max_charge_w),
            max_discharge_w=one(self.max_discharge_w),
            charge_efficiency=one(self.charge_efficiency_bp / 10_000),
            discharge_efficiency=one(self.discharge_efficiency_bp / 10_000),
            soc_min_wh=one(self.soc_min_wh),
            soc_max_wh=one(self.soc_max_wh),
        )


@dataclass(frozen=True)
class Plan:
    start_ms: int
    charge_wh: Floats  # (T,)
    discharge_wh: Floats
    import_wh: Floats
    export_wh: Floats
    soc_wh: Floats
    prices: Floats


def _lp_one(
    spec: BatterySpec,
    soc_wh: float,
    net_wh: Floats,
    buy: Floats,
    sell: Floats,
    wear: float,
    import_max_wh: Floats | None = None,
    export_max_wh: Floats | None = None,
) -> tuple[Floats, Any, Floats, Floats, Floats]:
    """Objective, equality matrix, right-hand side and bounds of one battery's LP (5T variables);
    ``import_max_wh`` and ``export_max_wh`` bound the grid import and export per interval."""
    t = net_wh.size
    eta_c = spec.charge_efficiency_bp / 10_000
    eta_d = spec.discharge_efficiency_bp / 10_000
    eye = sparse.identity(t, format="csr")
    lag = sparse.eye(t, k=-1, format="csr")
    zero = sparse.csr_matrix((t, t))
    # variables: [c, d, i, e, s]
    balance = sparse.hstack([-eye, eye, eye, -eye, zero])
    storage = sparse.hstack([-eta_c * eye, (1.0 / eta_d) * eye, zero, zero, eye - lag])
    matrix = sparse.vstack([balance, storage])
    rhs = np.concatenate([net_wh, np.zeros(t)])
    rhs[t] = soc_wh
    cost = np.concatenate([np.full(t, wear), np.full(t, wear), buy, -sell, np.zeros(t)])
    lower = np.concatenate([np.zeros(4 * t), np.full(t, float(spec.soc_min_wh))])
    upper = np.concatenate(
        [
            np.full(t, spec.max_charge_w * DT_H),
            np.full(t, spec.max_discharge_w * DT_H),
            np.full(t, np.inf) if import_max_wh is None else import_max_wh,
            np.full(t, np.inf) if export_max_wh is None else export_max_wh,
            np.full(t, float(spec.soc_max_wh)),
        ]
    )
    return cost, matrix, rhs, lower, upper


def plan_batch(
    specs: list[BatterySpec],
    soc_wh: Floats,
    net_wh: Floats,
    prices: Floats,
    spread: float,
    wear: float,
    start_ms: int = 0,
    pool: Executor | None = None,
    import_max_wh: Floats | None = None,
    export_max_wh: Floats | None = None,
) -> list[Plan]:
    """Plans for many batteries: ``net_wh`` and ``prices`` (M, T). Up to ``BATCH_LP_BATTERIES``
    batteries share one sparse LP (block-diagonal, one solver call); more are solved in groups of
    that size, since the batteries are independent and the solver's time grows faster than the
    LP's size (one LP for 740 batteries took 20 s, its groups of 64 about 6 s). With a ``pool``
    (worker processes), the groups are solved there while this process solves the groups no
    worker has started (:class:`PendingPlans`): the same groups, so the same plans.

    ``import_max_wh`` and ``export_max_wh`` (M, T), when given, bound each battery's grid import and
    export per interval (Wh; ``inf`` where there is no bound): what the market can take from it at
    the planned price (module docstring)."""
    return start_plan_batch(
        specs, soc_wh, net_wh, prices, spread, wear, start_ms, pool, import_max_wh, export_max_wh
    ).result()


def start_plan_batch(
    specs: list[BatterySpec],
    soc_wh: Floats,
    net_wh: Floats,
    prices: Floats,
    spread: float,
    wear: float,
    start_ms: int = 0,
    pool: Executor | None = None,
    import_max_wh: Floats | None = None,
    export_max_wh: Floats | None = None,
) -> PendingPlans:
    """:func:`plan_batch`, handed to ``pool``'s workers and collected by :meth:`PendingPlans.result`,
    so the caller can do other work while they solve (a simulation's other machines)."""
    net = np.atleast_2d(np.asarray(net_wh, dtype=np.float64))
    price = np.atleast_2d(np.asarray(prices, dtype=np.float64))
    inf = np.full(net.shape, np.inf)
    imax = inf if import_max_wh is None else np.atleast_2d(np.asarray(import_max_wh, dtype=np.float64))
    emax = inf if export_max_wh is None else np.atleast_2d(np.asarray(export_max_wh, dtype=np.float64))
    groups = [
        (
            specs[first:last],
            soc_wh[first:last],
            net[first:last],
            price[first:last],
            spread,
            wear,
            start_ms,
            imax[first:last],
            emax[first:last],
        )
        for first in range(0, len(specs), BATCH_LP_BATTERIES)
        for last in (first + BATCH_LP_BATTERIES,)
    ]
    return PendingPlans(groups, pool)


class PendingPlans:
    """Battery plans being solved, group by group, in ``pool``'s workers (or here without one).

    :meth:`result` gives the plans in battery order. It waits for groups a worker has started;
    a group no worker has started yet is taken back and solved in this process. Either way a group
    is the same LP, so the plans do not depend on where or when it was solved."""

    def __init__(self, groups: list[tuple[Any, ...]], pool: Executor | None) -> None:
        self._groups = groups
        self._futures: list[Future[list[Plan]] | None] = (
            [None] * len(groups) if pool is None else [pool.submit(_plan_group, *group) for group in groups]
        )
        self._plans: list[Plan] | None = None

    def result(self) -> list[Plan]:
        if self._plans is None:
            # Workers take groups from the front: take back unstarted ones from the back.
            here: dict[int, list[Plan]] = {}
            for index in reversed(range(len(self._groups))):
                future = self._futures[index]
                if future is None or future.cancel():
                    here[index] = _plan_group(*self._groups[index])
            plans: list[Plan] = []
            for index, future in enumerate(self._futures):
                if index in here:
                    plans.extend(here[index])
                else:
                    assert future is not None
                    plans.extend(future.result())
            self._plans = plans
        return self._plans


BATCH_LP_BATTERIES = 64


def _plan_group(
    specs: list[BatterySpec],
    soc_wh: Floats,
    net: Floats,
    price: Floats,
    spread: float,
    wear: float,
    start_ms: int,
    import_max_wh: Floats,
    export_max_wh: Floats,
) -> list[Plan]:
    soc0 = [min(max(float(soc_wh[k]), spec.soc_min_wh), spec.soc_max_wh) for k, spec in enumerate(specs)]
    parts = [
        _lp_one(
            spec,
            soc0[k],
            net[k],
            price[k] / 1000.0,
            (price[k] - spread) / 1000.0,
            wear / 1000.0,
            import_max_wh[k],
            export_max_wh[k],
        )
        for k, spec in enumerate(specs)
    ]
    result = linprog(
        np.concatenate([p[0] for p in parts]),
        A_eq=sparse.block_diag([p[1] for p in parts], format="csr"),
        b_eq=np.concatenate([p[2] for p in parts]),
        bounds=np.column_stack(
            [np.concatenate([p[3] for p in parts]), np.concatenate([p[4] for p in parts])]
        ),
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"battery LP failed: {result.message}")
    t = net.shape[1]
    plans = []
    for k in range(len(specs)):
        x = result.x[k * 5 * t : (k + 1) * 5 * t].reshape(5, t)
        plans.append(Plan(start_ms, x[0], x[1], x[2], x[3], x[4], price[k]))
    return plans


def _order(plan: Plan, index: int, round_trip: float) -> dict[str, Any]:
    """The market order of interval ``index`` of a plan: bid the import, ask the export, at the
    break-even price of the stored energy (what charging is worth given the planned discharges)."""
    imports, exports = plan.import_wh[index], plan.export_wh[index]
    discharging = plan.discharge_wh > 1.0
    charging = plan.charge_wh > 1.0
    price = float(plan.prices[index])
    if imports >= 1.0:
        worth = round_trip * float(plan.prices[discharging].mean()) if discharging.any() else price
        return {"side": "bid", "quantity_wh": round(imports), "limit_price": max(round(max(price, worth)), 1)}
    if exports >= 1.0:
        cost = float(plan.prices[charging].mean()) / round_trip if charging.any() else 0.0
        return {"side": "ask", "quantity_wh": round(exports), "limit_price": max(round(min(price, cost)), 0)}
    return {"side": "none", "quantity_wh": 0, "limit_price": 0}


def _unpack(inputs: Inputs) -> tuple[int, int, Floats, Floats]:
    time_ms = require_int(inputs, "time_ms")
    soc = require_int(inputs, "soc_wh")
    prices = np.asarray(require_ints(inputs, "prices", 1), dtype=np.float64)
    pv = optional_ints(inputs, "pv_wh")
    load = optional_ints(inputs, "load_wh")
    net = np.zeros(prices.size)
    if load is not None:
        if len(load) < prices.size:
            raise InputError("load_wh must cover every priced interval")
        net += np.asarray(load[: prices.size], dtype=np.float64)
    if pv is not None:
        if len(pv) < prices.size:
            raise InputError("pv_wh must cover every priced interval")
        net -= np.asarray(pv[: prices.size], dtype=np.float64)
    return time_ms, soc, prices, net


def _bounds(inputs: Inputs, key: str, intervals: int) -> Floats:
    """An optional per-interval bound (Wh, >= 0) over the priced intervals; absent: no bound."""
    values = optional_ints(inputs, key)
    if values is None:
        return np.full(intervals, np.inf)
    if len(values) < intervals or min(values[:intervals], default=0) < 0:
        raise InputError(f"{key} must cover every priced interval with amounts >= 0")
    return np.asarray(values[:intervals], dtype=np.float64)


def _decision(plan: Plan, index: int, spec: BatterySpec, replanned: bool) -> dict[str, Any]:
    round_trip = spec.charge_efficiency_bp * spec.discharge_efficiency_bp / 1e8
    return {
        "charge_wh": round(float(plan.charge_wh[index])),
        "discharge_wh": round(float(plan.discharge_wh[index])),
        "order": _order(plan, index, round_trip),
        "plan_start_ms": plan.start_ms,
        "replanned": replanned,
    }


class BatteryScheduler:
    """LP battery scheduling (``battery-lp/1``).

    ``decide({"time_ms", "soc_wh", "prices": [ints per kWh, one per interval from time_ms],
    "pv_wh"?: [ints], "load_wh"?: [ints], "import_max_wh"?: [ints], "export_max_wh"?: [ints]})`` ->
    ``{"charge_wh", "discharge_wh", "order": {"side": "bid"|"ask"|"none", "quantity_wh",
    "limit_price"}, "plan_start_ms", "replanned"}``. ``import_max_wh`` and ``export_max_wh`` bound
    the grid import and export of each priced interval (module docstring; default: no bound).
    Re-plans when the last plan is ``replan_every_ms`` old, when the state of charge drifted more than
    ``soc_tolerance_wh`` from the plan, or when the plan ran out; otherwise follows the plan.
    """

    name = "battery-lp/1"
    kind = "battery-lp"

    def __init__(self, model: ModelFile, spec: BatterySpec) -> None:
        self.model = model
        self.model_hash: bytes | None = model.hash
        self.spec = spec
        self.spread = float(model.meta["spread"])
        self.wear = float(model.meta["wear"])
        self.replan_every_ms = int(model.meta["replan_every_ms"])
        self.soc_tolerance_wh = int(model.meta["soc_tolerance_wh"])
        self.plan: Plan | None = None
        self.solves = 0

    def _index_in_plan(self, time_ms: int, soc_wh: int) -> int | None:
        plan = self.plan
        if plan is None or time_ms < plan.start_ms or time_ms - plan.start_ms >= self.replan_every_ms:
            return None
        index = (time_ms - plan.start_ms) // STEP_MS
        if index >= plan.soc_wh.size:
            return None
        expected = plan.soc_wh[index - 1] if index > 0 else None
        if expected is not None and abs(float(expected) - soc_wh) > self.soc_tolerance_wh:
            return None
        return int(index)

    def decide(self, inputs: Inputs) -> CborValue:
        time_ms, soc, prices, net = _unpack(inputs)
        index = self._index_in_plan(time_ms, soc)
        if index is not None and self.plan is not None:
            return _decision(self.plan, index, self.spec, False)
        import_max, export_max = (
            _bounds(inputs, key, prices.size) for key in ("import_max_wh", "export_max_wh")
        )
        self.plan = plan_batch(
            [self.spec],
            np.asarray([soc]),
            net[None, :],
            prices[None, :],
            self.spread,
            self.wear,
            time_ms,
            import_max_wh=import_max[None, :],
            export_max_wh=export_max[None, :],
        )[0]
        self.solves += 1
        return _decision(self.plan, 0, self.spec, True)


def battery_lp_model(
    spread: int = 6, wear: int = 1, replan_every_ms: int = world.HOUR_MS, soc_tolerance_wh: int = 300
) -> ModelFile:
    """The battery LP has no trained weights: its model file holds its parameters (prices per kWh)."""
    return ModelFile(
        "battery-lp",
        "1",
        {},
        {
            "spread": spread,
            "wear": wear,
            "replan_every_ms": replan_every_ms,
            "soc_tolerance_wh": soc_tolerance_wh,
        },
    )


class RuleBattery:
    """Baseline (``battery-rule/1``): store PV surplus, cover the household's deficit from the battery
    when the price is in the top half of the day's forecast, never trade the battery itself."""

    name = "battery-rule/1"
    model_hash: bytes | None = None

    def __init__(self, spec: BatterySpec) -> None:
        self.spec = spec

    def decide(self, inputs: Inputs) -> CborValue:
        _, soc, prices, net = _unpack(inputs)
        net_now = float(net[0])
        charge = discharge = 0.0
        eta_c = self.spec.charge_efficiency_bp / 10_000
        eta_d = self.spec.discharge_efficiency_bp / 10_000
        if net_now < 0:  # PV surplus
            room = (self.spec.soc_max_wh - soc) / eta_c
            charge = max(min(-net_now, self.spec.max_charge_w * DT_H, room), 0.0)
        elif prices[0] >= float(np.median(prices)):
            available = (soc - self.spec.soc_min_wh) * eta_d
            discharge = max(min(net_now, self.spec.max_discharge_w * DT_H, available), 0.0)
        grid = net_now + charge - discharge
        order = {
            "side": "bid" if grid >= 1 else "ask" if grid <= -1 else "none",
            "quantity_wh": round(abs(grid)),
        }
        order["limit_price"] = round(float(prices[0])) if order["side"] != "none" else 0
        return {
            "charge_wh": round(charge),
            "discharge_wh": round(discharge),
            "order": order,
            "plan_start_ms": 0,
            "replanned": False,
        }


@dataclass(frozen=True)
class DayResult:
    cost: float  # what the household paid for the day with this battery policy (price units)
    cost_without_battery: float
    decisions: int
    solves: int

    @property
    def earnings(self) -> float:
        return self.cost_without_battery - self.cost


def simulate_battery_day(
    policy: Any,
    spec: BatterySpec,
    prices: Floats,
    pv_w: Floats,
    load_w: Floats,
    start_ms: int,
    spread: float = 6.0,
    forecast_pv_w: Floats | None = None,
    forecast_load_w: Floats | None = None,
    soc_wh: float | None = None,
) -> DayResult:
    """Run a policy through a day (one decision per interval) against the battery physics and score
    the household's bill: import at the price, export at the price minus ``spread``. The policy sees
    the prices (a day-ahead market publishes them) and the forecasts (default: the truth)."""
    t = prices.size
    fpv = pv_w if forecast_pv_w is None else forecast_pv_w
    fload = load_w if forecast_load_w is None else forecast_load_w
    params = spec.to_world()
    soc = float(spec.soc_min_wh if soc_wh is None else soc_wh)
    cost = base = 0.0
    for k in range(t):
        inputs = {
            "time_ms": start_ms + k * STEP_MS,
            "soc_wh": round(soc),
            "prices": [round(float(p)) for p in prices[k:]],
            "pv_wh": [round(float(v) * DT_H) for v in fpv[k:]],
            "load_wh": [round(float(v) * DT_H) for v in fload[k:]],
        }
        decision = policy.decide(inputs)
        requested_w = (decision["charge_wh"] - decision["discharge_wh"]) / DT_H
        step = world.battery_step(params, np.asarray([soc]), np.asarray([requested_w]), STEP_MS)
        soc = float(step.soc_wh[0])
        grid_wh = (load_w[k] - pv_w[k]) * DT_H + float(step.power_w[0]) * DT_H
        price = float(prices[k])
        cost += grid_wh * price / 1000.0 if grid_wh > 0 else grid_wh * (price - spread) / 1000.0
        plain = (load_w[k] - pv_w[k]) * DT_H
        base += plain * price / 1000.0 if plain > 0 else plain * (price - spread) / 1000.0
    return DayResult(cost, base, t, int(getattr(policy, "solves", 0)))
