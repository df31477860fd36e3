//! Provisioning (SCIM 2.0): who may provision, and the changes a provisioner makes.
//!
//! A provisioner is a caller that is a System Administrator, or a member (directly or
//! through child groups) of the configured provisioning group (`--scim-group`; none by
//! default, so only administrators). Everyone else is refused (403).
//!
//! A provisioner acts as an administrator on users and groups, through the same
//! operations as the Contensis API (so the password policy, the last-administrator rule,
//! cycle refusal and every audit record apply), with one limit for a provisioner that is
//! not itself an administrator: it may not make or unmake administrators. It cannot
//! change, suspend, delete or set the password of a user who is an administrator, and
//! cannot change a group whose members are administrators (System Administrators or any
//! group below it): no rename, delete, member or child change. Otherwise a key meant for
//! an identity provider would be a way to become administrator.

use super::groups::GroupInput;
use super::users::{CreateOptions, PasswordInput, UpdateMode, UserAction, UserInput};
use super::{Caller, Error, Result, Services};
use crate::domain::group::Group;
use crate::domain::ids::{GroupId, GroupRef, SYSTEM_ADMINISTRATORS_ID, UserId, UserRef};
use crate::domain::page::PageRequest;
use crate::domain::user::User;
use crate::query::ast::{Condition, Expr, FieldRef, GROUPS, Op, Value};
use crate::store::{GroupScope, ListQuery};

/// How many locks SCIM's read-modify-write operations are spread over: resources that
/// share one only wait for each other.
const TURN_STRIPES: usize = 64;

/// One change at a time per resource on this node, for the front doors that read a
/// resource, compare its version (`If-Match`) or apply a PATCH to it, and write it back:
/// without a turn, two such changes could both read the same version and both write,
/// the second over the first.
#[derive(Debug)]
pub(super) struct Turns(Vec<tokio::sync::Mutex<()>>);

impl Default for Turns {
    fn default() -> Self {
        Turns(
            (0..TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }
}

/// A caller allowed to provision, acting as an administrator within the limits above.
#[derive(Debug, Clone)]
pub struct Provisioner {
    /// The caller, with administrator rights for the service's checks.
    acting: Caller,
    /// Whether the caller really is an administrator (then nothing is off limits).
    admin: bool,
}

impl Provisioner {
    /// The caller to hand the service's operations: the provisioner's own user, with
    /// administrator rights. Reads may use it directly; changes go through the
    /// `provision_*` methods, which apply the limits first.
    pub fn caller(&self) -> &Caller {
        &self.acting
    }

    /// Whether the provisioner is an administrator itself.
    pub fn is_admin(&self) -> bool {
        self.admin
    }
}

fn by_id(id: UserId) -> UserRef {
    UserRef::Key(crate::domain::ids::IdOrName {
        id: Some(id),
        name: id.to_string(),
    })
}

fn group_by_id(id: GroupId) -> GroupRef {
    GroupRef {
        id: Some(id),
        name: id.to_string(),
    }
}

fn off_limits(what: &str) -> Error {
    Error::Forbidden(format!(
        "A provisioner that is not an administrator cannot change {what}."
    ))
}

impl Services {
    /// Waits for this node's turn to change the resource named `id` (as the client
    /// named it; case does not matter), and holds it until the guard is dropped. The
    /// reads, the version check and the writes of one SCIM PUT, PATCH or DELETE happen
    /// inside one turn. Across PostgreSQL nodes, turns are per node (docs/scim.md).
    pub async fn provisioning_turn(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        id.to_ascii_lowercase().hash(&mut h);
        let stripes = &self.turns.0;
        stripes[(h.finish() % stripes.len() as u64) as usize]
            .lock()
            .await
    }

    /// Decides whether `caller` may provision: administrators always, members of the
    /// configured provisioning group too, anyone else 403.
    pub async fn provisioner(&self, caller: &Caller) -> Result<Provisioner> {
        if caller.is_admin {
            return Ok(Provisioner {
                acting: caller.clone(),
                admin: true,
            });
        }
        let refused = || {
            Error::Forbidden(
                "Provisioning needs a System Administrator or a member of the provisioning group."
                    .into(),
            )
        };
        let Some(name) = self.settings().scim_group.as_deref() else {
            return Err(refused());
        };
        let Some(group) = self.try_resolve_group_id(&GroupRef::group(name)).await? else {
            tracing::warn!(group = name, "the provisioning group does not exist");
            return Err(refused());
        };
        if !self.store().is_member(caller.user.id, &[group]).await? {
            return Err(refused());
        }
        Ok(Provisioner {
            acting: Caller {
                user: caller.user.clone(),
                is_admin: true,
            },
            admin: false,
        })
    }

    /// Refuses a change to an administrator by a provisioner that is not one.
    async fn guard_user(&self, p: &Provisioner, user: UserId) -> Result<()> {
        if !p.admin && self.is_admin(user).await? {
            return Err(off_limits("an administrator"));
        }
        Ok(())
    }

    /// Refuses a change to a group whose members are administrators by a provisioner
    /// that is not one.
    async fn guard_group(&self, p: &Provisioner, group: GroupId) -> Result<()> {
        if !p.admin && self.grants_admin(p, group).await? {
            return Err(off_limits("a group whose members are administrators"));
        }
        Ok(())
    }

    /// Whether members of `group` are administrators: it is System Administrators or
    /// one of the groups below it.
    async fn grants_admin(&self, p: &Provisioner, group: GroupId) -> Result<bool> {
        if group == SYSTEM_ADMINISTRATORS_ID {
            return Ok(true);
        }
        let Some(FieldRef::Named(id)) = GROUPS.lookup("id") else {
            return Err(Error::Internal("groups have an id field".into()));
        };
        let query = ListQuery {
            filter: Some(Expr::Cmp(Condition {
                field: FieldRef::Named(id),
                op: Op::Eq(Value::String(group.to_string())),
            })),
            ..self.list_query(
                p.caller(),
                &super::ListRequest::page(PageRequest { index: 0, size: 1 }),
            )
        };
        let scope = GroupScope::ChildrenOf {
            group: SYSTEM_ADMINISTRATORS_ID,
            inherited: true,
            include_self: true,
            excluded: Vec::new(),
        };
        Ok(self.store().list_groups(&scope, &query).await?.total > 0)
    }

    /// Creates a user (`POST /Users`).
    pub async fn provision_create_user(
        &self,
        p: &Provisioner,
        input: UserInput,
        opts: CreateOptions,
    ) -> Result<User> {
        self.create_user(p.caller(), input, opts).await
    }

    /// Changes a user's profile.
    pub async fn provision_update_user(
        &self,
        p: &Provisioner,
        user: UserId,
        input: UserInput,
        mode: UpdateMode,
    ) -> Result<User> {
        self.guard_user(p, user).await?;
        self.update_user(p.caller(), &by_id(user), input, mode)
            .await
    }

    /// Suspends or reinstates a user (`active`).
    pub async fn provision_user_action(
        &self,
        p: &Provisioner,
        user: UserId,
        change: UserAction,
    ) -> Result<()> {
        self.guard_user(p, user).await?;
        self.user_action(p.caller(), &by_id(user), change).await
    }

    /// Sets a user's password, as an administrator does: the policy applies, earlier
    /// tokens are revoked.
    pub async fn provision_password(
        &self,
        p: &Provisioner,
        user: UserId,
        new: String,
    ) -> Result<()> {
        self.guard_user(p, user).await?;
        let input = PasswordInput {
            existing: None,
            new,
        };
        self.change_password(Some(p.caller()), &by_id(user), input, None)
            .await
    }

    /// Deletes a user.
    pub async fn provision_delete_user(&self, p: &Provisioner, user: UserId) -> Result<()> {
        self.guard_user(p, user).await?;
        self.delete_user(p.caller(), &by_id(user)).await
    }

    /// Creates a group.
    pub async fn provision_create_group(
        &self,
        p: &Provisioner,
        input: GroupInput,
    ) -> Result<Group> {
        self.create_group(p.caller(), input).await
    }

    /// Changes a group's name, description or custom properties.
    pub async fn provision_update_group(
        &self,
        p: &Provisioner,
        group: GroupId,
        input: GroupInput,
    ) -> Result<Group> {
        self.guard_group(p, group).await?;
        self.update_group(p.caller(), &group_by_id(group), input)
            .await
    }

    /// Deletes a group.
    pub async fn provision_delete_group(&self, p: &Provisioner, group: GroupId) -> Result<()> {
        self.guard_group(p, group).await?;
        self.delete_group(p.caller(), &group_by_id(group)).await
    }

    /// Makes a user a direct member of a group (idempotent).
    pub async fn provision_add_member(
        &self,
        p: &Provisioner,
        group: GroupId,
        user: UserId,
    ) -> Result<()> {
        self.guard_group(p, group).await?;
        self.add_member(p.caller(), &group_by_id(group), &by_id(user))
            .await
    }

    /// Removes a direct member; `false` when the user was not one.
    pub async fn provision_remove_member(
        &self,
        p: &Provisioner,
        group: GroupId,
        user: UserId,
    ) -> Result<bool> {
        self.guard_group(p, group).await?;
        not_there_is_false(
            self.remove_member(p.caller(), &group_by_id(group), &by_id(user))
                .await,
        )
    }

    /// Makes `child` a direct child group of `parent` (idempotent; a cycle is refused).
    pub async fn provision_add_child(
        &self,
        p: &Provisioner,
        parent: GroupId,
        child: GroupId,
    ) -> Result<()> {
        self.guard_group(p, parent).await?;
        self.add_child(p.caller(), &group_by_id(parent), &group_by_id(child))
            .await
    }

    /// Removes a direct child group; `false` when it was not one.
    pub async fn provision_remove_child(
        &self,
        p: &Provisioner,
        parent: GroupId,
        child: GroupId,
    ) -> Result<bool> {
        self.guard_group(p, parent).await?;
        not_there_is_false(
            self.remove_child(p.caller(), &group_by_id(parent), &group_by_id(child))
                .await,
        )
    }

    /// Every direct user member of a group, all pages (for a SCIM group's `members`).
    pub async fn provision_members(&self, p: &Provisioner, group: GroupId) -> Result<Vec<User>> {
        all_pages(|req| async move {
            self.group_members(p.caller(), &group_by_id(group), false, &[], &req)
                .await
        })
        .await
    }

    /// Every direct child group of a group, all pages.
    pub async fn provision_children(&self, p: &Provisioner, group: GroupId) -> Result<Vec<Group>> {
        all_pages(|req| async move {
            self.child_groups(p.caller(), &group_by_id(group), false, false, &[], &req)
                .await
        })
        .await
    }

    /// The groups a user is in, directly (`true`) and through child groups (`false`).
    pub async fn provision_user_groups(
        &self,
        p: &Provisioner,
        user: UserId,
    ) -> Result<Vec<(Group, bool)>> {
        let all = |inherited: bool| async move {
            let mut out = Vec::new();
            for index in 0.. {
                let page = self
                    .user_groups(
                        p.caller(),
                        &by_id(user),
                        inherited,
                        &[],
                        &super::ListRequest::page(PageRequest {
                            index,
                            size: MEMBER_PAGE,
                        }),
                    )
                    .await?;
                let done = page.items.len() < MEMBER_PAGE as usize;
                out.extend(page.items);
                if done || out.len() as i64 >= page.total {
                    break;
                }
            }
            Ok::<_, Error>(out)
        };
        let direct = all(false).await?;
        let every = all(true).await?;
        Ok(every
            .into_iter()
            .map(|g| {
                let is_direct = direct.iter().any(|d| d.id == g.id);
                (g, is_direct)
            })
            .collect())
    }
}

/// Pages of this size are read when a whole membership list is wanted.
const MEMBER_PAGE: u32 = 1000;

/// A removal's "not a direct member/child" (409) as `Ok(false)`, so a provisioner's
/// remove of what is already gone is not an error.
fn not_there_is_false(r: Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(Error::Conflict(m))
            if m.starts_with("The user is not a direct member")
                || m.starts_with("The group is not a direct child") =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Every item of a list, read [`MEMBER_PAGE`] at a time.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(super::ListRequest) -> Fut,
    Fut: std::future::Future<Output = Result<crate::domain::page::Page<T>>>,
{
    let mut out = Vec::new();
    for index in 0.. {
        let got = page(super::ListRequest::page(PageRequest {
            index,
            size: MEMBER_PAGE,
        }))
        .await?;
        let done = got.items.len() < MEMBER_PAGE as usize;
        out.extend(got.items);
        if done || out.len() as i64 >= got.total {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The removals' 409s are recognised by their messages, read here from the
    /// service's source: if those change, this fails.
    #[test]
    fn removals_of_what_is_gone_are_not_errors() {
        let source = include_str!("groups.rs");
        for m in [
            "The user is not a direct member of the group.",
            "The group is not a direct child of that group.",
        ] {
            assert!(source.contains(m), "groups.rs no longer says {m:?}");
            assert!(!not_there_is_false(Err(Error::Conflict(m.into()))).unwrap());
        }
        assert!(not_there_is_false(Err(Error::Conflict("other".into()))).is_err());
        assert!(not_there_is_false(Ok(())).unwrap());
    }
}
