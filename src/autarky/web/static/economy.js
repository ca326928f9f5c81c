// Autarky dashboard, economy page: the energy market, oracle feeds, escrow, leases, data offers and
// jobs, read from the node's JSON API. Vanilla JavaScript, no dependencies; the price chart is SVG
// built here. Every text from the network goes in with textContent or as an attribute value, never
// as HTML. Live: every few seconds, and after each block announced on /api/v1/events.
"use strict";

(function () {
  const POLL_MS = 5000;
  const MIN_REFRESH_GAP_MS = 800;
  const CLEARING_ROWS = 12;
  const MAX_DETAIL_FETCHES = 20;
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  // -- small helpers ----------------------------------------------------------------------------

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null) continue;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    return node;
  }

  function svg(tag, attributes, children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function shortDid(did) {
    if (did && did.startsWith("did:key:") && did.length > 24) return did.slice(8, 16) + "…" + did.slice(-4);
    return did || "";
  }

  function clock(timeMs) {
    if (timeMs === null || timeMs === undefined) return "";
    return new Date(Number(timeMs)).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" });
  }

  function dateTime(timeMs) {
    if (!timeMs) return "—";
    const date = new Date(Number(timeMs));
    return date.toISOString().slice(5, 10) + " " + clock(timeMs);
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "—";
    const seconds = Math.max(0, Math.round(Number(ms) / 1000));
    if (seconds < 90) return seconds + " s";
    const minutes = Math.round(seconds / 60);
    if (minutes % 60 === 0 && minutes < 48 * 60) return minutes / 60 + " h";
    if (minutes < 90) return minutes + " min";
    const hours = Math.round(minutes / 6) / 10;
    if (hours < 48) return hours + " h";
    return Math.round(hours / 24) + " d";
  }

  function amounts(map) {
    const parts = Object.entries(map || {}).map(([asset, amount]) => amount + " " + asset);
    return parts.length ? parts.join(", ") : "—";
  }

  function badge(text, kind) {
    return el("span", { className: "badge " + (kind || text), text: text });
  }

  function placeholder(body, columns, text) {
    body.replaceChildren(el("tr", { className: "placeholder" }, [el("td", { colspan: String(columns), text: text })]));
  }

  function failure(body, columns, error) {
    body.replaceChildren(el("tr", {}, [el("td", { colspan: String(columns), className: "error",
      text: (error && error.code ? error.code + ": " + (error.message || "") : "could not read the API") })]));
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) {
      throw (body && body.error) || { code: "api.http_" + response.status, message: response.statusText };
    }
    return body;
  }

  // Which module routes this node serves (lease and jobs may be absent on older nodes): read once
  // from the OpenAPI document, so the page never asks for a route that is not there.
  let routes = null;
  async function hasRoute(path) {
    if (routes === null) {
      try {
        routes = new Set(Object.keys((await getJson("/openapi.json")).paths || {}));
      } catch (error) {
        return true;
      }
    }
    return routes.has(path);
  }

  // -- the energy market ------------------------------------------------------------------------

  const market = { zones: new Map(), intervalMs: 0, currentInterval: 0, timeMs: 0, bookInterval: null };

  function selectedZone() {
    return $("zone-select").value;
  }

  async function refreshZones() {
    const answer = await getJson("/api/v1/market/zones");
    market.intervalMs = answer.interval_ms;
    market.currentInterval = answer.current_interval;
    market.timeMs = answer.time_ms;
    const select = $("zone-select");
    const chosen = select.value || (location.hash.startsWith("#zone=") ? decodeURIComponent(location.hash.slice(6)) : "");
    market.zones = new Map(answer.zones.map((zone) => [zone.name, zone]));
    const names = answer.zones.map((zone) => zone.name);
    const shown = Array.from(select.options).map((option) => option.value);
    if (names.join("\n") !== shown.join("\n")) {
      select.replaceChildren(...names.map((name) => el("option", { value: name, text: name })));
    }
    if (names.includes(chosen)) select.value = chosen;
    const zone = market.zones.get(select.value);
    if (zone) {
      const minutes = Math.round(market.intervalMs / 60000);
      const parts = [zone.asset + " per " + zone.unit, minutes + " min intervals"];
      parts.push(zone.price_cap_feed ? "cap " + zone.price_cap_feed : "no price cap");
      if (zone.penalty_per_unit) parts.push("penalty " + zone.penalty_per_unit + "/" + zone.unit);
      $("zone-info").textContent = parts.join(" · ");
    }
  }

  function depthCell(cumulative, scale, side) {
    const width = 80;
    const bar = scale > 0 ? Math.max(1, Math.round((cumulative / scale) * width)) : 0;
    const picture = svg("svg", { width: width, height: 10, viewBox: "0 0 " + width + " 10", class: "depth " + side,
      "aria-hidden": "true" }, [svg("rect", { x: side === "bids" ? width - bar : 0, y: 1, width: bar, height: 8, rx: 1 })]);
    const cell = el("td", { className: "depth-col" });
    cell.appendChild(picture);
    return cell;
  }

  function bookRows(body, orders, side, scale, cleared) {
    if (!orders.length) {
      placeholder(body, 4, side === "bids" ? "no bids" : "no asks");
      return;
    }
    let cumulative = 0;
    body.replaceChildren(...orders.map((order) => {
      const live = order.status !== "cancelled";
      if (live) cumulative += order.quantity;
      const quantity = cleared && order.fill !== undefined ? order.fill + " / " + order.quantity : String(order.quantity);
      return el("tr", {
        "data-testid": "book-row",
        "data-side": side === "bids" ? "bid" : "ask",
        "data-price": String(order.limit_price),
        "data-quantity": String(order.quantity),
        className: live ? "" : "cancelled",
        title: order.status + (order.fill ? " · filled " + order.fill : ""),
      }, [
        el("td", { className: "mono", title: order.owner, text: shortDid(order.owner) }),
        el("td", { className: "num", text: String(order.limit_price) }),
        el("td", { className: "num", text: quantity }),
        live ? depthCell(cumulative, scale, side) : el("td", { className: "depth-col" }),
      ]);
    }));
  }

  async function refreshBook() {
    const zone = selectedZone();
    if (!zone) return;
    const query = new URLSearchParams({ zone: zone });
    if (market.bookInterval !== null) query.set("interval", String(market.bookInterval));
    const book = await getJson("/api/v1/market/book?" + query.toString());
    const total = (orders) => orders.filter((o) => o.status !== "cancelled").reduce((sum, o) => sum + o.quantity, 0);
    const scale = Math.max(total(book.bids), total(book.asks));
    const cleared = book.clearing !== null;
    bookRows($("book-bids"), book.bids, "bids", scale, cleared);
    bookRows($("book-asks"), book.asks, "asks", scale, cleared);
    const start = book.gate_ms;
    const title = "interval " + book.interval + " · " + clock(start) + "–" + clock(start + book.interval_ms);
    $("book-title").textContent = title;
    $("book-title").dataset.interval = String(book.interval);
    const zoneInfo = market.zones.get(zone);
    const unit = zoneInfo ? zoneInfo.unit : "";
    const live = (orders) => orders.filter((o) => o.status !== "cancelled");
    const best = (orders) => (live(orders).length ? String(live(orders)[0].limit_price) : "—");
    let gate;
    if (book.accepting) gate = clock(book.gate_ms) + " · gate closes in " + duration(book.gate_ms - market.timeMs);
    else if (!cleared) gate = clock(book.gate_ms) + " · gate closed, clearing next block";
    else gate = clock(book.gate_ms) + " · closed";
    let outcome = "not yet";
    if (cleared) {
      const c = book.clearing;
      outcome = c.price === null ? "no trade" : "cleared " + c.volume + " " + unit + " at " + c.price + " (" + c.status.replace("_", " ") + ")";
    }
    const facts = [
      ["Demand", live(book.bids).length + " bids · " + total(book.bids) + " " + unit],
      ["Supply", live(book.asks).length + " asks · " + total(book.asks) + " " + unit],
      ["Best bid / ask", best(book.bids) + " / " + best(book.asks)],
      ["Gate", gate],
      ["Clearing", outcome],
    ];
    const list = el("dl", {});
    for (const [name, value] of facts) list.append(el("dt", { text: name }), el("dd", { text: value }));
    $("book-summary").replaceChildren(list);
    $("book-next").disabled = market.bookInterval === null;
  }

  function niceCeiling(value) {
    if (value <= 0) return 1;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
      if (step * magnitude >= value) return step * magnitude;
    }
    return 10 * magnitude;
  }

  // The clearing-price chart: volume as bars (right axis), price as a line with a point per traded
  // interval (left axis), the oracle cap as a dashed step line. Built as SVG elements.
  function drawChart(records, unit, asset) {
    const box = $("price-chart");
    const W = 640, H = 250, left = 44, right = 52, top = 24, bottom = 30;
    const plotW = W - left - right, plotH = H - top - bottom;
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "price-svg", role: "img",
      "data-testid": "price-svg", "aria-label": "clearing price and volume" });
    if (!records.length) {
      chart.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty-note",
        text: "No cleared intervals yet" }));
      box.replaceChildren(chart);
      return;
    }
    const first = records[0].interval, last = records[records.length - 1].interval;
    const slots = last - first + 1;
    const slotW = plotW / slots;
    const x = (interval) => left + (interval - first + 0.5) * slotW;
    // Four gridlines: each axis tops at four times a round step.
    const priceTop = 4 * niceCeiling(Math.max(1, ...records.map((r) => Math.max(r.price || 0, r.cap || 0))) * 1.1 / 4);
    const volumeTop = 4 * niceCeiling(Math.max(1, ...records.map((r) => r.volume)) * 1.05 / 4);
    const yPrice = (price) => top + plotH - (price / priceTop) * plotH;
    const yVolume = (volume) => top + plotH - (volume / volumeTop) * plotH;

    const grid = svg("g", { class: "grid" });
    const axisLeft = svg("g", { class: "axis price-axis" });
    const axisRight = svg("g", { class: "axis volume-axis" });
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (i / 4) * plotH;
      grid.appendChild(svg("line", { x1: left, x2: left + plotW, y1: y, y2: y }));
      axisLeft.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", text: formatTick(priceTop * i / 4) }));
      axisRight.appendChild(svg("text", { x: left + plotW + 6, y: y + 4, "text-anchor": "start", text: formatTick(volumeTop * i / 4) }));
    }
    axisLeft.appendChild(svg("text", { x: 4, y: 10, class: "axis-title", text: "price, " + asset + "/" + unit }));
    axisRight.appendChild(svg("text", { x: W - 4, y: 10, "text-anchor": "end", class: "axis-title", text: "volume, " + unit }));

    const bars = svg("g", { class: "volume-bars" });
    const barW = Math.max(1, slotW * 0.7);
    for (const r of records) {
      if (!r.volume) continue;
      const y = yVolume(r.volume);
      bars.appendChild(svg("rect", { x: x(r.interval) - barW / 2, y: y, width: barW, height: top + plotH - y,
        "data-testid": "volume-bar" }, [svg("title", { text: "interval " + r.interval + " · " + clock(r.start_ms) +
        " · volume " + r.volume + " " + unit })]));
    }

    // The cap: a step line over the intervals that had one.
    let capPath = "";
    let previous = null;
    for (const r of records) {
      if (r.cap === null || r.cap === undefined) { previous = null; continue; }
      const x0 = x(r.interval) - slotW / 2, x1 = x(r.interval) + slotW / 2, y = yPrice(r.cap);
      capPath += (previous === r.interval - 1 ? " L" : " M") + x0.toFixed(1) + " " + y.toFixed(1) + " L" + x1.toFixed(1) + " " + y.toFixed(1);
      previous = r.interval;
    }
    const cap = svg("path", { d: capPath.trim() || "M0 0", class: "cap-line" + (capPath ? "" : " none"), "data-testid": "cap-line" });

    // The price: a line through traded intervals, broken where nothing traded.
    let pricePath = "";
    previous = null;
    const points = svg("g", { class: "price-points" });
    for (const r of records) {
      if (r.price === null || r.price === undefined) { previous = null; continue; }
      const px = x(r.interval), py = yPrice(r.price);
      pricePath += (previous === r.interval - 1 ? " L" : " M") + px.toFixed(1) + " " + py.toFixed(1);
      previous = r.interval;
      points.appendChild(svg("circle", { cx: px.toFixed(1), cy: py.toFixed(1), r: slots > 48 ? 2 : 3,
        "data-testid": "price-point", "data-interval": r.interval, "data-price": r.price },
      [svg("title", { text: "interval " + r.interval + " · " + clock(r.start_ms) + " · price " + r.price +
        (r.cap !== null && r.cap !== undefined ? " (cap " + r.cap + ")" : "") + " · volume " + r.volume + " " + unit })]));
    }
    const line = svg("path", { d: pricePath.trim() || "M0 0", class: "price-line" });

    const xAxis = svg("g", { class: "axis time-axis" });
    const labels = Math.min(slots, 8);
    const step = Math.max(1, Math.ceil(slots / labels));
    for (let interval = first; interval <= last; interval += step) {
      const record = records.find((r) => r.interval === interval);
      const startMs = record ? record.start_ms : interval * market.intervalMs;
      xAxis.appendChild(svg("line", { x1: x(interval), x2: x(interval), y1: top + plotH, y2: top + plotH + 4 }));
      xAxis.appendChild(svg("text", { x: x(interval), y: H - 10, "text-anchor": "middle", text: clock(startMs) }));
    }
    const frame = svg("line", { x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH, class: "baseline" });
    chart.append(grid, bars, frame, cap, line, points, axisLeft, axisRight, xAxis);
    box.replaceChildren(chart);
  }

  function formatTick(value) {
    if (value >= 10000) return Math.round(value / 1000) + "k";
    if (value >= 100 || Number.isInteger(value)) return String(Math.round(value));
    return value.toFixed(1);
  }

  function clearingRow(r, unit) {
    const status = r.status === "no_trade" ? "no trade" : r.status;
    return el("tr", { "data-testid": "clearing-row", "data-interval": String(r.interval), "data-status": r.status }, [
      el("td", { text: String(r.interval) }),
      el("td", { text: dateTime(r.start_ms) }),
      el("td", { className: "num", text: r.price === null ? "—" : String(r.price) }),
      el("td", { className: "num", text: r.volume + " " + unit }),
      el("td", { className: "num", title: r.cap_stale ? "the cap feed was stale: cleared without a cap" : "",
        text: r.cap === null ? (r.cap_stale ? "stale" : "—") : String(r.cap) }),
      el("td", { className: "num", text: r.bids + " / " + r.asks }),
      el("td", {}, [badge(status, r.status)]),
      el("td", { className: "num", text: r.status === "settled" ? r.delivered + " " + unit : "—" }),
      el("td", { className: "num", text: r.status === "settled" ? String(r.penalty) : "—" }),
    ]);
  }

  async function refreshPrices() {
    const zone = selectedZone();
    if (!zone) return;
    const answer = await getJson("/api/v1/market/prices?" + new URLSearchParams({ zone: zone }).toString());
    const info = market.zones.get(zone) || { unit: "", asset: "" };
    const records = answer.prices;
    drawChart(records, info.unit, info.asset);
    $("chart-title").textContent = records.length
      ? records.length + " cleared, intervals " + records[0].interval + "–" + records[records.length - 1].interval
      : "none yet";
    const body = $("clearings-body");
    const recent = records.slice(-CLEARING_ROWS).reverse();
    if (!recent.length) placeholder(body, 9, "No clearings yet in this zone.");
    else body.replaceChildren(...recent.map((r) => clearingRow(r, info.unit)));
  }

  async function refreshMarket() {
    try {
      await refreshZones();
      await Promise.all([refreshBook(), refreshPrices()]);
    } catch (error) {
      failure($("clearings-body"), 9, error);
    }
  }

  // -- oracle feeds -----------------------------------------------------------------------------

  async function refreshOracles() {
    const body = $("oracles-body");
    try {
      const answer = await getJson("/api/v1/oracle/feeds?limit=50");
      $("oracles-total").textContent = answer.feeds.length + (answer.more ? "+ feeds" : answer.feeds.length === 1 ? " feed" : " feeds");
      if (!answer.feeds.length) { placeholder(body, 5, "No feeds."); return; }
      body.replaceChildren(...answer.feeds.map((f) => {
        const latest = f.latest;
        const state = latest === null ? "no value" : f.fresh ? "fresh" : "stale";
        return el("tr", { "data-testid": "oracle-row", "data-feed": f.feed, "data-fresh": String(f.fresh) }, [
          el("td", { className: "mono", title: f.description || f.feed, text: f.feed }),
          el("td", { className: "num", text: latest === null ? "—" : latest.display }),
          el("td", { className: "num", text: latest === null ? "—" : String(latest.round) }),
          el("td", { text: latest === null ? "—" : duration(latest.age_ms) + " ago" }),
          el("td", {}, [badge(state, state === "fresh" ? "ok" : state === "stale" ? "frozen" : "")]),
        ]);
      }));
    } catch (error) {
      failure(body, 5, error);
    }
  }

  // -- escrow -----------------------------------------------------------------------------------

  async function refreshEscrow() {
    const body = $("escrow-body");
    try {
      const summary = await getJson("/economy/escrow");
      $("escrow-count").textContent = String(summary.count);
      $("escrow-total").textContent = amounts(summary.total);
      const holders = Object.entries(summary.holders);
      if (!holders.length) { placeholder(body, 3, "No open locks."); return; }
      body.replaceChildren(...holders.map(([holder, row]) => el("tr", { "data-testid": "escrow-row", "data-holder": holder }, [
        el("td", { text: holder }),
        el("td", { className: "num", text: String(row.count) }),
        el("td", { className: "num mono", text: amounts(row.total) }),
      ])));
    } catch (error) {
      failure(body, 3, error);
    }
  }

  // -- leases -----------------------------------------------------------------------------------

  function listOf(answer, name) {
    if (Array.isArray(answer)) return answer;
    return answer[name] || answer.items || [];
  }

  function serviceLevel(level) {
    const parts = Object.entries(level || {}).map(([metric, value]) =>
      metric.endsWith("_bps") ? metric.slice(0, -4) + " ≥ " + (value / 100) + "%" : metric + " " + value);
    return parts.length ? parts.join(", ") : "—";
  }

  async function refreshLeases() {
    const offersBody = $("lease-offers-body"), leasesBody = $("leases-body");
    if (!(await hasRoute("/api/v1/lease/offers"))) {
      placeholder(offersBody, 5, "This node has no lease API.");
      placeholder(leasesBody, 6, "—");
      return;
    }
    try {
      const offers = listOf(await getJson("/api/v1/lease/offers"), "offers").filter((o) => o.withdrawn === null || o.withdrawn === undefined);
      if (!offers.length) placeholder(offersBody, 5, "No lease offers.");
      else offersBody.replaceChildren(...offers.map((o) => el("tr", { "data-testid": "lease-offer-row" }, [
        el("td", { title: o.resource_kind, text: o.resource + " (" + o.resource_kind + ")" }),
        el("td", { className: "mono", title: o.provider, text: shortDid(o.provider) }),
        el("td", { className: "num", text: o.price_per_period + " " + o.asset + " / " + duration(o.period_ms) }),
        el("td", { text: o.min_periods === o.max_periods ? String(o.min_periods) : o.min_periods + "–" + o.max_periods }),
        el("td", { className: "muted", text: serviceLevel(o.service_level) }),
      ])));
      // Leases are listed per account: ask for those of every provider with an offer.
      const providers = [...new Set(offers.map((o) => o.provider))].slice(0, MAX_DETAIL_FETCHES);
      const seen = new Map();
      if (await hasRoute("/api/v1/lease/leases")) {
        for (const answer of await Promise.all(providers.map((p) => getJson("/api/v1/lease/leases?account=" + encodeURIComponent(p))))) {
          for (const lease of listOf(answer, "leases")) seen.set(lease.id, lease);
        }
      }
      const leases = [...seen.values()].sort((a, b) => (a.status === "closed") - (b.status === "closed") || b.start_ms - a.start_ms);
      const active = leases.filter((l) => l.status !== "closed").length;
      $("leases-note").textContent = offers.length + (offers.length === 1 ? " offer · " : " offers · ") + active + " reserved or active";
      if (!leases.length) placeholder(leasesBody, 6, "No leases.");
      else leasesBody.replaceChildren(...leases.map((l) => el("tr", { "data-testid": "lease-row", "data-status": l.status }, [
        el("td", { text: l.resource }),
        el("td", { className: "mono", title: l.renter, text: shortDid(l.renter) }),
        el("td", { text: dateTime(l.start_ms) }),
        el("td", { className: "num", text: String(l.periods) }),
        el("td", { className: "num", text: (l.paid || 0) + " " + l.asset }),
        el("td", {}, [badge(l.outcome ? l.status + " · " + l.outcome : l.status, l.status)]),
      ])));
    } catch (error) {
      failure(offersBody, 5, error);
    }
  }

  // -- data offers ------------------------------------------------------------------------------

  function dataPrice(offer) {
    if (offer.per === "period") return offer.price + " " + offer.asset + " / " + duration(offer.period_ms);
    return offer.price + " " + offer.asset + " / " + offer.per;
  }

  function checkedCell(detail) {
    const requirements = detail.attestations || [];
    if (!requirements.length) return el("td", {}, [badge("none required", "")]);
    if (detail.agent && detail.agent.approved) return el("td", {}, [badge("✓ checked", "ok")]);
    const code = detail.agent ? detail.agent.code || "" : "";
    const label = code ? code.split(".").pop().replace(/_/g, " ") : "not checked";
    return el("td", { title: code + ": " + ((detail.agent && detail.agent.detail) || ""), "data-code": code },
      [badge("✗ " + label, "failed")]);
  }

  async function refreshData() {
    const body = $("data-body");
    try {
      const answer = await getJson("/api/v1/data/offers?withdrawn=false&limit=100");
      $("data-total").textContent = String(answer.total);
      if (!answer.offers.length) { placeholder(body, 6, "No data offers."); return; }
      const shown = answer.offers.slice(0, MAX_DETAIL_FETCHES);
      const details = await Promise.all(shown.map((o) => getJson("/api/v1/data/offers/" + encodeURIComponent(o.id))));
      body.replaceChildren(...details.map((o) => {
        const required = (o.attestations || []).map((a) => a.claim + " by " + shortDid(a.issuer));
        return el("tr", { "data-testid": "data-row", "data-approved": String(Boolean(o.agent && o.agent.approved)) }, [
          el("td", { title: o.description || "", text: o.name + " (" + o.kind + ")" }),
          el("td", { className: "mono", title: o.seller, text: shortDid(o.seller) }),
          el("td", { className: "num", text: dataPrice(o) }),
          el("td", { className: "nowrap", text: o.licence }),
          el("td", { className: "muted", text: required.length ? required.join("; ") : "—" }),
          checkedCell(o),
        ]);
      }));
    } catch (error) {
      failure(body, 6, error);
    }
  }

  // -- jobs -------------------------------------------------------------------------------------

  const JOB_ORDER = ["open", "accepted", "completed", "attested", "disputed", "closed"];

  function jobState(job) {
    return job.status === "closed" && job.outcome ? job.outcome : job.status;
  }

  async function refreshJobs() {
    const body = $("jobs-body");
    if (!(await hasRoute("/api/v1/jobs"))) {
      placeholder(body, 5, "This node has no jobs API.");
      return;
    }
    try {
      const jobs = listOf(await getJson("/api/v1/jobs?limit=500"), "jobs");
      const counts = new Map();
      for (const job of jobs) counts.set(jobState(job), (counts.get(jobState(job)) || 0) + 1);
      const named = ["open", "accepted", "attested", "paid"].map((state) => (counts.get(state) || 0) + " " + state);
      $("jobs-counts").textContent = named.join(" · ");
      if (!jobs.length) { placeholder(body, 5, "No jobs."); return; }
      const ordered = [...jobs].sort((a, b) => JOB_ORDER.indexOf(a.status) - JOB_ORDER.indexOf(b.status));
      body.replaceChildren(...ordered.slice(0, 50).map((job) => el("tr", { "data-testid": "job-row", "data-status": job.status }, [
        el("td", { title: job.description || "", text: job.kind }),
        el("td", { className: "mono", title: job.poster, text: shortDid(job.poster) }),
        el("td", { className: "num", text: job.bounty + " " + job.asset }),
        el("td", { className: "mono", title: job.provider || "", text: job.provider ? shortDid(job.provider) : "—" }),
        el("td", {}, [badge(jobState(job), job.status)]),
      ])));
    } catch (error) {
      failure(body, 5, error);
    }
  }

  // -- live -------------------------------------------------------------------------------------

  let refreshing = false;
  let pending = false;
  let lastRefresh = 0;

  async function refreshAll() {
    if (refreshing) { pending = true; return; }
    refreshing = true;
    lastRefresh = Date.now();
    try {
      await Promise.all([refreshMarket(), refreshOracles(), refreshEscrow(), refreshLeases(), refreshData(), refreshJobs()]);
      document.body.dataset.loaded = "true";
    } finally {
      refreshing = false;
      if (pending) { pending = false; scheduleRefresh(); }
    }
  }

  let timer = null;
  function scheduleRefresh() {
    if (timer !== null) return;
    const wait = Math.max(0, MIN_REFRESH_GAP_MS - (Date.now() - lastRefresh));
    timer = setTimeout(() => { timer = null; refreshAll(); }, wait);
  }

  function setLive(state, text) {
    const indicator = $("live-indicator");
    indicator.dataset.state = state;
    indicator.textContent = text;
  }

  function showBlock(height, timeMs) {
    $("status-height").textContent = String(height);
    $("status-time").textContent = dateTime(timeMs);
    market.timeMs = timeMs;
  }

  function connect() {
    const source = new EventSource("/api/v1/events");
    source.addEventListener("hello", (event) => {
      setLive("live", "live");
      const status = JSON.parse(event.data);
      showBlock(status.height, status.time_ms);
    });
    source.addEventListener("block", (event) => {
      const header = JSON.parse(event.data);
      showBlock(header.height, header.time_ms);
      scheduleRefresh();
    });
    source.onerror = () => setLive("offline", "reconnecting…");
  }

  document.addEventListener("DOMContentLoaded", () => {
    const time = $("status-time");
    time.textContent = dateTime(time.dataset.timeMs);
    $("zone-select").addEventListener("change", () => {
      location.hash = "zone=" + encodeURIComponent(selectedZone());
      market.bookInterval = null;
      refreshMarket();
    });
    const step = (delta) => {
      const shown = Number($("book-title").dataset.interval || market.currentInterval + 1);
      const wanted = Math.max(0, shown + delta);
      market.bookInterval = wanted === market.currentInterval + 1 ? null : wanted;
      refreshBook().catch((error) => failure($("book-bids"), 4, error));
    };
    $("book-prev").addEventListener("click", () => step(-1));
    $("book-later").addEventListener("click", () => step(1));
    $("book-next").addEventListener("click", () => {
      market.bookInterval = null;
      refreshBook().catch((error) => failure($("book-bids"), 4, error));
    });
    connect();
    refreshAll();
    setInterval(refreshAll, POLL_MS);
  });
})();
