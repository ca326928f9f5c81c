// Autarky dashboard, agents page: the machine agents of `autarky up` deciding live. Reads the
// process's activity feed (/agents/feed) and the market's clearing prices (/api/v1/market/prices).
// Vanilla JavaScript, no dependencies; charts are SVG built here. Every text from the network goes
// in with textContent or as an attribute value, never as HTML.
"use strict";

(function () {
  const FEED_MS = 1500;
  const PRICES_MS = 3000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let zone = "site";

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

  function short(hex, n) {
    return hex ? String(hex).slice(0, n || 10) + "…" : "";
  }

  function summarise(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "object") return String(value);
    if (Array.isArray(value)) return "[" + value.slice(0, 4).map(summarise).join(", ") + (value.length > 4 ? ", …" : "") + "]";
    const parts = [];
    for (const [key, item] of Object.entries(value)) {
      if (key === "plan_start_ms") continue;
      parts.push(key + " " + summarise(item));
    }
    return parts.join(" · ");
  }

  function setLive(state, text) {
    const node = $("live-indicator");
    node.dataset.state = state;
    node.textContent = text;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  // -- one machine --------------------------------------------------------------------------------

  function spark(forecast) {
    const values = (forecast.values || []).map(Number);
    const width = 300;
    const height = 38;
    const box = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img" });
    if (!values.length) return box;
    const signed = values.some((v) => v < 0);
    const top = Math.max(1, ...values.map((v) => Math.abs(v)));
    const step = width / values.length;
    if (signed) {
      const mid = height / 2;
      values.forEach((v, i) => {
        const h = (Math.abs(v) / top) * (mid - 2);
        box.appendChild(svg("rect", { class: v >= 0 ? "pos" : "neg", x: i * step + 2, y: v >= 0 ? mid - h : mid, width: step - 4, height: Math.max(h, 0.5) }));
      });
    } else {
      const points = values.map((v, i) => `${(i + 0.5) * step},${height - 3 - (v / top) * (height - 8)}`).join(" ");
      box.appendChild(svg("polyline", { points }));
    }
    box.appendChild(svg("title", { text: values.join(", ") + " " + (forecast.unit || "") }));
    return box;
  }

  function forecastBlock(machine) {
    const forecast = machine.forecast;
    const block = el("div", { className: "forecast", "data-testid": "forecast" });
    if (!forecast) {
      block.appendChild(el("div", { className: "empty", text: "no model: this machine follows rules" }));
      return block;
    }
    const title = forecast.unit && forecast.unit.indexOf("soil") === 0 ? "Soil sensor and decision" : forecast.unit && forecast.unit.indexOf("stored") >= 0 ? "Battery plan" : "Forecast";
    block.appendChild(el("h3", { text: title }));
    block.appendChild(el("div", { className: "policy", text: forecast.policy + (forecast.model ? " · model " + short(forecast.model, 12) : "") }));
    block.appendChild(spark(forecast));
    const values = forecast.values || [];
    let text = forecast.verdict || "";
    if (!text && values.length) {
      text = `from ${forecast.local_time}: ${values.slice(0, 4).join(", ")}${values.length > 4 ? ", …" : ""} ${forecast.unit}`;
    }
    block.appendChild(el("div", { className: "forecast-text", text, "data-testid": "forecast-text" }));
    return block;
  }

  function ordersBlock(machine) {
    const block = el("div", { "data-testid": "orders" });
    if (!machine.orders.length) return block;
    block.appendChild(el("h3", { text: "Bids and asks" }));
    const list = el("div", { className: "orders" });
    for (const order of machine.orders.slice(0, 6)) {
      list.appendChild(el("span", { className: "order " + order.side, text: `${order.side} ${order.quantity_wh} Wh @ ${order.limit_price} · ${order.local_time}`, title: "interval " + order.interval }));
    }
    block.appendChild(list);
    return block;
  }

  function decisionsBlock(machine) {
    const block = el("div", { "data-testid": "decisions" });
    block.appendChild(el("h3", { text: "Decision records" }));
    if (!machine.decisions.length) {
      block.appendChild(el("div", { className: "empty", text: "none yet" }));
      return block;
    }
    const body = el("tbody");
    for (const record of machine.decisions.slice(0, 4)) {
      const anchored = record.seq < machine.anchored_records;
      const txCell = el("td", { className: "tx" });
      if (record.tx) {
        txCell.appendChild(el("a", { href: "/agents/decisions/" + record.tx, text: short(record.tx, 10), title: "explain: every check from this transaction to the model", "data-testid": "decision-link" }));
      } else {
        txCell.appendChild(el("span", { className: "muted", text: "not signed" }));
      }
      body.appendChild(
        el("tr", { "data-anchored": anchored ? "true" : "false" }, [
          el("td", { className: "seq", text: "#" + record.seq }),
          el("td", { className: "pol", title: (record.policy || "") + (record.model ? "\nmodel " + record.model : "\nno model (a rule)") }, [
            el("span", { text: record.policy }),
            el("span", { className: "muted", text: record.model ? " · " + short(record.model, 8) : "" }),
          ]),
          el("td", { className: "out", text: summarise(record.output), title: JSON.stringify(record.output) }),
          txCell,
          el("td", { className: "an " + (anchored ? "anch" : "muted"), text: anchored ? "⚓" : "…", title: anchored ? "anchored on chain" : "waits for its batch to be anchored" }),
        ]),
      );
    }
    block.appendChild(el("table", { className: "compact decisions" }, [body]));
    return block;
  }

  function refusalsBlock(machine) {
    const block = el("div", { "data-testid": "refusals" });
    if (!machine.refusals.length) return block;
    block.appendChild(el("h3", { text: "Refused before signing" }));
    for (const refusal of machine.refusals.slice(0, 2)) {
      block.appendChild(
        el("div", { className: "refusal", "data-testid": "refusal" }, [
          el("div", { className: "code", text: refusal.code + " · " + refusal.what }),
          el("div", { className: "why", text: refusal.explanation }),
        ]),
      );
    }
    return block;
  }

  function machineCard(machine) {
    const paused = machine.status === "paused";
    return el("article", { className: "machine" + (paused ? " paused" : ""), "data-testid": "machine-" + machine.name, "data-machine": machine.name }, [
      el("div", { className: "machine-head" }, [
        el("h2", { text: machine.name }),
        el("span", { className: "badge " + (paused ? "frozen" : machine.status === "running" ? "active" : ""), text: machine.status }),
      ]),
      el("div", { className: "kind", text: machine.kind + " · " + machine.role }),
      el("div", { className: "counts" }, [
        el("span", {}, [el("b", { text: String(machine.committed) }), " committed"]),
        el("span", { className: machine.refused_before_signing ? "bad" : "" }, [el("b", { text: String(machine.refused_before_signing) }), " refused"]),
        el("span", {}, [el("b", { text: String(machine.decisions_recorded) }), " decisions"]),
      ]),
      forecastBlock(machine),
      ordersBlock(machine),
      decisionsBlock(machine),
      refusalsBlock(machine),
    ]);
  }

  // -- the page ---------------------------------------------------------------------------------

  function renderFeed(feed) {
    if (!feed.running) {
      setLive("offline", "no agents");
      return;
    }
    const totals = feed.totals;
    $("total-committed").textContent = totals.transactions_committed;
    $("total-refused").textContent = totals.refused_before_signing;
    $("total-decisions").textContent = totals.decisions_recorded;
    $("total-anchored").textContent = "anchored on chain: " + totals.decisions_anchored;
    const codes = Object.entries(feed.refusals_by_code || {}).map(([code, count]) => code.replace("bank.", "") + " " + count);
    $("refusal-codes").textContent = codes.length ? codes.join(" · ") : "pre-check by the guardrails";
    if (feed.site && feed.site.zone) zone = feed.site.zone;
    $("zone-name").textContent = zone;

    const grid = $("machines");
    const cards = feed.machines.filter((m) => m.kind !== "operator").concat(feed.machines.filter((m) => m.kind === "operator"));
    grid.replaceChildren(...cards.map(machineCard));

    const list = $("activity");
    const items = (feed.recent || []).slice(0, 30).map((event) =>
      el("li", { className: event.outcome, title: event.explanation || event.detail || "" }, [
        el("span", { className: "t", text: Math.round(event.at_s) + "s" }),
        el("span", { className: "who", text: event.machine }),
        el("span", { className: "what", text: event.text }),
      ]),
    );
    if (items.length) list.replaceChildren(...items);
  }

  function renderPrices(answer) {
    const records = (answer.prices || answer.clearings || []).slice().sort((a, b) => a.interval - b.interval).slice(-24);
    const box = $("price-chart");
    const traded = records.filter((r) => r.price !== null && r.price !== undefined);
    if (traded.length) {
      const last = traded[traded.length - 1];
      $("last-price").textContent = last.price;
      $("last-price-sub").textContent = `interval ${last.interval}: volume ${last.volume} Wh, ${last.status}`;
    }
    const width = 640;
    const height = 150;
    const pad = 26;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "price-svg", role: "img", "aria-label": "clearing prices" });
    if (!records.length) {
      chart.appendChild(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#6b7785", "font-size": 13, text: "no interval has cleared yet: books clear every 20 s" }));
      box.replaceChildren(chart);
      return;
    }
    const maxPrice = Math.max(1, ...records.map((r) => Math.max(Number(r.price || 0), Number(r.cap || 0))));
    const maxVolume = Math.max(1, ...records.map((r) => Number(r.volume || 0)));
    const step = (width - 2 * pad) / records.length;
    const y = (p) => height - pad - (p / maxPrice) * (height - 2 * pad);
    records.forEach((r, i) => {
      const h = (Number(r.volume || 0) / maxVolume) * (height - 2 * pad);
      chart.appendChild(svg("rect", { x: pad + i * step + 2, y: height - pad - h, width: Math.max(step - 4, 1), height: h, fill: "#d9e2ec" }, [svg("title", { text: `interval ${r.interval}: volume ${r.volume}` })]));
      if (r.cap !== null && r.cap !== undefined) {
        chart.appendChild(svg("line", { x1: pad + i * step, x2: pad + (i + 1) * step, y1: y(r.cap), y2: y(r.cap), stroke: "#b91c1c", "stroke-dasharray": "4 3", "stroke-width": 1.5 }));
      }
    });
    const points = records.map((r, i) => (r.price === null || r.price === undefined ? null : `${pad + (i + 0.5) * step},${y(r.price)}`)).filter(Boolean);
    if (points.length) chart.appendChild(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#0f766e", "stroke-width": 2 }));
    records.forEach((r, i) => {
      if (r.price === null || r.price === undefined) return;
      chart.appendChild(svg("circle", { cx: pad + (i + 0.5) * step, cy: y(r.price), r: 3, fill: "#0f766e" }, [svg("title", { text: `interval ${r.interval}: price ${r.price}` })]));
    });
    chart.appendChild(svg("text", { x: 4, y: pad - 8, "font-size": 11, fill: "#6b7785", text: "max " + maxPrice }));
    chart.appendChild(svg("text", { x: width - 4, y: height - 8, "text-anchor": "end", "font-size": 11, fill: "#6b7785", text: "interval " + records[records.length - 1].interval }));
    box.replaceChildren(chart);
  }

  async function pollFeed() {
    try {
      renderFeed(await getJson("/agents/feed"));
      if (document.querySelector("main").dataset.running === "true") setLive("live", "live");
    } catch (error) {
      setLive("offline", "offline");
    }
    setTimeout(pollFeed, FEED_MS);
  }

  async function pollPrices() {
    try {
      renderPrices(await getJson("/api/v1/market/prices?zone=" + encodeURIComponent(zone)));
      $("status-height").textContent = (await getJson("/api/v1/status")).height;
    } catch (error) {
      /* the feed poll shows the state */
    }
    setTimeout(pollPrices, PRICES_MS);
  }

  pollFeed();
  pollPrices();
})();
