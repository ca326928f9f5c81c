// Autarky dashboard: keeps the server-rendered page live. Vanilla JavaScript, no dependencies.
//
// Live data comes from /api/v1/events (Server-Sent Events: hello, block, tx); the mempool and the
// machines table are re-read from the API every few seconds and after blocks with transactions.
// Every text from the network is inserted with textContent, never as HTML.
"use strict";

(function () {
  const MAX_BLOCK_ROWS = 12;
  const MAX_FEED_ITEMS = 60;
  const STATUS_EVERY_MS = 3000;
  const MACHINES_EVERY_MS = 10000;

  const $ = (id) => document.getElementById(id);

  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function shortHash(hex, length) {
    return hex ? hex.slice(0, length || 10) + "…" : "";
  }

  function shortDid(did) {
    if (did && did.startsWith("did:key:") && did.length > 24) return did.slice(8, 16) + "…" + did.slice(-4);
    return did || "";
  }

  function clock(timeMs) {
    if (!timeMs) return "";
    return new Date(Number(timeMs)).toLocaleTimeString([], { hour12: false });
  }

  function formatBalances(balances) {
    const parts = Object.entries(balances || {}).map(([asset, amount]) => amount + " " + asset);
    return parts.length ? parts.join(", ") : "—";
  }

  function formatGuardrails(guard) {
    if (!guard) return "none";
    const limits = Object.entries(guard.limits || {}).map(([asset, limit]) => {
      const rules = [];
      if (limit.per_tx != null) rules.push("≤" + limit.per_tx + "/tx");
      if (limit.per_window != null) rules.push("≤" + limit.per_window + "/" + guard.window_blocks + " blocks");
      if (limit.cosign_above != null) rules.push("cosign >" + limit.cosign_above);
      return asset + ": " + (rules.join(", ") || "no limit");
    });
    if (guard.allowlist) limits.push(guard.allowlist.length + " allowed counterparties");
    return limits.join("; ") || "set";
  }

  // -- chain status ---------------------------------------------------------------------------

  function showStatus(status) {
    $("status-height").textContent = status.height;
    $("status-state-root").textContent = status.state_root;
    $("status-state-root").title = status.state_root;
    $("status-block-hash").textContent = shortHash(status.block_hash);
    $("status-block-hash").title = status.block_hash;
    $("status-time").textContent = clock(status.time_ms);
    if (status.mempool) {
      $("status-mempool").textContent = status.mempool.transactions;
      $("status-mempool-bytes").textContent = status.mempool.bytes;
    }
    if (status.node_key) {
      $("status-node-key").textContent = status.node_key;
      $("status-node-key").title = status.node_key;
    }
    if (status.engine) $("status-engine").textContent = status.engine.engine;
    if (status.final_height !== undefined) $("status-final").textContent = status.final_height;
    const fault = $("status-fault");
    fault.hidden = !status.fault;
    fault.textContent = status.fault || "";
  }

  function showHeader(header) {
    $("status-height").textContent = header.height;
    $("status-state-root").textContent = header.state_root;
    $("status-state-root").title = header.state_root;
    $("status-block-hash").textContent = shortHash(header.hash);
    $("status-block-hash").title = header.hash;
    $("status-time").textContent = clock(header.time_ms);
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) {
      const error = (body && body.error) || { code: "api.http_" + response.status, message: response.statusText };
      throw error;
    }
    return body;
  }

  async function refreshStatus() {
    try {
      showStatus(await getJson("/api/v1/status"));
    } catch (error) {
      setLive("offline", "node unreachable");
    }
  }

  // -- blocks ---------------------------------------------------------------------------------

  function blockRow(header, fresh) {
    const row = el("tr", {
      "data-testid": "block-row",
      "data-height": String(header.height),
      "data-txs": String(header.tx_count),
      className: (header.tx_count === 0 ? "empty" : "") + (fresh ? " fresh" : ""),
    }, [
      el("td", { text: String(header.height) }),
      el("td", { className: "mono", title: header.hash, text: shortHash(header.hash, 16) }),
      el("td", { className: "num", text: String(header.tx_count) }),
      el("td", { className: "time", "data-time-ms": String(header.time_ms), text: clock(header.time_ms) }),
    ]);
    return row;
  }

  function addBlock(header) {
    const body = $("blocks-body");
    const first = body.querySelector("tr[data-height]");
    if (first && Number(first.dataset.height) >= header.height) return;
    body.insertBefore(blockRow(header, true), body.firstChild);
    // Keep every non-empty block in view as long as possible: trim empty ones first.
    const rows = Array.from(body.querySelectorAll("tr[data-height]"));
    let excess = rows.length - MAX_BLOCK_ROWS;
    for (let i = rows.length - 1; i >= 0 && excess > 0; i--) {
      if (rows[i].dataset.txs === "0") { rows[i].remove(); excess--; }
    }
    for (let i = rows.length - 1; i >= 0 && excess > 0; i--) {
      if (rows[i].isConnected) { rows[i].remove(); excess--; }
    }
  }

  // -- event feed -----------------------------------------------------------------------------

  function feedItem(kind, kindClass, timeMs, what) {
    return el("li", { "data-testid": "event-item", "data-kind": kind, className: "fresh" }, [
      el("span", { className: "kind " + kindClass, text: kind }),
      el("span", { className: "at", text: clock(timeMs) }),
      el("span", { className: "what" }, what),
    ]);
  }

  function pushFeed(item) {
    const feed = $("event-feed");
    const placeholder = $("event-feed-empty");
    if (placeholder) placeholder.remove();
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > MAX_FEED_ITEMS) feed.lastChild.remove();
  }

  function describeTx(message) {
    const parts = [];
    const transfer = (message.events || []).find((event) => event.type === "bank.transfer");
    if (transfer) {
      const a = transfer.attributes;
      parts.push(el("span", { text: a.amount + " " + a.asset + " " }));
      parts.push(el("span", { className: "mono", title: a.from, text: shortDid(a.from) }));
      parts.push(el("span", { text: " → " }));
      parts.push(el("span", { className: "mono", title: a.to, text: shortDid(a.to) }));
    } else {
      const types = (message.events || []).map((event) => event.type).filter((t) => t !== "bank.fee");
      parts.push(el("span", { text: (types.join(", ") || "transaction") + " " }));
      parts.push(el("span", { className: "mono", title: message.sender || "", text: shortDid(message.sender) }));
    }
    parts.push(el("span", { text: " · " }));
    parts.push(el("span", {
      className: "badge " + (message.ok ? "ok" : "failed"),
      title: message.detail || "",
      text: message.code,
    }));
    parts.push(el("span", { className: "muted mono", title: message.tx_hash, text: " " + shortHash(message.tx_hash) }));
    return parts;
  }

  let lastBlockTime = 0;

  function onBlock(message) {
    lastBlockTime = message.time_ms;
    showHeader(message);
    addBlock(message);
    if (message.tx_count > 0 || $("events-show-empty").checked) {
      const summary = "block " + message.height + " · " + message.tx_count + " tx" +
        (message.failed ? " · " + message.failed + " failed" : "");
      pushFeed(feedItem("block", "", message.time_ms, [
        el("span", { text: summary + " " }),
        el("span", { className: "muted mono", title: message.hash, text: shortHash(message.hash) }),
      ]));
    }
    if (message.tx_count > 0) {
      scheduleMachines();
      refreshStatus();
    }
  }

  function onTx(message) {
    pushFeed(feedItem("tx", message.ok ? "tx" : "fail", lastBlockTime, describeTx(message)));
  }

  // -- machines and balances ------------------------------------------------------------------

  function machineRow(m) {
    const status = el("td", {}, [el("span", { className: "badge " + m.status, text: m.status })]);
    if (m.frozen) {
      status.appendChild(document.createTextNode(" "));
      status.appendChild(el("span", { className: "badge frozen", text: "frozen" }));
    }
    const kind = el("td", { text: m.kind });
    if (m.model) kind.appendChild(el("span", { className: "muted", text: " " + (m.maker + " " + m.model).trim() }));
    return el("tr", { "data-testid": "machine-row", "data-did": m.did }, [
      el("td", { className: "mono", title: m.did, text: m.short }),
      kind,
      el("td", { className: "mono", title: m.owner || "", text: m.owner ? shortDid(m.owner) : "—" }),
      status,
      el("td", { className: "mono", text: formatBalances(m.balances) }),
      el("td", { className: "guard", text: formatGuardrails(m.guardrails) }),
    ]);
  }

  async function refreshMachines() {
    try {
      const page = await getJson("/api/v1/machines?limit=100");
      const body = $("machines-body");
      body.replaceChildren(...page.machines.map(machineRow));
      if (!page.machines.length) {
        body.appendChild(el("tr", { className: "placeholder" }, [
          el("td", { colspan: "6", text: "No registered machines yet." }),
        ]));
      }
      $("machines-total").textContent = page.total;
    } catch (error) {
      /* the status poll reports an unreachable node */
    }
  }

  let machinesTimer = null;
  function scheduleMachines() {
    if (machinesTimer !== null) return;
    machinesTimer = setTimeout(() => { machinesTimer = null; refreshMachines(); }, 250);
  }

  async function lookUp(event) {
    event.preventDefault();
    const did = $("balance-did").value.trim();
    const result = $("balance-result");
    if (!did) return;
    result.replaceChildren(el("span", { className: "muted", text: "looking up…" }));
    try {
      const account = await getJson("/api/v1/accounts/" + encodeURIComponent(did));
      const rows = [
        ["Account", account.did],
        ["Balances", formatBalances(account.balances)],
        ["Next sequence", String(account.sequence)],
        ["Registered", account.identity ? account.identity.kind + " (" + account.identity.status + ")" : "no"],
        ["Guardrails", formatGuardrails(account.guardrails)],
        ["Frozen", account.frozen ? "yes" : "no"],
      ];
      const list = el("dl", { "data-testid": "balance-details" });
      for (const [name, value] of rows) {
        list.appendChild(el("dt", { text: name }));
        list.appendChild(el("dd", { className: name === "Account" || name === "Balances" ? "mono" : "", text: value }));
      }
      result.replaceChildren(list);
      await showDetail(account.did);
    } catch (error) {
      $("machine-detail").hidden = true;
      result.replaceChildren(el("span", { className: "error", text: (error.code || "error") + ": " + (error.message || "") }));
    }
  }

  function rows(body, items, columns, empty) {
    body.replaceChildren(...items.map((item) => el("tr", { "data-testid": "detail-row" },
      columns(item).map(([text, className]) => el("td", { className: className || "", text: text })))));
    if (!items.length) body.appendChild(el("tr", { className: "placeholder" }, [el("td", { colspan: "4", text: empty })]));
  }

  function day(timeMs) {
    return timeMs ? new Date(Number(timeMs)).toISOString().slice(0, 10) : "—";
  }

  // Keys and attestations from the DID document, grants from /api/v1/grants (given and received).
  async function showDetail(did) {
    const detail = $("machine-detail");
    if (!did.startsWith("did:key:")) { detail.hidden = true; return; }
    const [doc, received, given] = await Promise.all([
      getJson("/api/v1/did/" + encodeURIComponent(did)),
      getJson("/api/v1/grants?grantee=" + encodeURIComponent(did)),
      getJson("/api/v1/grants?grantor=" + encodeURIComponent(did)),
    ]);
    const autarky = doc.autarky || {};
    rows($("detail-keys"), autarky.keys || [], (k) => [
      [shortHash((k.id || "").split("#")[1] || "", 18), "mono"],
      [k.actions ? k.actions.join(", ") : "full"],
      [k.added === undefined ? "—" : "block " + k.added],
    ], "no keys");
    rows($("detail-attestations"), autarky.attestations || [], (a) => [
      [a.schema || ""],
      [shortDid(a.issuer), "mono"],
      [day(a.valid_until_ms)],
      [a.verdict || (a.valid ? "valid" : "invalid")],
    ], "no attestations");
    const seen = new Set();
    const grants = [...received.grants, ...given.grants].filter((g) => !seen.has(g.id) && seen.add(g.id));
    rows($("detail-grants"), grants, (g) => [
      [g.capability, "mono"],
      [shortDid(g.grantor) + " → " + shortDid(g.grantee), "mono"],
      [g.max_uses === null ? String(g.uses) : g.uses + " / " + g.max_uses],
      [g.standing],
    ], "no grants");
    detail.hidden = false;
  }

  async function searchAudit(event) {
    if (event) event.preventDefault();
    const params = new URLSearchParams({ limit: "50" });
    for (const name of ["machine", "action", "grant"]) {
      const value = $("audit-" + name).value.trim();
      if (value) params.set(name, value);
    }
    if ($("audit-refused").checked) params.set("ok", "false");
    const body = $("audit-body");
    try {
      const answer = await getJson("/api/v1/audit?" + params.toString());
      body.replaceChildren(...answer.entries.map((e) => el("tr", { "data-testid": "audit-row" }, [
        el("td", { text: e.height + "." + e.tx_index + "." + e.msg_index }),
        el("td", { text: clock(e.time_ms) }),
        el("td", { className: "mono", title: e.sender, text: shortDid(e.sender) }),
        el("td", { className: "mono", title: e.signers.join(", "), text: shortHash(e.signers[0] || "", 10) }),
        el("td", { text: e.action }),
        el("td", { className: e.ok ? "ok" : "error", text: e.ok ? "ok" : e.code }),
        el("td", { className: "mono", title: e.grants.join(", "), text: e.grants.length ? shortHash(e.grants[0], 10) : "—" }),
      ])));
      if (!answer.entries.length) {
        body.appendChild(el("tr", { className: "placeholder" }, [el("td", { colspan: "7", text: "No matching actions." })]));
      }
    } catch (error) {
      body.replaceChildren(el("tr", {}, [el("td", { colspan: "7", className: "error",
        text: (error.code || "error") + ": " + (error.message || "") })]));
    }
  }

  // -- live connection ------------------------------------------------------------------------

  function setLive(state, text) {
    const indicator = $("live-indicator");
    indicator.dataset.state = state;
    indicator.textContent = text;
  }

  function connect() {
    const source = new EventSource("/api/v1/events");
    source.addEventListener("hello", (event) => {
      setLive("live", "live");
      showStatus(JSON.parse(event.data));
    });
    source.addEventListener("block", (event) => onBlock(JSON.parse(event.data)));
    source.addEventListener("tx", (event) => onTx(JSON.parse(event.data)));
    source.onerror = () => setLive("offline", "reconnecting…");
  }

  function localiseTimes() {
    for (const cell of document.querySelectorAll("[data-time-ms]")) cell.textContent = clock(cell.dataset.timeMs);
  }

  document.addEventListener("DOMContentLoaded", () => {
    localiseTimes();
    $("blocks-hide-empty").addEventListener("change", (event) => {
      $("blocks").classList.toggle("hide-empty", event.target.checked);
    });
    $("balance-form").addEventListener("submit", lookUp);
    $("audit-form").addEventListener("submit", searchAudit);
    $("machines-body").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-did]");
      if (!row) return;
      $("balance-did").value = row.dataset.did;
      $("balance-form").requestSubmit();
      $("balances").scrollIntoView({ behavior: "smooth" });
    });
    connect();
    setInterval(refreshStatus, STATUS_EVERY_MS);
    setInterval(refreshMachines, MACHINES_EVERY_MS);
    refreshMachines();
  });
})();
