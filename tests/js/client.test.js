'use strict';
// Drives a running gatehouse through the OFFICIAL npm client `contensis-management-api`
// (pinned in package.json / package-lock.json), the way a Contensis user's code does:
// log in with clientType 'contensis_classic', then call client.security.users.* and
// client.security.groups.*. Every assertion is about what the client hands back.
//
// Needs GATEHOUSE_URL (e.g. http://127.0.0.1:8080) and GATEHOUSE_ADMIN_PASSWORD (the
// bootstrap `admin` user's password). tests/js/run.sh starts a fresh server and sets both.
// Every name is unique per run, so reruns against the same server do not collide.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('contensis-management-api');

const ROOT_URL = process.env.GATEHOUSE_URL;
const ADMIN_PASSWORD = process.env.GATEHOUSE_ADMIN_PASSWORD;
if (!ROOT_URL || !ADMIN_PASSWORD) {
  throw new Error(
    'Set GATEHOUSE_URL and GATEHOUSE_ADMIN_PASSWORD, or run the tests with tests/js/run.sh',
  );
}

/** A password that satisfies gatehouse's policy and contains no test user's name. */
const PASSWORD = 'Sturdy-Pass-42';
/** Makes this run's names unique: base-36 time plus a random tail. */
const RUN = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * A client logged in as `username` with the classic username + password grant.
 * On Node the fetch function must be passed explicitly (without it: `window is not defined`).
 */
function connect(username, password) {
  return Client.create(
    {
      rootUrl: ROOT_URL,
      projectId: 'website',
      clientType: 'contensis_classic',
      clientDetails: { username, password },
    },
    fetch,
  );
}

const admin = connect('admin', ADMIN_PASSWORD);
const users = admin.security.users;
const groups = admin.security.groups;

// Everything a test creates is deleted at the end (best effort), so a long-lived server
// does not fill up with test data.
const createdUsers = new Set();
const createdGroups = new Set();
after(async () => {
  for (const id of createdGroups) await groups.delete(id).catch(() => {});
  for (const id of createdUsers) await users.delete(id).catch(() => {});
});

let counter = 0;
/**
 * A fresh suffix for names in this run. Zero-padded so that no suffix is a substring of
 * another (the `q` searches below are "contains" searches).
 */
function unique() {
  counter += 1;
  return `${RUN}-${String(counter).padStart(4, '0')}`;
}

/** Creates a user through the client (unique username and email unless overridden). */
async function newUser(overrides = {}, suspended) {
  const n = unique();
  const user = {
    username: `js-user-${n}`,
    email: `js.user.${n}@example.com`,
    firstName: 'Marla',
    lastName: 'Singer',
    credentials: { password: PASSWORD },
    ...overrides,
  };
  const created = suspended === undefined ? await users.create(user) : await users.create(user, suspended);
  createdUsers.add(created.id);
  return created;
}

/** Creates a group through the client (unique name unless overridden). */
async function newGroup(overrides = {}) {
  const created = await groups.create({
    name: `JS Group ${unique()}`,
    description: 'Created by tests/js',
    ...overrides,
  });
  createdGroups.add(created.id);
  return created;
}

/** What `promise` rejected with; fails the test if it resolved. */
async function rejection(promise) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    return err;
  }
  assert.fail(`expected the call to reject, but it resolved with ${JSON.stringify(value)}`);
}

/**
 * Awaits a rejection of an HTTP call and checks it is the client's response context
 * ({status, statusText, url, data}) carrying gatehouse's error envelope.
 */
async function httpError(promise, status) {
  const err = await rejection(promise);
  assert.ok(!(err instanceof Error), `expected an HTTP error, got ${err && err.stack}`);
  assert.equal(err.status, status, `status of ${JSON.stringify(err)}`);
  assert.equal(typeof err.url, 'string');
  assert.equal(err.data.type, 'error');
  assert.match(err.data.logId, UUID);
  assert.equal(typeof err.data.message, 'string');
  assert.ok(err.data.message.length > 0, 'the error message is not empty');
  return err;
}

/** Checks the paged-list shape of spec §1. */
function assertPage(page, { pageIndex, pageSize }) {
  assert.equal(page.pageIndex, pageIndex);
  assert.equal(page.pageSize, pageSize);
  assert.ok(Number.isInteger(page.totalCount) && page.totalCount >= 0, 'totalCount');
  assert.equal(page.pageCount, Math.ceil(page.totalCount / pageSize));
  assert.ok(Array.isArray(page.items), 'items is an array');
  const expected = Math.max(0, Math.min(pageSize, page.totalCount - pageIndex * pageSize));
  assert.equal(page.items.length, expected, 'items holds this page');
}

/** Reads every page of a list call; `list(pageOptions)` returns one page. */
async function allPages(list, pageSize = 50) {
  const items = [];
  for (let pageIndex = 0; ; pageIndex += 1) {
    const page = await list({ pageIndex, pageSize });
    assertPage(page, { pageIndex, pageSize });
    items.push(...page.items);
    if (pageIndex + 1 >= page.pageCount) {
      assert.equal(items.length, page.totalCount, 'the pages add up to totalCount');
      return items;
    }
  }
}

const ids = (items) => items.map((x) => x.id).sort();

// ---------------------------------------------------------------------------------------
// Logging in
// ---------------------------------------------------------------------------------------

test('logs in with clientType contensis_classic as the bootstrap admin', async () => {
  const me = await users.getCurrent();
  assert.equal(me.username, 'admin');
  assert.equal(me.email, 'admin@localhost');
  assert.match(me.id, UUID);
  assert.ok(me.lastLogin === null || TIMESTAMP.test(me.lastLogin));
});

test('a wrong password makes calls reject, and the right one works', async () => {
  const user = await newUser();

  const wrong = connect(user.username, 'Wrong-Pass-42');
  const err = await rejection(wrong.security.users.getById(user.id));
  assert.ok(err instanceof Error, 'a failed login rejects with an Error');
  assert.equal(err.name, 'ContensisAuthenticationError');
  assert.equal(err.message, 'invalid_grant');

  // An unknown username fails the same way: the server does not reveal which users exist.
  const nobody = connect(`nobody-${unique()}`, 'Wrong-Pass-42');
  const err2 = await rejection(nobody.security.users.getCurrent());
  assert.ok(err2 instanceof Error);
  assert.equal(err2.message, 'invalid_grant');

  // The password given at creation logs in, by username and by email.
  for (const login of [user.username, user.email]) {
    const me = await connect(login, PASSWORD).security.users.getCurrent();
    assert.equal(me.id, user.id);
  }
});

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

test('users.create returns the new user with its server-assigned fields', async () => {
  const n = unique();
  const input = {
    username: `js-create-${n}`,
    email: `js.create.${n}@example.com`,
    firstName: 'Tyler',
    lastName: 'Durden',
    custom: { team: 'js', level: 3 },
    credentials: { password: PASSWORD },
  };
  const user = await users.create(input);
  createdUsers.add(user.id);

  assert.match(user.id, UUID);
  assert.equal(user.username, input.username);
  assert.equal(user.email, input.email);
  assert.equal(user.firstName, 'Tyler');
  assert.equal(user.lastName, 'Durden');
  assert.deepEqual(user.custom, { team: 'js', level: 3 });
  assert.deepEqual(user.status, {
    active: true,
    suspended: false,
    locked: false,
    passwordResetRequired: false,
  });
  assert.equal(user.credentials.provider.type, 'contensis');
  assert.equal(user.credentials.password, undefined, 'the password is never returned');
  assert.ok(!JSON.stringify(user).includes(PASSWORD), 'the password appears nowhere');
  assert.match(user.created, TIMESTAMP);
  assert.equal(user.modified, user.created);
  assert.match(user.passwordChanged, TIMESTAMP);
  assert.equal(user.lastLogin, null);
  assert.equal(user.expiry, null);
  assert.equal(user.failedLoginAttempts, 0);
  assert.equal(user.successfulLoginAttempts, 0);

  // A second user with the same username (in another case) is a conflict.
  const dup = await httpError(
    users.create({ ...input, username: input.username.toUpperCase(), email: `other.${n}@example.com` }),
    409,
  );
  assert.equal(dup.data.type, 'error');
});

test('users.create(user, true) creates a suspended user who cannot log in', async () => {
  const user = await newUser({}, true);
  assert.equal(user.status.suspended, true);
  assert.equal(user.status.active, false);
  const err = await rejection(connect(user.username, PASSWORD).security.users.getCurrent());
  assert.ok(err instanceof Error);
  assert.equal(err.message, 'invalid_grant');
});

test('users.getById returns the same user that create returned', async () => {
  const created = await newUser();
  const fetched = await users.getById(created.id);
  assert.deepEqual(fetched, created);
});

test('users.getByUsername finds the user, also with a space and in another case', async () => {
  const n = unique();
  const created = await newUser({ username: `js user ${n}` });
  const fetched = await users.getByUsername(`js user ${n}`);
  assert.equal(fetched.id, created.id);
  assert.deepEqual(fetched, created);
  const upper = await users.getByUsername(`JS USER ${n}`.toUpperCase());
  assert.equal(upper.id, created.id);
});

test('users.getByEmail finds the user, also with a plus sign in the address', async () => {
  const n = unique();
  const created = await newUser({ email: `js+${n}@example.com` });
  const fetched = await users.getByEmail(`js+${n}@example.com`);
  assert.equal(fetched.id, created.id);
  assert.equal(fetched.email, `js+${n}@example.com`);
  assert.deepEqual(fetched, created);
});

test('users.getById, getByUsername and getByEmail reject with 404 for unknown users', async () => {
  const n = unique();
  const missing = '00000000-0000-4000-8000-00000000beef';
  const byId = await httpError(users.getById(missing), 404);
  assert.deepEqual(byId.data.data, { user: missing }, 'data names the missing user');
  await httpError(users.getByUsername(`js-nobody-${n}`), 404);
  await httpError(users.getByEmail(`js.nobody.${n}@example.com`), 404);
});

test('users.list returns a paged list that contains the created user', async () => {
  const created = await newUser();

  const first = await users.list();
  assertPage(first, { pageIndex: 0, pageSize: 25 });
  assert.ok(first.totalCount >= 2, 'at least admin and the new user');

  const everyone = await allPages((pageOptions) => users.list({ pageOptions }));
  const found = everyone.find((u) => u.id === created.id);
  assert.ok(found, 'the new user is listed');
  assert.deepEqual(found, created);
  assert.ok(everyone.some((u) => u.username === 'admin'), 'admin is listed');
  assert.equal(new Set(ids(everyone)).size, everyone.length, 'no user is listed twice');
  const names = everyone.map((u) => u.username.toLowerCase());
  assert.deepEqual(names, [...names].sort(), 'the default order is by username');

  // q searches username, email, first and last name.
  const byQ = await users.list({ q: created.username.toUpperCase() });
  assert.deepEqual(ids(byQ.items), [created.id]);
  assert.equal(byQ.totalCount, 1);
});

test('users.update changes firstName and ignores read-only fields', async () => {
  const created = await newUser({ firstName: 'Robert', lastName: 'Paulson' });
  const before = await users.getById(created.id);

  // The documented usage: fetch, change, send the whole object back.
  const edited = JSON.parse(JSON.stringify(before));
  edited.firstName = 'Bob';
  // Read-only fields the server must ignore.
  edited.created = '2001-01-01T00:00:00.000Z';
  edited.modified = '2001-01-01T00:00:00.000Z';
  edited.status = { active: false, suspended: true, locked: true, passwordResetRequired: true };
  edited.credentials.provider = { type: 'apiKey', name: 'sneaky' };
  edited.failedLoginAttempts = 42;
  edited.successfulLoginAttempts = 42;
  edited.lastLogin = '2001-01-01T00:00:00.000Z';
  edited.passwordChanged = '2001-01-01T00:00:00.000Z';

  const updated = await users.update(edited);
  assert.equal(updated.id, created.id);
  assert.equal(updated.firstName, 'Bob');
  assert.equal(updated.lastName, 'Paulson');
  assert.equal(updated.username, before.username);
  assert.equal(updated.email, before.email);
  assert.equal(updated.created, before.created);
  assert.ok(updated.modified >= before.modified, 'modified moves forward');
  assert.deepEqual(updated.status, before.status);
  assert.deepEqual(updated.credentials, before.credentials);
  assert.equal(updated.failedLoginAttempts, before.failedLoginAttempts);
  assert.equal(updated.successfulLoginAttempts, before.successfulLoginAttempts);
  assert.equal(updated.lastLogin, before.lastLogin);
  assert.equal(updated.passwordChanged, before.passwordChanged);

  // The change is stored, not just echoed.
  const reread = await users.getById(created.id);
  assert.deepEqual(reread, updated);

  // Sending an unchanged object back is fine too.
  const again = await users.update(reread);
  assert.equal(again.firstName, 'Bob');
});

test('users.delete removes the user: getById then rejects with 404', async () => {
  const created = await newUser();
  const result = await users.delete(created.id);
  assert.deepEqual(result, {}, 'delete resolves with an empty object');
  createdUsers.delete(created.id);

  const err = await httpError(users.getById(created.id), 404);
  assert.deepEqual(err.data.data, { user: created.id }, 'data names the missing user');
  assert.ok(err.url.endsWith(`/api/security/users/${created.id}`));
  await httpError(users.getByUsername(created.username), 404);
  await httpError(users.delete(created.id), 404);

  const byQ = await users.list({ q: created.username });
  assert.equal(byQ.totalCount, 0);
  assert.deepEqual(byQ.items, []);

  // A deleted user cannot log in any more.
  const login = await rejection(connect(created.username, PASSWORD).security.users.getCurrent());
  assert.equal(login.message, 'invalid_grant');
});

// ---------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------

test('groups.create returns the new group', async () => {
  const name = `JS Create ${unique()}`;
  const group = await groups.create({ name, description: 'Soap makers' });
  createdGroups.add(group.id);
  assert.match(group.id, UUID);
  assert.equal(group.name, name);
  assert.equal(group.description, 'Soap makers');
  assert.equal(group.type, 'contensis');
  assert.equal(group.userCount, 0);
  assert.equal(group.childGroupCount, 0);
  assert.match(group.created, TIMESTAMP);

  // Group names are unique case-insensitively.
  await httpError(groups.create({ name: name.toLowerCase() }), 409);
});

test('groups.getByName finds a group whose name contains spaces', async () => {
  const name = `Paper Street Soap Company ${unique()}`;
  const created = await newGroup({ name });
  const fetched = await groups.getByName(name);
  assert.equal(fetched.id, created.id);
  assert.deepEqual(fetched, created);
  assert.deepEqual(await groups.getById(created.id), created);
});

test('groups.getByName round-trips names with "&" and "+"', async () => {
  const name = `JS Sales & Marketing + Ops ${unique()}`;
  const created = await newGroup({ name });
  const fetched = await groups.getByName(name);
  assert.equal(fetched.id, created.id);
  assert.equal(fetched.name, name);
});

test('groups.getByName rejects with 404 for an unknown group', async () => {
  const name = `JS No Such Group ${unique()}`;
  const err = await httpError(groups.getByName(name), 404);
  assert.deepEqual(err.data.data, { group: name });
});

test('groups.list returns a paged list that contains the created group', async () => {
  const created = await newGroup();

  const first = await groups.list();
  assertPage(first, { pageIndex: 0, pageSize: 25 });

  const all = await allPages((pageOptions) => groups.list({ pageOptions }));
  const found = all.find((g) => g.id === created.id);
  assert.ok(found, 'the new group is listed');
  assert.deepEqual(found, created);
  const sys = all.find((g) => g.name === 'System Administrators');
  assert.ok(sys, 'the built-in group is listed');
  assert.equal(sys.type, 'sys');

  const byQ = await groups.list({ q: created.name });
  assert.deepEqual(ids(byQ.items), [created.id]);
});

test('groups.update changes the description and ignores read-only fields', async () => {
  const created = await newGroup();
  const edited = { ...created, description: 'Changed', userCount: 99, childGroupCount: 7, type: 'external' };
  edited.created = '2001-01-01T00:00:00.000Z';
  const updated = await groups.update(edited);
  assert.equal(updated.id, created.id);
  assert.equal(updated.name, created.name);
  assert.equal(updated.description, 'Changed');
  assert.equal(updated.userCount, 0);
  assert.equal(updated.childGroupCount, 0);
  assert.equal(updated.type, 'contensis');
  assert.equal(updated.created, created.created);
  assert.deepEqual(await groups.getById(created.id), updated);
});

test('groups.addUser adds a user to a group', async () => {
  const group = await newGroup();
  const user = await newUser();
  const result = await groups.addUser(group.id, user.id);
  assert.deepEqual(result, {});
  assert.equal((await groups.getById(group.id)).userCount, 1);
  const members = await groups.getUsersByGroupId(group.id);
  assert.deepEqual(ids(members.items), [user.id]);

  // Adding again is harmless.
  await groups.addUser(group.id, user.id);
  assert.equal((await groups.getById(group.id)).userCount, 1);

  // Unknown users and groups are 404s.
  await httpError(groups.addUser(group.id, '00000000-0000-4000-8000-00000000beef'), 404);
  await httpError(groups.addUser('00000000-0000-4000-8000-00000000beef', user.id), 404);
});

test('groups.hasUser is true for a member and false otherwise', async () => {
  const group = await newGroup();
  const member = await newUser();
  const outsider = await newUser();
  await groups.addUser(group.id, member.id);

  assert.equal(await groups.hasUser(group.id, member.id), true);
  assert.equal(await groups.hasUser(group.id, outsider.id), false);
  assert.equal(await groups.hasUser(group.id, '00000000-0000-4000-8000-00000000beef'), false);
  // A group name works as well as its id.
  assert.equal(await groups.hasUser(group.name, member.id), true);
});

test('groups.removeUser removes a member: hasUser turns from true to false', async () => {
  const group = await newGroup();
  const user = await newUser();
  await groups.addUser(group.id, user.id);
  assert.equal(await groups.hasUser(group.id, user.id), true);

  const result = await groups.removeUser(group.id, user.id);
  assert.deepEqual(result, {});
  assert.equal(await groups.hasUser(group.id, user.id), false);
  assert.equal((await groups.getById(group.id)).userCount, 0);
  // The user still exists.
  assert.equal((await users.getById(user.id)).id, user.id);

  // Removing someone who is not a member is a conflict.
  await httpError(groups.removeUser(group.id, user.id), 409);
});

test('groups.addUsers adds several users at once', async () => {
  const group = await newGroup();
  const trio = [await newUser(), await newUser(), await newUser()];
  const result = await groups.addUsers(group.id, trio.map((u) => u.id));
  assert.deepEqual(result, {});
  for (const u of trio) {
    assert.equal(await groups.hasUser(group.id, u.id), true, `${u.username} is a member`);
  }
  assert.equal((await groups.getById(group.id)).userCount, 3);
});

test('groups.addUsers with an unknown id rejects with 404 and adds nobody', async () => {
  const group = await newGroup();
  const user = await newUser();
  const missing = '00000000-0000-4000-8000-00000000beef';
  const err = await httpError(groups.addUsers(group.id, [user.id, missing]), 404);
  assert.deepEqual(err.data.data, { users: [missing] });
  assert.equal(await groups.hasUser(group.id, user.id), false);
  assert.equal((await groups.getById(group.id)).userCount, 0);
});

test('groups.getUsersByGroupId lists the members, paged', async () => {
  const group = await newGroup();
  const outsider = await newUser();
  const trio = [await newUser(), await newUser(), await newUser()];
  await groups.addUsers(group.id, trio.map((u) => u.id));

  const page = await groups.getUsersByGroupId(group.id);
  assertPage(page, { pageIndex: 0, pageSize: 25 });
  assert.equal(page.totalCount, 3);
  assert.deepEqual(ids(page.items), ids(trio));
  assert.ok(!page.items.some((u) => u.id === outsider.id));
  for (const u of trio) {
    assert.deepEqual(page.items.find((m) => m.id === u.id), u, 'members are whole users');
  }

  const firstTwo = await groups.getUsersByGroupId(group.id, { pageOptions: { pageIndex: 0, pageSize: 2 } });
  assertPage(firstTwo, { pageIndex: 0, pageSize: 2 });
  assert.equal(firstTwo.pageCount, 2);
  const lastOne = await groups.getUsersByGroupId(group.id, { pageOptions: { pageIndex: 1, pageSize: 2 } });
  assertPage(lastOne, { pageIndex: 1, pageSize: 2 });
  assert.deepEqual(ids([...firstTwo.items, ...lastOne.items]), ids(trio));

  // An empty group lists nobody; an unknown group is a 404.
  const empty = await newGroup();
  const none = await groups.getUsersByGroupId(empty.id);
  assert.equal(none.totalCount, 0);
  assert.deepEqual(none.items, []);
  await httpError(groups.getUsersByGroupId('00000000-0000-4000-8000-00000000beef'), 404);
});

test('groups.getUsersByGroupName lists the members of a group named with spaces', async () => {
  const group = await newGroup({ name: `JS Members Of ${unique()}` });
  const pair = [await newUser(), await newUser()];
  await groups.addUsers(group.id, pair.map((u) => u.id));
  const page = await groups.getUsersByGroupName(group.name);
  assert.equal(page.totalCount, 2);
  assert.deepEqual(ids(page.items), ids(pair));
});

test('groups.delete removes the group but keeps its users', async () => {
  const group = await newGroup();
  const user = await newUser();
  await groups.addUser(group.id, user.id);
  const result = await groups.delete(group.id);
  assert.deepEqual(result, {});
  createdGroups.delete(group.id);
  await httpError(groups.getById(group.id), 404);
  await httpError(groups.getByName(group.name), 404);
  assert.equal((await users.getById(user.id)).id, user.id);
});

// --- clientType 'client_credentials' (an API key) ------------------------------------

/** A token of the bootstrap admin for the few calls the npm client has no method for. */
async function adminToken() {
  const body = new URLSearchParams({
    grant_type: 'contensis_classic',
    username: 'admin',
    password: ADMIN_PASSWORD,
  });
  const r = await fetch(`${ROOT_URL}/authenticate/connect/token`, { method: 'POST', body });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

test('clientType client_credentials works with an API key made through the API and put in System Administrators', async () => {
  const token = await adminToken();
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  // The npm client has no API-key methods: create the key over plain HTTP.
  const created = await fetch(`${ROOT_URL}/api/security/apiKeys`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ name: `js-key-${unique()}`, description: 'npm client test' }),
  });
  assert.equal(created.status, 201);
  const key = await created.json();
  assert.match(key.clientId, UUID);
  assert.equal(typeof key.clientSecret, 'string');

  const keyClient = (secret) =>
    Client.create(
      {
        rootUrl: ROOT_URL,
        projectId: 'website',
        clientType: 'client_credentials',
        clientDetails: { clientId: key.clientId, clientSecret: secret },
      },
      fetch,
    );

  // Not yet an administrator: listing users is forbidden.
  await assert.rejects(keyClient(key.clientSecret).security.users.list(), (e) => e.status === 403);

  // Put the key's user in System Administrators with the npm client itself.
  const sysadmins = await groups.getByName('System Administrators');
  await groups.addUser(sysadmins.id, key.clientId);
  assert.equal(await groups.hasUser(sysadmins.id, key.clientId), true);

  const client = keyClient(key.clientSecret);
  const u = await newUser();
  const page = await client.security.users.list({ q: u.username });
  assert.deepEqual(page.items.map((x) => x.id), [u.id]);
  const me = await client.security.users.getCurrent();
  assert.equal(me.username, key.clientId);
  assert.equal(me.credentials.provider.type, 'apiKey');

  // A wrong secret is refused at the token endpoint.
  await assert.rejects(keyClient('not-the-secret').security.users.list(), /invalid_client/);

  // Clean up: deleting the key removes its user and membership.
  const del = await fetch(`${ROOT_URL}/api/security/apiKeys/${key.id}`, { method: 'DELETE', headers: auth });
  assert.equal(del.status, 204);
  assert.equal(await groups.hasUser(sysadmins.id, key.clientId), false);
});
