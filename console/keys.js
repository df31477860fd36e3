// API keys: list, create (the secret shown once), delete, and each key's groups.

import * as api from "./api.js";
import { h, fill, field, status, act, when, confirmDialog, table, pager, section } from "./ui.js";
import { groupPicker } from "./groups.js";

export async function keysPage(ctx, flash, secret) {
  document.title = "API keys · gatehouse";
  const { main } = ctx;
  const st = status();
  const list = h("div", { id: "key-results" });
  const flashSt = status();
  if (flash) flashSt.ok(flash);
  const reload = (message, shown) => keysPage(ctx, message, shown);
  fill(main, h("h1", { tabindex: "-1" }, "API keys"), flashSt.el, secret ? secretCard(secret) : null, createKeyForm(reload), section("Keys", st.el, list));
  const load = async (pageIndex = 0) => {
    const page = await act(st, "Loading keys…", () => api.call("GET", "/apiKeys" + api.qs({ pageIndex, pageSize: 25 })));
    if (!page) return;
    const delSt = status();
    fill(
      list,
      table(
        [
          { label: "Name", cell: (k) => k.name },
          { label: "Description", cell: (k) => k.description || "" },
          { label: "Client id", cell: (k) => h("code", {}, k.clientId) },
          { label: "State", cell: (k) => h("span", { class: `badge ${k.enabled ? "active" : "suspended"}` }, k.enabled ? "Enabled" : "Disabled") },
          { label: "Created", cell: (k) => when(k.created) },
          { label: "Groups", cell: (k) => keyGroups(k, reload) },
          {
            label: "",
            cell: (k) =>
              h(
                "button",
                {
                  type: "button",
                  class: "danger small",
                  "aria-label": `Delete key ${k.name}`,
                  onclick: async (e) => {
                    if (!(await confirmDialog(`Delete the key ${k.name}?`, "Scripts using it stop working at once. This cannot be undone."))) return;
                    const ok = await act(delSt, `Deleting ${k.name}…`, () => api.call("DELETE", `/apiKeys/${k.id}`).then(() => true), null, e.currentTarget);
                    if (ok) reload(`Deleted the key ${k.name}.`);
                  },
                },
                "Delete",
              ),
          },
        ],
        page.items,
        { caption: "API keys", empty: "No API keys.", class: "keys" },
      ),
      delSt.el,
      pager(page, load),
    );
  };
  load();
}

/** The key's user's direct groups, with add and remove. */
function keyGroups(key, reload) {
  const box = h("div", { class: "key-groups" }, "…");
  (async () => {
    const st = status();
    let groups;
    try {
      groups = (await api.all(`/users/${key.userId}/groups`)).items;
    } catch (err) {
      st.error(err);
      return fill(box, st.el);
    }
    const picker = groupPicker(`Add ${key.name} to group`, `key-${key.id}-group`);
    const add = h("button", { type: "submit", class: "small" }, "Add");
    fill(
      box,
      groups.length
        ? h(
            "ul",
            { class: "plain" },
            groups.map((g) =>
              h(
                "li",
                {},
                g.name,
                " ",
                h(
                  "button",
                  {
                    type: "button",
                    class: "small",
                    "aria-label": `Remove ${key.name} from ${g.name}`,
                    onclick: async (e) => {
                      const ok = await act(st, "Removing…", () => api.call("DELETE", `/groups/${g.id}/users/${key.userId}`).then(() => true), null, e.currentTarget);
                      if (ok) reload(`Removed ${key.name} from ${g.name}.`);
                    },
                  },
                  "Remove",
                ),
              ),
            ),
          )
        : h("p", { class: "hint" }, "No groups."),
      h(
        "form",
        {
          class: "inline compact",
          onsubmit: async (e) => {
            e.preventDefault();
            const name = picker.input.value.trim();
            if (!name) return;
            const ok = await act(st, "Adding…", () => api.call("PUT", `/groups/${api.seg(name)}/users/${key.userId}`).then(() => true), null, add);
            if (ok) reload(`Added ${key.name} to ${name}.`);
          },
        },
        picker.row,
        add,
      ),
      st.el,
    );
  })();
  return box;
}

function createKeyForm(reload) {
  const name = field("Name", { id: "new-key-name", required: true, autocomplete: "off" });
  const desc = field("Description", { id: "new-key-description", autocomplete: "off" });
  const st = status();
  const submit = h("button", { type: "submit", class: "primary", id: "create-key" }, "Create key");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { name: name.input.value.trim(), enabled: true };
        if (desc.input.value.trim()) body.description = desc.input.value.trim();
        const key = await act(st, "Creating the key…", () => api.call("POST", "/apiKeys", body), null, submit);
        if (key) reload(`Created the key ${key.name}.`, key);
      },
    },
    h("div", { class: "grid" }, name.row, desc.row),
    h("div", { class: "actions" }, submit),
    st.el,
  );
  return h("details", { class: "card" }, h("summary", { id: "new-key-toggle" }, "Create an API key"), form);
}

/** The new key's secret: shown this once, with a copy button and a warning. */
function secretCard(key) {
  const st = status();
  const secret = h("code", { id: "key-secret", class: "secret" }, key.clientSecret);
  const copy = h(
    "button",
    {
      type: "button",
      id: "copy-secret",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(key.clientSecret);
          st.ok("Copied to the clipboard.");
        } catch {
          // No clipboard permission: select the text so Ctrl+C copies it.
          const range = document.createRange();
          range.selectNodeContents(secret);
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          st.ok("Selected: press Ctrl+C (⌘C) to copy.");
        }
      },
    },
    "Copy secret",
  );
  return h(
    "section",
    { class: "card warning", role: "alert", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title" }, `Secret of ${key.name}`),
    h("p", {}, h("strong", {}, "Copy it now: it is shown only this once."), " The server keeps only a hash; if it is lost, delete the key and make a new one."),
    h("dl", { class: "facts" }, h("dt", {}, "Client id"), h("dd", {}, h("code", { id: "key-client-id" }, key.clientId)), h("dt", {}, "Client secret"), h("dd", {}, secret)),
    h("div", { class: "actions" }, copy),
    st.el,
  );
}
