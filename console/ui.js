// Small DOM helpers: elements, status messages, errors, badges, dialogs, tables.

/** Creates an element: h("button", {class: "x", onclick}, "text", child...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else if (k === "value" || k === "checked") {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
/** A labelled input (or textarea/select via `tag`). Returns {row, input}. */
export function field(label, attrs = {}, tag = "input") {
  const id = attrs.id || `f${++ids}`;
  const input = h(tag, { ...attrs, id });
  const hint = attrs.hint ? h("small", { class: "hint", id: `${id}-hint` }, attrs.hint) : null;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  input.removeAttribute("hint");
  const row = h("div", { class: "field" }, h("label", { for: id }, label), input, hint);
  return { row, input };
}

/** A status line (aria-live) showing progress, then the result or the error. */
export function status() {
  const el = h("div", { class: "status", role: "status", "aria-live": "polite" });
  return {
    el,
    busy(text) {
      el.className = "status busy";
      fill(el, h("span", { class: "spinner", "aria-hidden": "true" }), text);
    },
    ok(text) {
      el.className = "status ok";
      fill(el, "✓ ", text);
    },
    error(err) {
      el.className = "status error";
      fill(el, errorContent(err));
    },
    clear() {
      el.className = "status";
      fill(el);
    },
  };
}

/** The server's message and logId, and a list of names from `data` when it has one. */
export function errorContent(err) {
  const parts = [h("strong", {}, "Error: "), err.message || String(err)];
  const data = err.data || {};
  for (const key of ["users", "groups"]) {
    if (Array.isArray(data[key]) && data[key].length) {
      parts.push(h("ul", { class: "names" }, data[key].map((n) => h("li", {}, String(n)))));
    }
  }
  if (err.logId) parts.push(" ", h("span", { class: "logid" }, `logId ${err.logId}`));
  return parts;
}

/**
 * Runs `work` with a progress message on `st` (a status()); on success shows `done`
 * (a string, or a function of the result), on failure the error. Disables `button`
 * meanwhile. Resolves to the result, or undefined on failure.
 */
export async function act(st, busyText, work, done, button) {
  st.busy(busyText);
  if (button) button.disabled = true;
  try {
    const result = await work();
    const text = typeof done === "function" ? done(result) : done;
    if (text) st.ok(text);
    else st.clear();
    return result;
  } catch (err) {
    st.error(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Badges for a user's state, each with its text (never colour alone). */
export function badges(user) {
  const s = user.status || {};
  const out = [];
  const expired = user.expiry && Date.parse(user.expiry) <= Date.now();
  if (s.suspended) out.push(["suspended", "Suspended"]);
  if (s.locked) out.push(["locked", "Locked"]);
  if (s.passwordResetRequired) out.push(["reset", "Must reset"]);
  if (expired) out.push(["expired", "Expired"]);
  if (!out.length && s.active) out.push(["active", "Active"]);
  return h("span", { class: "badges" }, out.map(([c, t]) => h("span", { class: `badge ${c}` }, t)));
}

/** A date and time in the browser's zone, or an em dash. */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A modal confirmation: resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const yes = h("button", { class: "danger", type: "button" }, confirmLabel);
    const no = h("button", { type: "button" }, "Cancel");
    const dlg = h(
      "dialog",
      { class: "dialog", "aria-labelledby": "dlg-title" },
      h("h2", { id: "dlg-title" }, title),
      h("p", {}, text),
      h("div", { class: "actions" }, no, yes),
    );
    const close = (v) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    yes.addEventListener("click", () => close(true));
    no.addEventListener("click", () => close(false));
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(false);
    });
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}

/**
 * A table. `cols`: [{label, key?, cell(row)}]; `sort`: {key, desc} with `onSort(key)`
 * makes headers with a key sortable buttons.
 */
export function table(cols, rows, opts = {}) {
  const head = h(
    "tr",
    {},
    cols.map((c) => {
      if (!c.key || !opts.onSort) return h("th", { scope: "col" }, c.label);
      const active = opts.sort && opts.sort.key === c.key;
      const dir = active ? (opts.sort.desc ? "descending" : "ascending") : "none";
      return h(
        "th",
        { scope: "col", "aria-sort": dir },
        h(
          "button",
          { type: "button", class: "sort", onclick: () => opts.onSort(c.key) },
          c.label,
          h("span", { class: "arrow", "aria-hidden": "true" }, active ? (opts.sort.desc ? " ▼" : " ▲") : ""),
        ),
      );
    }),
  );
  const body = rows.length
    ? rows.map((r) => h("tr", {}, cols.map((c) => h("td", { "data-label": c.label }, c.cell(r)))))
    : [h("tr", {}, h("td", { colspan: cols.length, class: "empty" }, opts.empty || "Nothing here."))];
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { class: opts.class || "" }, opts.caption ? h("caption", {}, opts.caption) : null, h("thead", {}, head), h("tbody", {}, body)),
  );
}

/** Previous / next buttons for a paged answer; `go(pageIndex)`. */
export function pager(page, go) {
  if (!page || page.pageCount <= 1) {
    return h("p", { class: "pager" }, `${page ? page.totalCount : 0} in all`);
  }
  const prev = h("button", { type: "button", onclick: () => go(page.pageIndex - 1) }, "‹ Previous");
  const next = h("button", { type: "button", onclick: () => go(page.pageIndex + 1) }, "Next ›");
  prev.disabled = page.pageIndex <= 0;
  next.disabled = page.pageIndex >= page.pageCount - 1;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    prev,
    h("span", {}, `Page ${page.pageIndex + 1} of ${page.pageCount} (${page.totalCount} in all)`),
    next,
  );
}

/** A link to a console page. */
export function link(hash, text) {
  return h("a", { href: `#${hash}` }, text);
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** The password policy as the server states it (spec §4), checked as you type. */
export function policyChecks(password, first, last) {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(password)).length;
  const lower = password.toLowerCase();
  const names = [first, last].filter((n) => n && n.length >= 3).map((n) => n.toLowerCase());
  return [
    ["At least 8 characters", password.length >= 8],
    ["Three of: lowercase, uppercase, digit, symbol", classes >= 3],
    ["Does not contain the first or last name", !names.some((n) => lower.includes(n))],
  ];
}

/** A live checklist bound to a password input (and optional name inputs). */
export function policyList(input, nameInputs = []) {
  const list = h("ul", { class: "policy", "aria-live": "polite" });
  const render = () => {
    const [first, last] = nameInputs.map((i) => (i ? i.value : ""));
    fill(
      list,
      policyChecks(input.value, first, last).map(([text, ok]) =>
        h("li", { class: ok ? "met" : "unmet" }, ok ? "✓ " : "✗ ", text, h("span", { class: "sr" }, ok ? " (met)" : " (not met)")),
      ),
    );
  };
  input.addEventListener("input", render);
  nameInputs.forEach((i) => i && i.addEventListener("input", render));
  render();
  return list;
}

/** Whether every rule of the policy is met. */
export function policyMet(password, first, last) {
  return policyChecks(password, first, last).every(([, ok]) => ok);
}
