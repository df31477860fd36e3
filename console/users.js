// Users: the searchable list, the user page, and a signed-in user's own profile.

import * as api from "./api.js";
import { h, fill, field, status, act, badges, when, confirmDialog, table, pager, link, section, policyList, policyMet } from "./ui.js";
import { loadGraph, groupPicker, pathDown } from "./groups.js";
import { recentEvents } from "./audit.js";

const PAGE_SIZE = 25;

/** The list: free text, ZenQL with the error position shown inline, sortable, paged. */
export function usersPage(ctx, state = { q: "", zenql: "", sort: { key: "username", desc: false }, page: 0 }) {
  document.title = "Users · gatehouse";
  const { main } = ctx;
  const q = field("Search", { type: "search", value: state.q, placeholder: "name, username or email", id: "user-q" });
  const zen = field("ZenQL filter", { value: state.zenql, placeholder: "e.g. status.locked = true and lastLogin < now(-30)", id: "user-zenql", class: "mono", spellcheck: "false" });
  const zenError = h("div", { id: "zenql-error", class: "zenql-error", "aria-live": "polite" });
  zen.input.setAttribute("aria-describedby", "zenql-error");
  const st = status();
  const results = h("div", { id: "user-results" });

  const load = async () => {
    lastError = null;
    fill(zenError);
    zen.input.removeAttribute("aria-invalid");
    const order = (state.sort.desc ? "-" : "") + state.sort.key;
    const page = await act(st, "Loading users…", () =>
      api.call("GET", "/users" + api.qs({ q: state.q, zenql: state.zenql, order, pageIndex: state.page, pageSize: PAGE_SIZE })),
    );
    if (!page) {
      const err = st.el.textContent;
      showZenqlError();
      return err;
    }
    fill(
      results,
      table(
        [
          { label: "Username", key: "username", cell: (u) => link(`/users/${u.id}`, u.username) },
          { label: "Email", key: "email", cell: (u) => u.email },
          { label: "First name", key: "firstName", cell: (u) => u.firstName || "" },
          { label: "Last name", key: "lastName", cell: (u) => u.lastName || "" },
          { label: "Status", cell: (u) => badges(u) },
          { label: "Last login", key: "lastLogin", cell: (u) => when(u.lastLogin) },
        ],
        page.items,
        {
          class: "users",
          caption: "Users",
          sort: state.sort,
          onSort: (key) => {
            state.sort = { key, desc: state.sort.key === key ? !state.sort.desc : false };
            state.page = 0;
            load();
          },
          empty: "No user matches.",
        },
      ),
      pager(page, (i) => {
        state.page = i;
        load();
      }),
    );
  };

  // A ZenQL parse error names the position: show the query with a marker under it.
  let lastError = null;
  const origError = st.error;
  st.error = (err) => {
    lastError = err;
    origError(err);
  };
  const showZenqlError = () => {
    const err = lastError;
    if (!err || !err.data || err.data.parameter !== "zenql") return;
    zen.input.setAttribute("aria-invalid", "true");
    const pos = Number.isInteger(err.data.position) ? err.data.position : null;
    const text = state.zenql;
    fill(
      zenError,
      h("p", { class: "error-text" }, err.message),
      pos === null
        ? null
        : h(
            "pre",
            { class: "caret", "aria-label": `Error at position ${pos}` },
            text.slice(0, pos),
            h("mark", {}, text.slice(pos, pos + 1) || " "),
            text.slice(pos + 1),
            "\n",
            " ".repeat(pos) + "^ here",
          ),
    );
  };

  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (e) => {
        e.preventDefault();
        state.q = q.input.value.trim();
        state.zenql = zen.input.value.trim();
        state.page = 0;
        load();
      },
    },
    q.row,
    zen.row,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "user-search" }, "Search")),
    zenError,
  );

  fill(main, h("h1", {}, "Users"), createUserForm(ctx), section("Find users", form, st.el, results));
  load();
}

/** Create a user, with the password policy checked as you type. */
function createUserForm(ctx) {
  const username = field("Username", { id: "new-username", hint: "Defaults to the email when empty.", autocomplete: "off" });
  const email = field("Email", { id: "new-email", type: "email", required: true, autocomplete: "off" });
  const first = field("First name", { id: "new-first", autocomplete: "off" });
  const last = field("Last name", { id: "new-last", autocomplete: "off" });
  const pass = field("Password", { id: "new-password", type: "password", autocomplete: "new-password", hint: "Optional: without one the user cannot sign in until a password is set." });
  const reset = h("input", { type: "checkbox", id: "new-reset" });
  const suspended = h("input", { type: "checkbox", id: "new-suspended" });
  const st = status();
  const submit = h("button", { type: "submit", class: "primary", id: "create-user" }, "Create user");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const pw = pass.input.value;
        if (pw && !policyMet(pw, first.input.value, last.input.value)) {
          st.error(new Error("The password does not meet the policy."));
          return;
        }
        const body = { email: email.input.value.trim() };
        if (username.input.value.trim()) body.username = username.input.value.trim();
        if (first.input.value.trim()) body.firstName = first.input.value.trim();
        if (last.input.value.trim()) body.lastName = last.input.value.trim();
        if (pw) body.credentials = { password: pw };
        const created = await act(
          st,
          "Creating the user…",
          () => api.call("POST", "/users" + api.qs({ forcePasswordReset: reset.checked || "", suspended: suspended.checked || "" }), body),
          (u) => `Created ${u.username}.`,
          submit,
        );
        if (created) ctx.go(`/users/${created.id}`);
      },
    },
    h("div", { class: "grid" }, username.row, email.row, first.row, last.row, pass.row),
    policyList(pass.input, [first.input, last.input]),
    h("div", { class: "checks" }, h("label", {}, reset, " Must set a new password at first sign-in"), h("label", {}, suspended, " Create suspended")),
    h("div", { class: "actions" }, submit),
    st.el,
  );
  return h("details", { class: "card" }, h("summary", { id: "new-user-toggle" }, "Create a user"), form);
}

/** One user: profile, custom properties, actions, groups, recent events. */
export async function userPage(ctx, id, flash) {
  const { main } = ctx;
  const top = status();
  fill(main, top.el);
  const user = await act(top, "Loading the user…", () => api.call("GET", `/users/${api.seg(id)}`));
  if (!user) return;
  document.title = `${user.username} · Users · gatehouse`;
  const reload = (message) => userPage(ctx, user.id, message);
  const heading = h("h1", { tabindex: "-1" }, user.username, " ", badges(user));
  const flashSt = status();
  if (flash) flashSt.ok(flash);
  fill(
    main,
    h("p", { class: "crumbs" }, link("/users", "Users"), " › ", user.username),
    heading,
    flashSt.el,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Last login"), h("dd", {}, when(user.lastLogin)),
      h("dt", {}, "Created"), h("dd", {}, when(user.created)),
      h("dt", {}, "Failed logins since last success"), h("dd", {}, String(user.failedLoginAttemptsSinceLastSuccess ?? 0)),
      h("dt", {}, "Account type"), h("dd", {}, user.credentials?.provider?.type || "—"),
      h("dt", {}, "Id"), h("dd", { class: "mono" }, user.id),
    ),
    actionsCard(ctx, user, reload),
    profileCard(user, reload, true),
    groupsCard(user, reload),
    recentEvents({ target: user.id }),
  );
  heading.focus();
}

function actionsCard(ctx, user, reload) {
  const st = status();
  const s = user.status || {};
  const action = (type, label, done) =>
    h(
      "button",
      {
        type: "button",
        id: `action-${type}`,
        onclick: async (e) => {
          const ok = await act(st, `${label}…`, () => api.call("POST", `/users/${user.id}/actions`, { type }).then(() => true), null, e.currentTarget);
          if (ok) reload(done);
        },
      },
      label,
    );
  const buttons = [
    s.suspended ? action("unsuspend", "Unsuspend", `Unsuspended ${user.username}.`) : action("suspend", "Suspend", `Suspended ${user.username}.`),
    s.locked ? action("unlock", "Unlock", `Unlocked ${user.username}.`) : null,
    action("forcePasswordReset", "Force password reset", `${user.username} must set a new password at the next sign-in.`),
    h(
      "button",
      {
        type: "button",
        class: "danger",
        id: "delete-user",
        onclick: async (e) => {
          if (!(await confirmDialog(`Delete ${user.username}?`, "The user, their memberships and tokens are deleted. This cannot be undone."))) return;
          const ok = await act(st, "Deleting…", () => api.call("DELETE", `/users/${user.id}`).then(() => true), null, e.currentTarget);
          if (ok) ctx.go("/users");
        },
      },
      "Delete user",
    ),
  ];
  const pw = field("New password", { type: "password", autocomplete: "new-password", id: "set-password" });
  const pwSt = status();
  const pwButton = h("button", { type: "submit" }, "Set password");
  const pwForm = h(
    "form",
    {
      class: "inline",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!policyMet(pw.input.value, user.firstName, user.lastName)) {
          pwSt.error(new Error("The password does not meet the policy."));
          return;
        }
        const ok = await act(pwSt, "Setting the password…", () => api.call("POST", `/users/${user.id}/credentials/password`, { new: pw.input.value }).then(() => true), "Password set.", pwButton);
        if (ok) pw.input.value = "";
      },
    },
    hiddenUsername(user.username),
    pw.row,
    pwButton,
  );
  return section(
    "Actions",
    h("div", { class: "actions" }, buttons),
    st.el,
    h("h3", {}, "Set a password"),
    pwForm,
    policyList(pw.input, [{ value: user.firstName || "", addEventListener() {} }, { value: user.lastName || "", addEventListener() {} }]),
    pwSt.el,
  );
}

/** Profile fields and custom properties; `admin` adds the fields only admins may set. */
function profileCard(user, reload, admin) {
  const f = {
    username: field("Username", { value: user.username, autocomplete: "off" }),
    email: field("Email", { type: "email", value: user.email, autocomplete: "off" }),
    firstName: field("First name", { value: user.firstName || "", autocomplete: "off" }),
    lastName: field("Last name", { value: user.lastName || "", autocomplete: "off" }),
    timezone: field("Time zone", { value: user.timezone || "", autocomplete: "off" }),
    language: field("Language", { value: user.language || "", autocomplete: "off" }),
  };
  if (admin) f.expiry = field("Expiry (RFC 3339, empty for none)", { value: user.expiry || "", placeholder: "2030-01-01T00:00:00Z", autocomplete: "off" });
  const custom = field("Custom properties (JSON object)", { class: "mono", rows: 4, spellcheck: "false" }, "textarea");
  custom.input.value = JSON.stringify(user.custom || {}, null, 2);
  const st = status();
  const save = h("button", { type: "submit", class: "primary" }, "Save profile");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        let customValue;
        try {
          customValue = JSON.parse(custom.input.value || "{}");
          if (typeof customValue !== "object" || customValue === null || Array.isArray(customValue)) throw new Error();
        } catch {
          st.error(new Error("Custom properties must be a JSON object."));
          custom.input.focus();
          return;
        }
        // A merge patch of what changed; a removed custom key is sent as null.
        const patch = {};
        for (const [k, { input }] of Object.entries(f)) {
          const now = input.value.trim();
          const before = user[k] || "";
          if (now !== before) patch[k] = now === "" && (k === "expiry" || k === "firstName" || k === "lastName" || k === "timezone" || k === "language") ? null : now;
        }
        const oldCustom = user.custom || {};
        const customPatch = {};
        for (const k of Object.keys(oldCustom)) if (!(k in customValue)) customPatch[k] = null;
        for (const [k, v] of Object.entries(customValue)) if (JSON.stringify(v) !== JSON.stringify(oldCustom[k])) customPatch[k] = v;
        if (Object.keys(customPatch).length) patch.custom = customPatch;
        if (!Object.keys(patch).length) {
          st.ok("Nothing changed.");
          return;
        }
        const saved = await act(st, "Saving…", () => api.call("PATCH", `/users/${user.id}`, patch), null, save);
        if (saved) reload("Profile saved.");
      },
    },
    h("div", { class: "grid" }, Object.values(f).map((x) => x.row)),
    custom.row,
    h("div", { class: "actions" }, save),
    st.el,
  );
  return section("Profile", form);
}

/** Direct groups (removable), inherited groups with the path that grants each, add. */
function groupsCard(user, reload) {
  const st = status();
  const body = h("div", {}, h("p", {}, "Loading groups…"));
  const card = section("Groups", st.el, body);
  (async () => {
    const data = await act(st, "Loading groups…", async () => {
      const [direct, every, graph] = await Promise.all([
        api.all(`/users/${user.id}/groups`),
        api.all(`/users/${user.id}/groups`, { includeInherited: true }),
        loadGraph(),
      ]);
      return { direct: direct.items, every: every.items, graph };
    });
    if (!data) return fill(body);
    const directIds = new Set(data.direct.map((g) => g.id));
    const inherited = data.every.filter((g) => !directIds.has(g.id));
    const removeSt = status();
    const picker = groupPicker("Add to group", "add-group");
    const addSt = status();
    const addButton = h("button", { type: "submit" }, "Add");
    fill(
      body,
      table(
        [
          { label: "Group", cell: (g) => link(`/groups/${g.id}`, g.name) },
          { label: "Type", cell: (g) => g.type },
          {
            label: "",
            cell: (g) =>
              h(
                "button",
                {
                  type: "button",
                  class: "small",
                  "aria-label": `Remove from ${g.name}`,
                  onclick: async (e) => {
                    const ok = await act(removeSt, `Removing from ${g.name}…`, () => api.call("DELETE", `/groups/${g.id}/users/${user.id}`).then(() => true), null, e.currentTarget);
                    if (ok) reload(`Removed from ${g.name}.`);
                  },
                },
                "Remove",
              ),
          },
        ],
        data.direct,
        { caption: "Direct groups", empty: "Not a direct member of any group.", class: "direct-groups" },
      ),
      removeSt.el,
      table(
        [
          { label: "Group", cell: (g) => link(`/groups/${g.id}`, g.name) },
          {
            label: "Granted through",
            cell: (g) => {
              const path = pathDown(data.graph, g.id, directIds);
              return path ? h("span", { class: "path" }, path.map((id) => data.graph.byId.get(id)?.name || id).join(" › ")) : "—";
            },
          },
        ],
        inherited,
        { caption: "Inherited groups (through child groups)", empty: "No inherited groups.", class: "inherited-groups" },
      ),
      h(
        "form",
        {
          class: "inline",
          onsubmit: async (e) => {
            e.preventDefault();
            const name = picker.input.value.trim();
            if (!name) return;
            const ok = await act(addSt, `Adding to ${name}…`, () => api.call("PUT", `/groups/${api.seg(name)}/users/${user.id}`).then(() => true), null, addButton);
            if (ok) reload(`Added to ${name}.`);
          },
        },
        picker.row,
        addButton,
      ),
      addSt.el,
    );
  })();
  return card;
}

/** The account a password form is for, for password managers (hidden). */
function hiddenUsername(name) {
  return h("input", { type: "text", autocomplete: "username", value: name, hidden: true, readonly: true, tabindex: "-1", "aria-hidden": "true" });
}

/** A signed-in user's own page: profile, groups, password. All a non-admin can reach. */
export async function mePage(ctx, flash) {
  const { main } = ctx;
  document.title = "My profile · gatehouse";
  const top = status();
  fill(main, top.el);
  const me = await act(top, "Loading your profile…", () => api.call("GET", "/users/@current"));
  if (!me) return;
  ctx.session.me = me;
  const reload = (message) => mePage(ctx, message);
  const flashSt = status();
  if (flash) flashSt.ok(flash);
  const groupsBody = h("div", {}, "Loading…");
  const gst = status();
  fill(
    main,
    h("h1", { tabindex: "-1" }, "My profile: ", me.username, " ", badges(me)),
    flashSt.el,
    profileCard(me, reload, false),
    section("My groups", gst.el, groupsBody),
    passwordCard(ctx, me),
  );
  const groups = await act(gst, "Loading your groups…", async () => {
    const [direct, every] = await Promise.all([api.all("/users/@current/groups"), api.all("/users/@current/groups", { includeInherited: true })]);
    return { direct: direct.items, every: every.items };
  });
  if (!groups) return fill(groupsBody);
  const directIds = new Set(groups.direct.map((g) => g.id));
  fill(
    groupsBody,
    table(
      [
        { label: "Group", cell: (g) => g.name },
        { label: "Membership", cell: (g) => (directIds.has(g.id) ? "Direct" : "Inherited (through a child group)") },
      ],
      groups.every,
      { caption: "Groups you belong to", empty: "You are in no group.", class: "my-groups" },
    ),
  );
}

function passwordCard(ctx, me) {
  const existing = field("Current password", { type: "password", autocomplete: "current-password", id: "my-existing" });
  const neu = field("New password", { type: "password", autocomplete: "new-password", id: "my-new" });
  const st = status();
  const submit = h("button", { type: "submit", class: "primary", id: "change-password" }, "Change password");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        if (!policyMet(neu.input.value, me.firstName, me.lastName)) {
          st.error(new Error("The new password does not meet the policy."));
          return;
        }
        const pw = neu.input.value;
        const ok = await act(
          st,
          "Changing your password…",
          async () => {
            await api.call("POST", "/users/@current/credentials/password", { existing: existing.input.value, new: pw });
            // A password change ends the tokens issued before it: sign in again.
            await api.signIn(me.username, pw);
            return true;
          },
          "Password changed.",
          submit,
        );
        if (ok) {
          existing.input.value = "";
          neu.input.value = "";
        }
      },
    },
    hiddenUsername(me.username),
    existing.row,
    neu.row,
    policyList(neu.input, [{ value: me.firstName || "", addEventListener() {} }, { value: me.lastName || "", addEventListener() {} }]),
    h("div", { class: "actions" }, submit),
    st.el,
  );
  return section("Change my password", form);
}
