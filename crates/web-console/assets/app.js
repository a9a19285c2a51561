// The console: one page, hash-routed (#/, #/orders, #/orders/<id>,
// #/inventory, #/operations). Every read and command goes through
// order-service's API behind /api, as any client's would: commands carry an
// Idempotency-Key, changes to an order its version in If-Match, and refusals
// come back as problem details, shown as they are. Text from the services is
// only ever set as text, never parsed as HTML.
"use strict";

const view = document.getElementById("view");
const FEED_KEPT = 200;
const feed = [];
let onChange = null; // the open page's interest in new events

// ---- helpers -------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const money = (cents) => (cents / 100).toFixed(2);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const status = (name) => h("span", { class: `status ${name}` }, name);
const short = (id) => String(id).slice(0, 8) + "…" + String(id).slice(-4);

class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// How long one call may take before the page says so, and how often a
// command is sent again when the API asks for a retry (503/504 with
// Retry-After: it may have taken effect, and the same Idempotency-Key tells).
const CALL_TIMEOUT_MS = 35000;
const COMMAND_RETRIES = 5;

// One call to the API; the parsed body (and the ETag) or a Problem. A command
// keeps its Idempotency-Key across retries, so it takes effect at most once.
async function api(method, path, { body, ifMatch, command } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (ifMatch !== undefined) headers["if-match"] = `"${ifMatch}"`;
  if (command) headers["idempotency-key"] = crypto.randomUUID();
  for (let attempt = 0; ; attempt++) {
    const response = await call(`/api${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text }; }
    if (response.ok) return { body: parsed, etag: response.headers.get("etag") };
    const retryAfter = Number(response.headers.get("retry-after"));
    const retryable = command && (response.status === 503 || response.status === 504) && retryAfter > 0;
    if (!retryable || attempt >= COMMAND_RETRIES) throw new Problem(response.status, parsed);
    await new Promise((done) => setTimeout(done, Math.min(retryAfter, 5) * 1000));
  }
}

async function getJson(url) {
  const response = await call(url, { headers: { accept: "application/json" } });
  const parsed = await response.json().catch(() => null);
  if (!response.ok) throw new Problem(response.status, parsed);
  return parsed;
}

// A service's /metrics: each sample as { name, labels, value }.
async function getMetrics(url) {
  const response = await call(url, { headers: { accept: "text/plain" } });
  if (!response.ok) throw new Problem(response.status, await response.json().catch(() => null));
  const samples = [];
  for (const line of (await response.text()).split("\n")) {
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!sample) continue;
    const labels = Object.fromEntries([...(sample[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return samples;
}

// The workflow at a glance: its lag, and its commands by step and answer.
function fulfilmentView(samples) {
  const named = (name) => samples.filter((s) => s.name === name);
  const lag = named("fulfilment_lag").reduce((sum, s) => sum + s.value, 0);
  const steps = new Map();
  for (const s of named("fulfilment_steps_total")) {
    const step = steps.get(s.labels.step) || { answers: [], retries: 0 };
    step.answers.push(`${s.labels.status}: ${s.value}`);
    steps.set(s.labels.step, step);
  }
  for (const s of named("fulfilment_step_retries_total")) {
    const step = steps.get(s.labels.step) || { answers: [], retries: 0 };
    step.retries = s.value;
    steps.set(s.labels.step, step);
  }
  return [
    h("p", { id: "fulfilment-lag" }, `Records not acted on yet: ${lag}`),
    steps.size === 0 ? h("p", { class: "muted" }, "No command sent yet.") :
      h("table", { id: "fulfilment" },
        h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Answers (HTTP status: commands)"), h("th", { class: "num" }, "Retries"))),
        h("tbody", {}, [...steps].map(([name, step]) => h("tr", { dataset: { step: name } },
          h("td", {}, name), h("td", { class: "mono" }, step.answers.join(", ")), h("td", { class: "num" }, step.retries))))),
  ];
}

// fetch, bounded in time; no answer becomes a Problem with status 0.
async function call(url, init) {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
  } catch (error) {
    throw new Problem(0, { title: "The console did not answer", detail: String(error) });
  }
}

// A problem, readably: its title, status, detail and any field errors.
function problemBox(problem) {
  const body = problem.body || {};
  const fields = Array.isArray(body.errors) ? body.errors : [];
  return h("div", { class: "problem", role: "alert" },
    h("strong", {}, `${body.title || "Refused"}${problem.status ? ` (${problem.status})` : ""}`),
    h("span", { class: "detail" }, body.detail || problem.message),
    fields.length ? h("ul", {}, fields.map((f) => h("li", {}, typeof f === "string" ? f : JSON.stringify(f)))) : null);
}

// Runs `action` for a form, showing its problem (or `done`'s notice) in `out`.
function submitting(form, out, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "sending…"));
    try {
      const notice = await action(new FormData(form));
      if (notice) out.replaceChildren(notice);
    } catch (error) {
      out.replaceChildren(problemBox(error instanceof Problem ? error : new Problem(0, { detail: String(error) })));
    } finally {
      button.disabled = false;
    }
  });
}

function field(label, attrs) {
  return h("label", {}, label, h("input", attrs));
}

// ---- the live feed -------------------------------------------------------

function connectFeed() {
  const connection = document.getElementById("connection");
  const source = new EventSource("/feed");
  source.onopen = () => { connection.textContent = "live"; };
  source.onerror = () => { connection.textContent = "feed interrupted; reconnecting…"; };
  source.addEventListener("change", (message) => {
    const item = JSON.parse(message.data);
    feed.unshift(item);
    if (feed.length > FEED_KEPT) feed.pop();
    if (onChange) onChange(item);
  });
}

function feedItem(item, fresh) {
  const link = item.entity === "order"
    ? h("a", { href: `#/orders/${item.id}` }, short(item.id))
    : h("a", { href: "#/inventory" }, item.id);
  return h("li", { class: fresh ? "new" : null, dataset: { id: item.id, eventType: item.event_type } },
    h("span", { class: "muted" }, new Date(item.occurred_at).toLocaleTimeString()),
    h("span", {}, h("strong", {}, item.event_type), " ", item.entity, " ", link, " v", item.version),
    h("span", { class: "muted mono" }, `${item.topic} p${item.partition} @${item.offset}`));
}

function showFeed() {
  const list = h("ul", { id: "feed", "aria-live": "polite" }, feed.map((item) => feedItem(item, false)));
  const empty = h("p", { class: "muted" }, "Accepted events appear here as they happen.");
  view.replaceChildren(h("h2", {}, "Live feed"), h("div", { class: "panel" }, feed.length ? null : empty, list));
  onChange = (item) => { empty.remove(); list.prepend(feedItem(item, true)); };
}

// ---- orders --------------------------------------------------------------

function placeForm() {
  const out = h("div", { id: "placed" });
  const form = h("form", { id: "place", "aria-label": "Place an order" },
    field("Customer", { id: "customer", name: "customer", required: true, value: "customer-1" }),
    field("E-mail", { id: "email", name: "email", type: "email", required: true, value: "someone@example.com" }),
    field("SKU", { id: "sku", name: "sku", required: true, value: "BOOK-1" }),
    field("Quantity", { id: "quantity", name: "quantity", type: "number", required: true, value: "1" }),
    field("Unit price (cents)", { id: "price", name: "price", type: "number", required: true, value: "1500" }),
    h("button", { type: "submit" }, "Place order"));
  submitting(form, out, async (data) => {
    const { body } = await api("POST", "/orders", {
      command: true,
      body: {
        customer_id: data.get("customer"),
        email: data.get("email"),
        items: [{ sku: data.get("sku"), quantity: Number(data.get("quantity")), unit_price_cents: Number(data.get("price")) }],
      },
    });
    return h("div", { class: "notice" }, "Placed order ", h("a", { href: `#/orders/${body.id}`, dataset: { id: body.id } }, body.id));
  });
  return h("section", { class: "panel" }, h("h3", {}, "Place an order"), form, out);
}

async function showOrders(params) {
  const filters = { status: params.get("status") || "", customer_id: params.get("customer") || "" };
  const cursors = (params.get("trail") || "").split(",").filter(Boolean);
  const query = new URLSearchParams({ limit: "20" });
  if (filters.status) query.set("status", filters.status);
  if (filters.customer_id) query.set("customer_id", filters.customer_id);
  if (cursors.length) query.set("cursor", cursors[cursors.length - 1]);

  const statusFilter = h("select", { id: "status-filter", name: "status" },
    ["", "placed", "confirmed", "shipped", "delivered", "cancelled"].map((s) =>
      h("option", { value: s, selected: s === filters.status }, s || "any status")));
  const customerFilter = h("input", { id: "customer-filter", name: "customer", value: filters.customer_id, placeholder: "any customer" });
  const filterForm = h("form", { id: "filters", "aria-label": "Filter orders" },
    h("label", {}, "Status", statusFilter), h("label", {}, "Customer", customerFilter),
    h("button", { type: "submit", class: "secondary" }, "Filter"));
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    go("orders", { status: statusFilter.value, customer: customerFilter.value });
  });

  const table = h("table", { id: "orders" },
    h("thead", {}, h("tr", {}, h("th", {}, "Order"), h("th", {}, "Customer"), h("th", {}, "Status"),
      h("th", { class: "num" }, "Total"), h("th", { class: "num" }, "Version"), h("th", {}, "Updated"))),
    h("tbody"));
  const pager = h("div", { class: "pager" });
  const listPanel = h("section", { class: "panel" }, h("h3", {}, "Orders"), filterForm, h("div", { class: "scroll" }, table), pager);
  view.replaceChildren(h("h2", {}, "Orders"), placeForm(), listPanel);

  try {
    const { body } = await api("GET", `/orders?${query}`);
    table.tBodies[0].replaceChildren(...body.orders.map((o) => h("tr", { dataset: { id: o.id } },
      h("td", { class: "mono" }, h("a", { href: `#/orders/${o.id}` }, short(o.id))),
      h("td", {}, o.customer_id), h("td", {}, status(o.status)),
      h("td", { class: "num" }, money(o.total_cents)), h("td", { class: "num" }, o.version),
      h("td", {}, when(o.updated_at)))));
    if (!body.orders.length) table.tBodies[0].append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No orders.")));
    const trail = (list) => ({ status: filters.status, customer: filters.customer_id, trail: list.join(",") });
    pager.replaceChildren(
      h("button", { id: "prev-page", class: "secondary", disabled: !cursors.length, onclick: () => go("orders", trail(cursors.slice(0, -1))) }, "Previous"),
      h("span", { class: "muted" }, `page ${cursors.length + 1}`),
      h("button", { id: "next-page", class: "secondary", disabled: !body.next_cursor, onclick: () => go("orders", trail([...cursors, body.next_cursor])) }, "Next"));
  } catch (error) {
    listPanel.append(problemBox(error));
  }
  // New orders show on the first page; the read model follows the log.
  onChange = (item) => {
    if (item.entity === "order" && !cursors.length) setTimeout(() => refreshIfStill("orders"), 300);
  };
}

// One order: its state, its timeline of events, its effects, and the
// commands it accepts now.
async function showOrder(id) {
  const state = h("section", { class: "panel", id: "order" }, h("p", { class: "muted" }, "loading…"));
  const timeline = h("ol", { id: "timeline" });
  const effects = h("div", { id: "effects", class: "scroll" });
  const actions = h("div", { class: "actions" });
  const out = h("div", { id: "outcome" });
  view.replaceChildren(h("h2", {}, "Order ", h("span", { class: "mono" }, id)), state,
    h("section", { class: "panel" }, h("h3", {}, "Act"), actions, out),
    h("div", { class: "columns" },
      h("section", { class: "panel" }, h("h3", {}, "Timeline"), timeline),
      h("section", { class: "panel" }, h("h3", {}, "Effects"), effects)));

  async function load() {
    let order;
    try {
      order = (await api("GET", `/orders/${id}`)).body;
    } catch (error) {
      state.replaceChildren(problemBox(error));
      return;
    }
    state.replaceChildren(
      h("p", {}, "Status ", h("span", { id: "order-status" }, status(order.status)),
        " · version ", h("span", { id: "order-version" }, order.version),
        " · total ", money(order.total_cents),
        order.stock_reserved ? " · stock reserved" : "",
        order.cancel_reason ? ` · cancelled: ${order.cancel_reason}` : "",
        order.carrier ? ` · ${order.carrier} ${order.tracking_number}` : ""),
      h("p", { class: "muted" }, `${order.customer_id} <${order.email}>, placed ${when(order.created_at)}`),
      h("div", { class: "scroll" }, h("table", { id: "items" },
        h("thead", {}, h("tr", {}, h("th", {}, "SKU"), h("th", { class: "num" }, "Quantity"), h("th", { class: "num" }, "Unit price"))),
        h("tbody", {}, order.items.map((item) => h("tr", {}, h("td", {}, item.sku),
          h("td", { class: "num" }, item.quantity), h("td", { class: "num" }, money(item.unit_price_cents))))))));
    actions.replaceChildren(...orderActions(order, out, load));
    try {
      const { body } = await api("GET", `/orders/${id}/events`);
      timeline.replaceChildren(...body.events.map((e) => h("li", { dataset: { version: e.version } },
        h("span", { class: "event" }, e.event_type), " v", e.version,
        h("div", { class: "muted" }, when(e.occurred_at)),
        Object.keys(e.data || {}).length ? h("div", { class: "mono" }, JSON.stringify(e.data)) : null)));
    } catch (error) {
      timeline.replaceChildren(problemBox(error));
    }
    try {
      const listed = await getJson(`/ops/notifier/effects?entity_id=${encodeURIComponent(id)}`);
      effects.replaceChildren(effectsTable(listed.effects, "order-effects"));
    } catch (error) {
      effects.replaceChildren(problemBox(error));
    }
  }
  onChange = (item) => { if (item.id === id) setTimeout(() => refreshIfStill(`orders/${id}`, load), 200); };
  await load();
}

// The forms for what an order in this status accepts, each a command with
// the version it was shown at.
function orderActions(order, out, reload) {
  const command = (label, path, fields, body) => {
    const form = h("form", { dataset: { action: label.toLowerCase() } }, ...fields,
      h("button", { type: "submit", dataset: { action: label.toLowerCase() } }, label));
    submitting(form, out, async (data) => {
      await api("POST", `/orders/${order.id}${path}`, { command: true, ifMatch: order.version, body: body(data) });
      reload(); // the answer shows now; the page catches up on its own
      return h("div", { class: "notice" }, `${label}: accepted`);
    });
    return form;
  };
  const open = order.status === "placed" || order.status === "confirmed";
  const forms = [];
  if (order.status === "placed") {
    forms.push(command("Add item", "/items", [
      field("SKU", { name: "sku", required: true, value: "PEN-2" }),
      field("Quantity", { name: "quantity", type: "number", value: "1", required: true }),
      field("Unit price (cents)", { name: "price", type: "number", value: "250", required: true }),
    ], (d) => ({ sku: d.get("sku"), quantity: Number(d.get("quantity")), unit_price_cents: Number(d.get("price")) })));
    const remove = h("form", { dataset: { action: "remove item" } },
      h("label", {}, "SKU", h("select", { name: "sku" }, order.items.map((i) => h("option", { value: i.sku }, i.sku)))),
      h("button", { type: "submit" }, "Remove item"));
    submitting(remove, out, async (data) => {
      await api("DELETE", `/orders/${order.id}/items/${encodeURIComponent(data.get("sku"))}`, { command: true, ifMatch: order.version });
      reload();
      return h("div", { class: "notice" }, "Remove item: accepted");
    });
    forms.push(remove);
    forms.push(command("Confirm", "/confirm", [], () => ({})));
  }
  if (order.status === "confirmed") {
    forms.push(command("Ship", "/ship", [
      field("Carrier", { name: "carrier", value: "DHL", required: true }),
      field("Tracking number", { name: "tracking", value: "JD0001", required: true }),
    ], (d) => ({ carrier: d.get("carrier"), tracking_number: d.get("tracking") })));
  }
  if (order.status === "shipped") forms.push(command("Deliver", "/deliver", [], () => ({})));
  if (open) {
    forms.push(command("Cancel", "/cancel", [field("Reason", { name: "reason", value: "changed my mind", required: true })],
      (d) => ({ reason: d.get("reason") })));
  }
  if (!forms.length) return [h("p", { class: "muted" }, `A ${order.status} order accepts no more commands.`)];
  return forms;
}

function effectsTable(effects, id) {
  if (!effects.length) return h("p", { class: "muted", id }, "None.");
  return h("table", { id },
    h("thead", {}, h("tr", {}, h("th", {}, "Kind"), h("th", {}, "Event"), h("th", {}, "State"),
      h("th", { class: "num" }, "Attempts"), h("th", {}, "Destination"), h("th", {}, "Last error"))),
    h("tbody", {}, effects.map((e) => h("tr", { dataset: { state: e.state } },
      h("td", {}, e.kind), h("td", {}, e.event_type), h("td", {}, status(e.state)),
      h("td", { class: "num" }, e.attempts), h("td", { class: "mono" }, e.destination),
      h("td", {}, e.last_error || "")))));
}

// ---- inventory -----------------------------------------------------------

async function showInventory() {
  const table = h("table", { id: "stock" },
    h("thead", {}, h("tr", {}, h("th", {}, "SKU"), h("th", { class: "num" }, "Available"), h("th", { class: "num" }, "Reserved"),
      h("th", { class: "num" }, "Shipped"), h("th", { class: "num" }, "Received"), h("th", {}, "Reservations"))),
    h("tbody"));
  const panel = h("section", { class: "panel" }, h("div", { class: "scroll" }, table));
  view.replaceChildren(h("h2", {}, "Inventory"), panel);
  try {
    const { body } = await api("GET", "/inventory?limit=100");
    table.tBodies[0].replaceChildren(...body.stock.map((s) => h("tr", { dataset: { sku: s.sku } },
      h("td", {}, s.sku, s.available <= s.low_stock_threshold ? h("span", { class: "status cancelled" }, "low") : null),
      h("td", { class: "num" }, s.available), h("td", { class: "num" }, s.reserved),
      h("td", { class: "num" }, s.shipped), h("td", { class: "num" }, s.received),
      h("td", {}, s.reservations.map((r) => h("div", {}, h("a", { href: `#/orders/${r.order_id}` }, short(r.order_id)), ` ${r.units}`))))));
    if (!body.stock.length) table.tBodies[0].append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No stock yet.")));
  } catch (error) {
    panel.append(problemBox(error));
  }
  onChange = (item) => { if (item.entity !== "order") setTimeout(() => refreshIfStill("inventory"), 300); };
}

// ---- operations ----------------------------------------------------------

async function showOperations() {
  const partitions = h("div", { class: "scroll" });
  const deadLetters = h("div", { id: "dead-letters" });
  const failed = h("div", { class: "scroll" });
  const pending = h("div", { class: "scroll" });
  const workflow = h("div", { class: "scroll" });
  view.replaceChildren(h("h2", {}, "Operations"),
    h("section", { class: "panel" }, h("h3", {}, "Partitions (the projector)"), partitions),
    h("section", { class: "panel" }, h("h3", {}, "Fulfilment (the workflow's commands)"), workflow),
    h("section", { class: "panel" }, h("h3", {}, "Dead letters"), deadLetters),
    h("div", { class: "columns" },
      h("section", { class: "panel" }, h("h3", {}, "Failed effects"), failed),
      h("section", { class: "panel" }, h("h3", {}, "Pending effects"), pending)));
  onChange = null;

  const rows = [];
  for (const entity of ["orders", "inventory"]) {
    try {
      const listed = await getJson(`/ops/projector/partitions?entity=${entity}`);
      for (const p of listed.partitions || []) rows.push({ entity, owner: listed.instance_id || listed.owner || "", ...p });
      for (const r of listed.standbys || []) rows.push({ entity, standby: true, ...r });
    } catch (error) {
      partitions.append(problemBox(error));
    }
  }
  partitions.prepend(h("table", { id: "partitions" },
    h("thead", {}, h("tr", {}, h("th", {}, "Entity"), h("th", { class: "num" }, "Partition"), h("th", {}, "Role"),
      h("th", {}, "Status"), h("th", { class: "num" }, "Folded"), h("th", { class: "num" }, "Committed"),
      h("th", { class: "num" }, "End"), h("th", { class: "num" }, "Lag"))),
    h("tbody", {}, rows.map((p) => h("tr", { dataset: { entity: p.entity, partition: p.partition, role: p.standby ? "standby" : "owner" } },
      h("td", {}, p.entity), h("td", { class: "num" }, p.partition),
      h("td", {}, p.standby ? "standby copy" : `owner ${p.owner}`),
      h("td", {}, p.state ? status(p.state) : (p.standby ? "following" : ""), p.reason ? h("div", { class: "muted" }, p.reason) : null),
      h("td", { class: "num" }, p.folded_offset ?? ""), h("td", { class: "num" }, p.committed_offset ?? ""),
      h("td", { class: "num" }, p.end_offset ?? p.changelog_offset ?? ""), h("td", { class: "num" }, p.lag ?? ""))))));

  try {
    workflow.replaceChildren(...fulfilmentView(await getMetrics("/ops/fulfilment/metrics")));
  } catch (error) {
    workflow.replaceChildren(problemBox(error));
  }

  try {
    const listed = await getJson("/ops/dead-letters");
    deadLetters.replaceChildren(...listed.topics.map((t) => h("div", { dataset: { topic: t.topic } },
      h("h4", { class: "mono" }, `${t.topic}: ${t.error ? t.error : `${t.total} records`}`),
      t.records && t.records.length ? h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Partition @ offset"), h("th", {}, "Reason"), h("th", {}, "From"), h("th", {}, "Payload"))),
        h("tbody", {}, t.records.map((r) => h("tr", {},
          h("td", { class: "mono" }, `p${r.partition} @${r.offset}`), h("td", {}, r.reason || ""),
          h("td", { class: "mono" }, r.source ? `${r.source.topic} p${r.source.partition} @${r.source.offset}` : ""),
          h("td", { class: "mono" }, r.payload)))))) : null)));
  } catch (error) {
    deadLetters.replaceChildren(problemBox(error));
  }
  for (const [state, box] of [["failed", failed], ["pending", pending]]) {
    try {
      const listed = await getJson(`/ops/notifier/effects?state=${state}&limit=50`);
      box.replaceChildren(effectsTable(listed.effects, `effects-${state}`));
    } catch (error) {
      box.replaceChildren(problemBox(error));
    }
  }
}

// ---- routing -------------------------------------------------------------

function go(page, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  location.hash = `#/${page}${query ? `?${query}` : ""}`;
}

let rendered = "";
// Only the page that asked: a prefix would let the list's late refresh
// re-render an order's page, wiping the answer it just showed.
function refreshIfStill(page, reload) {
  if (rendered === page) (reload || route)();
}

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  rendered = path;
  onChange = null;
  for (const link of document.querySelectorAll("header nav a")) {
    const target = link.getAttribute("href").replace(/^#\/?/, "");
    const current = target === "" ? parts.length === 0 : parts[0] === target;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (parts[0] === "orders" && parts[1]) return showOrder(parts[1]);
  if (parts[0] === "orders") return showOrders(params);
  if (parts[0] === "inventory") return showInventory();
  if (parts[0] === "operations") return showOperations();
  return showFeed();
}

window.addEventListener("hashchange", () => { route(); view.focus(); });
connectFeed();
route();
