// Offline API reference: renders /openapi.json as a list of operations with curl examples.
"use strict";

(function () {
  const origin = window.location.origin;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function example(method, path, operation) {
    const query = (operation.parameters || []).filter((p) => p.in === "query" && p.required);
    let url = origin + path.replace(/\{(\w+)\}/g, (_, name) => "<" + name + ">");
    if (query.length) url += "?" + query.map((p) => p.name + "=<" + p.name + ">").join("&");
    const parts = ["curl -s"];
    if (method !== "get") parts.push("-X " + method.toUpperCase());
    if ((operation.parameters || []).some((p) => p.in === "header" && p.name === "X-API-Key") ||
        (operation.security || []).length) {
      parts.push('-H "X-API-Key: $AUTARKY_API_KEY"');
    }
    if (operation.requestBody) {
      parts.push('-H "Content-Type: application/cbor" --data-binary @tx.cbor');
    }
    parts.push("'" + url + "'");
    return parts.join(" ");
  }

  function parameters(operation) {
    const list = (operation.parameters || []).filter((p) => p.in !== "header");
    if (!list.length) return null;
    const table = el("table", "compact");
    const head = el("tr");
    for (const name of ["Parameter", "In", "Type", "Description"]) head.appendChild(el("th", "", name));
    table.appendChild(head);
    for (const p of list) {
      const row = el("tr");
      const schema = p.schema || {};
      const type = schema.type || (schema.anyOf || []).map((s) => s.type).filter(Boolean).join(" | ");
      const bounds = [];
      if (schema.minimum !== undefined) bounds.push("≥ " + schema.minimum);
      if (schema.maximum !== undefined) bounds.push("≤ " + schema.maximum);
      if (schema.default !== undefined) bounds.push("default " + schema.default);
      row.appendChild(el("td", "mono", p.name + (p.required ? " *" : "")));
      row.appendChild(el("td", "", p.in));
      row.appendChild(el("td", "mono", type + (bounds.length ? " (" + bounds.join(", ") + ")" : "")));
      row.appendChild(el("td", "", p.description || ""));
      table.appendChild(row);
    }
    return table;
  }

  function render(spec) {
    const root = document.getElementById("operations");
    root.replaceChildren();
    const byTag = new Map();
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const tag = (operation.tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, operation]);
      }
    }
    for (const [tag, operations] of byTag) {
      root.appendChild(el("h2", "tag", tag));
      for (const [path, method, operation] of operations) {
        const box = el("section", "operation");
        box.dataset.testid = "operation";
        const line = el("div", "line");
        line.appendChild(el("span", "method " + method, method.toUpperCase()));
        line.appendChild(el("span", "path", path));
        line.appendChild(el("span", "summary", operation.summary || ""));
        box.appendChild(line);
        if (operation.description) box.appendChild(el("p", "", operation.description));
        const table = parameters(operation);
        if (table) box.appendChild(table);
        const codes = Object.entries(operation.responses || {}).map(([code, r]) => code + " " + (r.description || ""));
        box.appendChild(el("p", "muted", "Responses: " + codes.join(" · ")));
        box.appendChild(el("pre", "", example(method, path, operation)));
        root.appendChild(box);
      }
    }
  }

  fetch("/openapi.json")
    .then((response) => response.json())
    .then(render)
    .catch((error) => {
      document.getElementById("operations").textContent = "Could not load /openapi.json: " + error;
    });
})();
