// Groups: the list, the group page (members, nesting both ways, bulk add), and the
// group graph the console reads to show parents and paths.

import * as api from "./api.js";
import { h, fill, field, status, act, when, confirmDialog, table, pager, link, section, badges } from "./ui.js";
import { recentEvents } from "./audit.js";

const PAGE_SIZE = 25;
/** The most parent groups whose children are read to draw the graph. */
const MAX_PARENTS = 500;
/** The most groups read to draw the graph. */
const MAX_GROUPS = 20000;

/**
 * The nesting graph: every group, and the children of each group that has any. The API
 * has no "parents of a group" endpoint, so the console reads the child lists of the
 * groups whose childGroupCount is not zero (usually few) and inverts them.
 */
export async function loadGraph() {
  const groups = await api.all("/groups", {}, MAX_GROUPS);
  const byId = new Map(groups.items.map((g) => [g.id, g]));
  const children = new Map();
  const parents = new Map();
  const withChildren = groups.items.filter((g) => g.childGroupCount > 0).slice(0, MAX_PARENTS);
  const queue = [...withChildren];
  const worker = async () => {
    while (queue.length) {
      const p = queue.shift();
      const r = await api.all(`/groups/${p.id}/groups`);
      children.set(p.id, r.items.map((c) => c.id));
      for (const c of r.items) {
        if (!byId.has(c.id)) byId.set(c.id, c);
        if (!parents.has(c.id)) parents.set(c.id, []);
        parents.get(c.id).push(p.id);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const truncated =
    groups.items.length < groups.totalCount || groups.items.filter((g) => g.childGroupCount > 0).length > MAX_PARENTS;
  return { byId, children, parents, truncated };
}

/** The shortest path from group `from` down to any group in `targets` (ids), or null. */
export function pathDown(graph, from, targets) {
  const prev = new Map([[from, null]]);
  const queue = [from];
  while (queue.length) {
    const g = queue.shift();
    if (targets.has(g) && g !== from) {
      const path = [];
      for (let x = g; x !== null; x = prev.get(x)) path.unshift(x);
      return path;
    }
    for (const c of graph.children.get(g) || []) {
      if (!prev.has(c)) {
        prev.set(c, g);
        queue.push(c);
      }
    }
  }
  return null;
}

/** A text input with type-ahead of group names (a datalist filled as you type). */
export function groupPicker(label, id) {
  const listId = `${id}-list`;
  const f = field(label, { id, list: listId, autocomplete: "off", placeholder: "Group name" });
  const list = h("datalist", { id: listId });
  let timer = null;
  f.input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = f.input.value.trim();
    timer = setTimeout(async () => {
      try {
        const r = await api.call("GET", "/groups" + api.qs({ q, pageSize: 10 }));
        fill(list, r.items.map((g) => h("option", { value: g.name })));
      } catch {
        fill(list);
      }
    }, 150);
  });
  f.row.append(list);
  return f;
}

export function groupsPage(ctx, state = { q: "", sort: { key: "name", desc: false }, page: 0 }) {
  document.title = "Groups · gatehouse";
  const { main } = ctx;
  const q = field("Search", { type: "search", value: state.q, placeholder: "group name", id: "group-q" });
  const st = status();
  const results = h("div", { id: "group-results" });
  const load = async () => {
    const order = (state.sort.desc ? "-" : "") + state.sort.key;
    const page = await act(st, "Loading groups…", () => api.call("GET", "/groups" + api.qs({ q: state.q, order, pageIndex: state.page, pageSize: PAGE_SIZE })));
    if (!page) return;
    fill(
      results,
      table(
        [
          { label: "Name", key: "name", cell: (g) => link(`/groups/${g.id}`, g.name) },
          { label: "Type", cell: (g) => g.type },
          { label: "Members", cell: (g) => String(g.userCount) },
          { label: "Child groups", cell: (g) => String(g.childGroupCount) },
          { label: "Created", key: "created", cell: (g) => when(g.created) },
        ],
        page.items,
        {
          caption: "Groups",
          sort: state.sort,
          onSort: (key) => {
            state.sort = { key, desc: state.sort.key === key ? !state.sort.desc : false };
            load();
          },
          empty: "No group matches.",
        },
      ),
      pager(page, (i) => {
        state.page = i;
        load();
      }),
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
        state.page = 0;
        load();
      },
    },
    q.row,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search")),
  );
  fill(main, h("h1", {}, "Groups"), createGroupForm(ctx), section("Find groups", form, st.el, results));
  load();
}

function createGroupForm(ctx) {
  const name = field("Name", { id: "new-group-name", required: true, autocomplete: "off" });
  const desc = field("Description", { id: "new-group-description", autocomplete: "off" });
  const st = status();
  const submit = h("button", { type: "submit", class: "primary", id: "create-group" }, "Create group");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { name: name.input.value.trim() };
        if (desc.input.value.trim()) body.description = desc.input.value.trim();
        const g = await act(st, "Creating the group…", () => api.call("POST", "/groups", body), (g) => `Created ${g.name}.`, submit);
        if (g) ctx.go(`/groups/${g.id}`);
      },
    },
    h("div", { class: "grid" }, name.row, desc.row),
    h("div", { class: "actions" }, submit),
    st.el,
  );
  return h("details", { class: "card" }, h("summary", { id: "new-group-toggle" }, "Create a group"), form);
}

export async function groupPage(ctx, id, flash) {
  const { main } = ctx;
  const top = status();
  fill(main, top.el);
  const group = await act(top, "Loading the group…", () => api.call("GET", `/groups/${api.seg(id)}`));
  if (!group) return;
  document.title = `${group.name} · Groups · gatehouse`;
  const reload = (message) => groupPage(ctx, group.id, message);
  const flashSt = status();
  if (flash) flashSt.ok(flash);
  const heading = h("h1", { tabindex: "-1" }, group.name, " ", h("span", { class: "badge type" }, group.type));
  fill(
    main,
    h("p", { class: "crumbs" }, link("/groups", "Groups"), " › ", group.name),
    heading,
    flashSt.el,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Direct members"), h("dd", {}, String(group.userCount)),
      h("dt", {}, "Child groups"), h("dd", {}, String(group.childGroupCount)),
      h("dt", {}, "Created"), h("dd", {}, when(group.created)),
      h("dt", {}, "Id"), h("dd", { class: "mono" }, group.id),
    ),
    editGroupCard(ctx, group, reload),
    membersCard(group, reload),
    nestingCard(group, reload),
    recentEvents({ target: group.id }),
  );
  heading.focus();
}

function editGroupCard(ctx, group, reload) {
  const name = field("Name", { value: group.name, autocomplete: "off" });
  const desc = field("Description", { value: group.description || "", autocomplete: "off" });
  const st = status();
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const del = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async (e) => {
        if (!(await confirmDialog(`Delete ${group.name}?`, "Its memberships and child links go with it; the users stay."))) return;
        const ok = await act(st, "Deleting…", () => api.call("DELETE", `/groups/${group.id}`).then(() => true), null, e.currentTarget);
        if (ok) ctx.go("/groups");
      },
    },
    "Delete group",
  );
  if (group.type === "sys") del.disabled = true;
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await act(st, "Saving…", () => api.call("PUT", `/groups/${group.id}`, { name: name.input.value.trim(), description: desc.input.value.trim() }), null, save);
        if (ok) reload("Group saved.");
      },
    },
    h("div", { class: "grid" }, name.row, desc.row),
    h("div", { class: "actions" }, save, del),
    st.el,
  );
  return section("Details", form);
}

/** Direct members (removable), inherited members, and adding several at once. */
function membersCard(group, reload) {
  const st = status();
  const body = h("div", {});
  const lines = field("Add users (usernames or emails, one per line)", { id: "add-members", rows: 4, spellcheck: "false", class: "mono" }, "textarea");
  const addSt = status();
  const add = h("button", { type: "submit", id: "add-members-button" }, "Add all");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const names = [...new Set(lines.input.value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean))];
        if (!names.length) return;
        // The API resolves every name first and adds none if one is missing; the
        // error's data names every missing one.
        const ok = await act(
          addSt,
          `Adding ${names.length} user${names.length > 1 ? "s" : ""}…`,
          () => api.call("POST", `/groups/${group.id}/users`, names).then(() => true),
          null,
          add,
        );
        if (ok) reload(`Added ${names.join(", ")}.`);
      },
    },
    lines.row,
    h("p", { class: "hint" }, "All or nothing: if any name is not found, nobody is added and the missing names are listed."),
    h("div", { class: "actions" }, add),
    addSt.el,
  );
  (async () => {
    const data = await act(st, "Loading members…", async () => {
      const [direct, every] = await Promise.all([
        api.all(`/groups/${group.id}/users`),
        api.all(`/groups/${group.id}/users`, { includeInherited: true }),
      ]);
      return { direct: direct.items, every: every.items };
    });
    if (!data) return;
    const directIds = new Set(data.direct.map((u) => u.id));
    const removeSt = status();
    fill(
      body,
      table(
        [
          { label: "User", cell: (u) => link(`/users/${u.id}`, u.username) },
          { label: "Email", cell: (u) => u.email },
          { label: "Status", cell: (u) => badges(u) },
          {
            label: "",
            cell: (u) =>
              h(
                "button",
                {
                  type: "button",
                  class: "small",
                  "aria-label": `Remove ${u.username}`,
                  onclick: async (e) => {
                    const ok = await act(removeSt, `Removing ${u.username}…`, () => api.call("DELETE", `/groups/${group.id}/users/${u.id}`).then(() => true), null, e.currentTarget);
                    if (ok) reload(`Removed ${u.username}.`);
                  },
                },
                "Remove",
              ),
          },
        ],
        data.direct,
        { caption: "Direct members", empty: "No direct members.", class: "direct-members" },
      ),
      removeSt.el,
      table(
        [
          { label: "User", cell: (u) => link(`/users/${u.id}`, u.username) },
          { label: "Email", cell: (u) => u.email },
          { label: "Status", cell: (u) => badges(u) },
        ],
        data.every.filter((u) => !directIds.has(u.id)),
        { caption: "Inherited members (members of child groups)", empty: "No inherited members.", class: "inherited-members" },
      ),
    );
  })();
  return section("Members", st.el, body, form);
}

/** Parents, children, and the nesting around the group both ways as indented trees. */
function nestingCard(group, reload) {
  const st = status();
  const body = h("div", {});
  const picker = groupPicker("Add a child group", "add-child");
  const addSt = status();
  const add = h("button", { type: "submit" }, "Add child");
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (e) => {
        e.preventDefault();
        const name = picker.input.value.trim();
        if (!name) return;
        const ok = await act(
          addSt,
          `Adding ${name} as a child…`,
          async () => {
            try {
              await api.call("PUT", `/groups/${group.id}/groups/${api.seg(name)}`);
            } catch (err) {
              if (err.status === 409) {
                err.message = `${err.message} A group may never contain itself: ${name} is ${group.name} or already contains it (directly or through its child groups), so it cannot also be below it.`;
              }
              throw err;
            }
            return true;
          },
          null,
          add,
        );
        if (ok) reload(`Added ${name} as a child group.`);
      },
    },
    picker.row,
    add,
  );
  (async () => {
    const graph = await act(st, "Loading the nesting…", () => loadGraph());
    if (!graph) return;
    const name = (id) => graph.byId.get(id)?.name || id;
    const parents = graph.parents.get(group.id) || [];
    const children = graph.children.get(group.id) || [];
    const removeSt = status();
    const tree = (id, next, seen) => {
      const kids = (next.get(id) || []).filter((k) => !seen.has(k));
      if (!kids.length) return null;
      return h(
        "ul",
        {},
        kids.map((k) => h("li", {}, link(`/groups/${k}`, name(k)), tree(k, next, new Set([...seen, k])))),
      );
    };
    fill(
      body,
      graph.truncated ? h("p", { class: "hint" }, `The directory is too large to read whole (more than ${MAX_GROUPS} groups, or ${MAX_PARENTS} with children): the nesting shown may be incomplete.`) : null,
      h("h3", {}, "Parents"),
      parents.length ? h("ul", { class: "plain parents" }, parents.map((p) => h("li", {}, link(`/groups/${p}`, name(p))))) : h("p", {}, "No parent groups."),
      table(
        [
          { label: "Group", cell: (id) => link(`/groups/${id}`, name(id)) },
          {
            label: "",
            cell: (id) =>
              h(
                "button",
                {
                  type: "button",
                  class: "small",
                  "aria-label": `Remove child ${name(id)}`,
                  onclick: async (e) => {
                    const ok = await act(removeSt, `Removing ${name(id)}…`, () => api.call("DELETE", `/groups/${group.id}/groups/${id}`).then(() => true), null, e.currentTarget);
                    if (ok) reload(`Removed child group ${name(id)}.`);
                  },
                },
                "Remove",
              ),
          },
        ],
        children,
        { caption: "Direct child groups", empty: "No child groups.", class: "child-groups" },
      ),
      removeSt.el,
      h(
        "div",
        { class: "trees" },
        h(
          "figure",
          { class: "tree above" },
          h("figcaption", {}, "Above (groups that contain it)"),
          h("ul", {}, h("li", {}, h("strong", {}, group.name), tree(group.id, graph.parents, new Set([group.id])) || h("p", { class: "hint" }, "Nothing above."))),
        ),
        h(
          "figure",
          { class: "tree below" },
          h("figcaption", {}, "Below (groups it contains)"),
          h("ul", {}, h("li", {}, h("strong", {}, group.name), tree(group.id, graph.children, new Set([group.id])) || h("p", { class: "hint" }, "Nothing below."))),
        ),
      ),
    );
  })();
  return section("Nesting", st.el, body, form, addSt.el);
}
