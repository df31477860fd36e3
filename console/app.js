// The console's shell: sign-in, the must-reset form, navigation and the hash router.
// Pages: #/users, #/users/<id>, #/groups, #/groups/<id>, #/keys, #/audit, #/me.

import * as api from "./api.js";
import { h, fill, field, status, act, policyList, policyMet, section } from "./ui.js";
import { usersPage, userPage, mePage } from "./users.js";
import { groupsPage, groupPage } from "./groups.js";
import { keysPage } from "./keys.js";
import { auditPage } from "./audit.js";

const root = document.getElementById("app");
export const session = { me: null, admin: false };

api.whenExpired(() => {
  session.me = null;
  signInView("Your session has ended; sign in again.");
});

function signInView(notice) {
  document.title = "Sign in · gatehouse";
  const user = field("Username or email", { autocomplete: "username", required: true, name: "username" });
  const pass = field("Password", { type: "password", autocomplete: "current-password", required: true, name: "password" });
  const st = status();
  if (notice) st.ok(notice);
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "signin-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await act(st, "Signing in…", () => api.signIn(user.input.value.trim(), pass.input.value), null, submit);
        if (ok !== undefined || api.signedIn()) {
          pass.input.value = "";
          await start();
        }
      },
    },
    h("h1", { id: "signin-title" }, "Sign in to gatehouse"),
    user.row,
    pass.row,
    h("div", { class: "actions" }, submit),
    st.el,
    h("p", {}, h("button", { type: "button", class: "linkish", id: "reset-link", onclick: () => resetView(user.input.value) }, "My password must be reset: set a new one")),
  );
  fill(root, h("main", { class: "signin", id: "main" }, form));
  user.input.focus();
}

/** A user whose password must be reset sets a new one by proving the current one. */
function resetView(username) {
  document.title = "Set a new password · gatehouse";
  const user = field("Username or email", { autocomplete: "username", required: true, value: username || "" });
  const old = field("Current password", { type: "password", autocomplete: "current-password", required: true });
  const neu = field("New password", { type: "password", autocomplete: "new-password", required: true });
  const st = status();
  const submit = h("button", { type: "submit", class: "primary" }, "Set password and sign in");
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "reset-title",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!policyMet(neu.input.value)) {
          st.error(new Error("The new password does not meet the policy."));
          return;
        }
        const name = user.input.value.trim();
        const done = await act(
          st,
          "Setting the new password…",
          async () => {
            await api.call("POST", `/users/${api.seg(name)}/credentials/password`, { existing: old.input.value, new: neu.input.value }, { anonymous: true });
            await api.signIn(name, neu.input.value);
            return true;
          },
          "Password changed.",
          submit,
        );
        if (done) await start();
      },
    },
    h("h1", { id: "reset-title" }, "Set a new password"),
    h("p", {}, "If your password must be reset, prove the current one and choose a new one."),
    user.row,
    old.row,
    neu.row,
    policyList(neu.input),
    h("div", { class: "actions" }, submit, h("button", { type: "button", onclick: () => signInView() }, "Back to sign-in")),
    st.el,
  );
  fill(root, h("main", { class: "signin", id: "main" }, form));
  (username ? old : user).input.focus();
}

/** After sign-in: who am I, am I an administrator, then the page the hash names. */
async function start() {
  const st = status();
  fill(root, h("main", { id: "main" }, st.el));
  const ok = await act(st, "Loading your profile…", async () => {
    session.me = await api.call("GET", "/users/@current");
    const groups = await api.call("GET", "/users/@current/groups?includeInherited=true&pageSize=1000");
    session.admin = groups.items.some((g) => g.type === "sys");
    return true;
  });
  if (!ok) return;
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    location.hash = session.admin ? "#/users" : "#/me";
  }
  route();
}

function nav() {
  const items = session.admin
    ? [["#/users", "Users"], ["#/groups", "Groups"], ["#/keys", "API keys"], ["#/audit", "Audit"], ["#/me", "My profile"]]
    : [["#/me", "My profile"]];
  const current = location.hash.split("/").slice(0, 2).join("/");
  const out = h("button", { type: "button", id: "sign-out", onclick: signOut }, "Sign out");
  return h(
    "header",
    { class: "top" },
    h("a", { class: "skip", href: "#main", onclick: (e) => { e.preventDefault(); document.getElementById("main").focus(); } }, "Skip to content"),
    h("span", { class: "brand" }, "gatehouse"),
    h(
      "nav",
      { "aria-label": "Main" },
      h(
        "ul",
        {},
        items.map(([href, text]) =>
          h(
            "li",
            {},
            h(
              "a",
              {
                href,
                "aria-current": current === href ? "page" : null,
                // The page one is on: read it again (no hashchange would fire).
                onclick: (e) => {
                  if (location.hash === href) {
                    e.preventDefault();
                    route();
                  }
                },
              },
              text,
            ),
          ),
        ),
      ),
    ),
    h("span", { class: "who" }, session.me.username, session.admin ? " (administrator)" : ""),
    out,
  );
}

async function signOut() {
  const st = status();
  fill(root, h("main", { id: "main" }, st.el));
  await act(st, "Signing out…", () => api.signOut(), "Signed out.");
  session.me = null;
  history.replaceState(null, "", location.pathname);
  signInView("Signed out.");
}

function route() {
  if (!session.me) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const main = h("main", { id: "main", tabindex: "-1" });
  fill(root, nav(), main);
  let page = parts[0];
  if (!session.admin && page !== "me") {
    page = "me";
    history.replaceState(null, "", "#/me");
    fill(root, nav(), main);
  }
  const ctx = { main, session, go: (hash) => (location.hash = hash) };
  switch (page) {
    case "users":
      return parts[1] ? userPage(ctx, parts[1]) : usersPage(ctx);
    case "groups":
      return parts[1] ? groupPage(ctx, parts[1]) : groupsPage(ctx);
    case "keys":
      return keysPage(ctx);
    case "audit":
      return auditPage(ctx);
    case "me":
      return mePage(ctx);
    default:
      fill(main, section("Not found", h("p", {}, "There is no such page.")));
  }
}

window.addEventListener("hashchange", route);
signInView();
