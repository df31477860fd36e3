-- Memberships without foreign keys: the adds' hot path stops locking parent rows.
--
-- A membership's two foreign keys (to users.seq and groups.seq) made every add check
-- and lock (FOR KEY SHARE) its group's row and its user's row: two more index reads, two
-- heap pages dirtied and two WAL records per add, inside the one statement all of a
-- node's adds wait on (BENCHMARKS.md: the adds rose from 1.55 to 1.75 times
-- `pgbench -N` without them). What the keys guaranteed, that no membership outlives its
-- user or group, is kept by a guard instead:
--
-- - Deleting a user or a group deletes its memberships in an AFTER DELETE trigger,
--   after taking the member guard (an advisory lock) exclusively.
-- - Everything that inserts memberships takes the guard shared first, and resolves the
--   user and group in a later statement, so with a fresh snapshot (READ COMMITTED):
--   the grouped add runs as `gatehouse_add_members` below (the lock, then the insert:
--   one round trip); the other paths call `gatehouse_member_guard(false)` (store
--   `Lock::Members`) before their insert.
--
-- Why that holds under concurrent nodes: an insert that took the guard before the
-- delete's trigger did commits before the trigger gets it, and the trigger's DELETE, a
-- statement that begins after that, removes what it inserted; an insert that asks for
-- the guard after the trigger took it waits for the delete to commit, and its statement
-- then no longer finds the user or group (the `NOT NULL` rule, or no row from the
-- grouped add). The trigger takes the guard after the parent row is gone, and an
-- inserter never waits on a deleter's row while holding the guard, so the two never
-- wait on each other in a circle. The lock keys are this schema's (hashtext), so
-- deployments in other schemas never wait on each other.

CREATE FUNCTION gatehouse_member_guard(exclusive BOOLEAN) RETURNS void LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    -- Class 0x47480004 ("GH" and 4), beside the store's other advisory-lock classes.
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(1195900932, hashtext(current_schema()));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(1195900932, hashtext(current_schema()));
    END IF;
END $$;

CREATE FUNCTION gatehouse_members_gone() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM gatehouse_member_guard(true);
    IF TG_TABLE_NAME = 'users' THEN
        DELETE FROM group_members WHERE user_seq = OLD.seq;
    ELSE
        DELETE FROM group_members WHERE group_seq = OLD.seq;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_members_gone AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION gatehouse_members_gone();

CREATE TRIGGER groups_members_gone AFTER DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION gatehouse_members_gone();

ALTER TABLE group_members DROP CONSTRAINT group_members_by_seq_group_seq_fkey;
ALTER TABLE group_members DROP CONSTRAINT group_members_by_seq_user_seq_fkey;

-- The grouped add (src/store/postgres/batch_writer.rs): arrays of one element per add,
-- `$1` its position in the batch; `$2`-`$5` the group's id (or NULL) and name key and
-- the user's; `$6`-`$15` its event (time, type, actor, key, summary, origin). Resolves
-- each add's group and user (by id, else by name key), inserts the new memberships in
-- key order (an existing one is left as it is), records an audit event for each
-- membership it inserted and queues those events for subscribed webhooks. Returns each
-- add's position with the group and user it resolved to (NULL where none).
CREATE FUNCTION gatehouse_add_members(
    int8[], text[], text[], text[], text[], int8[], text[], text[], text[], text[],
    text[], text[], text[], text[], text[]
) RETURNS TABLE (ord int8, group_id text, user_id text) LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
    PERFORM gatehouse_member_guard(false);
    RETURN QUERY WITH input AS (SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9,
        $10, $11, $12, $13, $14, $15)
        AS t(ord, gid, gkey, uid, ukey, at, event_type, actor_type, actor_id, actor_name,
        key_id, key_name, summary, request_id, client_addr)),
    resolved AS (SELECT i.ord, COALESCE(ga.id, gb.id) AS group_id,
        COALESCE(ga.seq, gb.seq) AS group_seq, COALESCE(ga.name, gb.name) AS group_name,
        COALESCE(u.id, n.user_id) AS user_id,
        COALESCE(u.seq, n.user_seq) AS user_seq FROM input i
        LEFT JOIN groups ga ON ga.id = i.gid
        LEFT JOIN groups gb ON ga.id IS NULL AND gb.name_key = i.gkey
        LEFT JOIN users u ON u.id = i.uid
        LEFT JOIN user_identifiers n ON u.seq IS NULL AND n.key = i.ukey),
    added AS (INSERT INTO group_members AS m (group_seq, user_seq)
        SELECT r.group_seq, r.user_seq FROM resolved r
        WHERE r.group_seq IS NOT NULL AND r.user_seq IS NOT NULL
        ORDER BY r.group_seq, r.user_seq
        ON CONFLICT DO NOTHING RETURNING m.group_seq, m.user_seq),
    first_asks AS (SELECT DISTINCT ON (r.group_seq, r.user_seq) r.ord, r.group_id,
        r.group_name, r.user_id, r.user_seq
        FROM resolved r JOIN added a ON a.group_seq = r.group_seq AND a.user_seq = r.user_seq
        ORDER BY r.group_seq, r.user_seq, r.ord),
    events AS (INSERT INTO audit_events AS e (at, event_type, actor_type, actor_id,
        actor_name, target_user_id, target_user_name, target_group_id, target_group_name,
        target_key_id, target_key_name, summary, request_id, client_addr)
        SELECT i.at, i.event_type, i.actor_type, i.actor_id, i.actor_name, f.user_id,
        (SELECT x.username FROM users x WHERE x.seq = f.user_seq), f.group_id,
        f.group_name, i.key_id, i.key_name, i.summary, i.request_id, i.client_addr
        FROM first_asks f JOIN input i ON i.ord = f.ord
        ORDER BY f.ord RETURNING e.seq, e.at, e.event_type),
    queued AS (INSERT INTO webhook_outbox (webhook_id, event_seq, created, next_attempt)
        SELECT s.webhook_id, v.seq, v.at, v.at FROM events v
        JOIN webhook_subscriptions s ON s.event_type IN (v.event_type, '*')
        JOIN webhooks w ON w.id = s.webhook_id WHERE w.enabled)
    SELECT r.ord, r.group_id, r.user_id FROM resolved r;
END $$;
