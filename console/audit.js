// The audit trail: the filtered log, and the recent events of one user or group.

import * as api from "./api.js";
import { h, fill, field, status, act, when, table, pager, section } from "./ui.js";

const TYPES = [
  "user.created", "user.updated", "user.deleted", "user.passwordChanged", "user.passwordReset",
  "user.suspended", "user.unsuspended", "user.unlocked", "user.passwordResetForced",
  "user.passwordExpirable", "user.imported", "group.created", "group.updated", "group.deleted",
  "group.memberAdded", "group.memberRemoved", "group.childAdded", "group.childRemoved",
  "apiKey.created", "apiKey.updated", "apiKey.disabled", "apiKey.deleted",
  "signingKey.rotated", "signingKey.retired", "login.succeeded", "login.failed",
  "login.lockedOut", "refreshToken.reused", "refreshToken.revoked",
  "webhook.created", "webhook.updated", "webhook.deleted",
];

function targetText(e) {
  const t = e.target || {};
  return [t.userName && `user ${t.userName}`, t.groupName && `group ${t.groupName}`, t.keyName && `key ${t.keyName}`].filter(Boolean).join(", ") || "—";
}

function summaryText(e) {
  const s = e.summary || {};
  const parts = Object.entries(s).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  return parts.join("; ") || "";
}

const COLUMNS = [
  { label: "When", cell: (e) => when(e.at) },
  { label: "Type", cell: (e) => h("code", {}, e.type) },
  { label: "Actor", cell: (e) => `${e.actor?.name || e.actor?.type || "—"}` },
  { label: "Target", cell: (e) => targetText(e) },
  { label: "Details", cell: (e) => summaryText(e) },
  { label: "From", cell: (e) => e.clientAddress || "" },
];

export function auditPage(ctx) {
  document.title = "Audit · gatehouse";
  const { main } = ctx;
  const type = field("Type", { id: "audit-type", list: "audit-types", autocomplete: "off", placeholder: "any; several with commas" });
  const types = h("datalist", { id: "audit-types" }, TYPES.map((t) => h("option", { value: t })));
  const actor = field("Actor (id, username or email)", { id: "audit-actor", autocomplete: "off" });
  const target = field("Target (user or group: id or name)", { id: "audit-target", autocomplete: "off" });
  const since = field("Since", { id: "audit-since", type: "datetime-local" });
  const until = field("Until", { id: "audit-until", type: "datetime-local" });
  const st = status();
  const results = h("div", { id: "audit-results" });
  const iso = (v) => (v ? new Date(v).toISOString() : "");
  const load = async (pageIndex = 0) => {
    const page = await act(st, "Loading events…", () =>
      api.call(
        "GET",
        "/audit" +
          api.qs({
            type: type.input.value.trim(),
            actor: actor.input.value.trim(),
            target: target.input.value.trim(),
            since: iso(since.input.value),
            until: iso(until.input.value),
            pageIndex,
            pageSize: 50,
          }),
      ),
    );
    if (!page) return;
    fill(results, table(COLUMNS, page.items, { caption: "Events, newest first", empty: "No events match.", class: "audit" }), pager(page, load));
  };
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (e) => {
        e.preventDefault();
        load(0);
      },
    },
    h("div", { class: "grid" }, type.row, actor.row, target.row, since.row, until.row),
    types,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Filter")),
  );
  fill(main, h("h1", { tabindex: "-1" }, "Audit"), section("Filter", form), section("Events", st.el, results));
  load(0);
}

/** The last ten events about a user or group. */
export function recentEvents(filter) {
  const st = status();
  const body = h("div", {});
  (async () => {
    const page = await act(st, "Loading recent events…", () => api.call("GET", "/audit" + api.qs({ ...filter, pageSize: 10 })));
    if (page) fill(body, table(COLUMNS, page.items, { caption: "The ten newest", empty: "No events.", class: "recent" }));
  })();
  return section("Recent events", st.el, body);
}
