//! Group verbs: CRUD, user membership and child groups.

use crate::domain::audit::EventType;
use serde_json::{Map, Value, json};

use super::{Caller, Error, ListRequest, Patch, Result, Services};
use crate::domain::group::{Group, GroupType};
use crate::domain::ids::{GroupId, GroupRef, UserId, UserRef};
use crate::domain::names::{self, FieldError, MAX_DESCRIPTION, name_key};
use crate::domain::user::User;
use crate::store::{GroupScope, Named, Page, UserScope};

/// The body of a group create or update.
#[derive(Debug, Default, Clone)]
pub struct GroupInput {
    /// Required on create; unique case-insensitively.
    pub name: Patch<String>,
    /// Optional, at most 2000 characters.
    pub description: Patch<String>,
    /// `contensis` (default) or `external` on create; ignored on update.
    pub kind: Patch<String>,
    /// Free-form JSON object.
    pub custom: Patch<Map<String, Value>>,
}

/// Bulk bodies hold at most this many identifiers (spec §1).
pub const MAX_BULK: usize = 10_000;

fn check_description(p: &Patch<String>) -> Result<()> {
    if let Patch::Value(d) = p {
        names::check_optional("description", d, MAX_DESCRIPTION)?;
    }
    Ok(())
}

fn check_bulk(ids: &[String]) -> Result<()> {
    if ids.len() > MAX_BULK {
        return Err(Error::BadRequest(format!(
            "At most {MAX_BULK} identifiers may be sent at once."
        )));
    }
    Ok(())
}

impl Services {
    /// `POST /groups`.
    #[tracing::instrument(skip_all)]
    pub async fn create_group(&self, caller: &Caller, input: GroupInput) -> Result<Group> {
        caller.require_admin()?;
        let name = match input.name {
            Patch::Value(n) => n,
            _ => return Err(FieldError::new("name", "name is required").into()),
        };
        names::check_name("name", &name)?;
        check_description(&input.description)?;
        let kind = match input.kind.value() {
            None => GroupType::Contensis,
            Some(t) => match GroupType::parse(t) {
                Some(GroupType::Sys) | None => {
                    return Err(
                        FieldError::new("type", "type must be 'contensis' or 'external'").into(),
                    );
                }
                Some(k) => k,
            },
        };
        let custom = input.custom.value().cloned().unwrap_or_default();
        names::check_custom("custom", &custom)?;
        let now = self.now();
        let group = Group {
            id: GroupId::new(),
            name,
            description: input.description.value().cloned(),
            kind,
            custom,
            created: now,
            modified: now,
            user_count: 0,
            child_group_count: 0,
        };
        let mut event = self
            .event(caller, EventType::GroupCreated)
            .group(group.id)
            .with("name", group.name.clone())
            .with("type", group.kind.as_str());
        if let Some(d) = &group.description {
            event = event.with("description", d.clone());
        }
        self.store().create_group(&group, &event).await?;
        tracing::info!(group_id = %group.id, name = %group.name, "group created");
        Ok(group)
    }

    /// `GET /groups/{group}`.
    pub async fn get_group(&self, caller: &Caller, r: &GroupRef) -> Result<Group> {
        caller.require_admin()?;
        self.resolve_group(r).await
    }

    /// `PUT /groups/{group}`: name, description and custom; the built-in group keeps its name.
    #[tracing::instrument(skip_all)]
    pub async fn update_group(
        &self,
        caller: &Caller,
        r: &GroupRef,
        input: GroupInput,
    ) -> Result<Group> {
        caller.require_admin()?;
        let mut group = self.resolve_group(r).await?;
        let before = group.clone();
        match input.name {
            Patch::Value(n) if n != group.name => {
                if group.kind == GroupType::Sys {
                    return Err(Error::Conflict(
                        "The System Administrators group cannot be renamed.".into(),
                    ));
                }
                names::check_name("name", &n)?;
                group.name = n;
            }
            Patch::Null => return Err(FieldError::new("name", "name must not be empty").into()),
            _ => {}
        }
        check_description(&input.description)?;
        input.description.apply_to(&mut group.description);
        match input.custom {
            Patch::Value(c) => {
                names::check_custom("custom", &c)?;
                group.custom = c;
            }
            Patch::Null => group.custom = Map::new(),
            Patch::Absent => {}
        }
        group.modified = self.now();
        let mut event = self.event(caller, EventType::GroupUpdated).group(group.id);
        if before.name != group.name {
            event = event.with("name", group.name.clone());
        }
        if before.description != group.description {
            event = event.with("description", group.description.clone());
        }
        if before.custom != group.custom {
            event = event.with("custom", true);
        }
        self.store().update_group(&group, &event).await?;
        Ok(group)
    }

    /// `DELETE /groups/{group}`: memberships and child links go, users and child groups stay.
    #[tracing::instrument(skip_all)]
    pub async fn delete_group(&self, caller: &Caller, r: &GroupRef) -> Result<()> {
        caller.require_admin()?;
        let group = self.resolve_group(r).await?;
        if group.kind == GroupType::Sys {
            return Err(Error::Conflict(
                "The System Administrators group cannot be deleted.".into(),
            ));
        }
        let event = self.event(caller, EventType::GroupDeleted).group(group.id);
        let deleted = self
            .store()
            .delete_group(group.id, self.now(), &event)
            .await?;
        self.callers_changed_all();
        if !deleted {
            return Err(super::group_not_found(&r.name));
        }
        tracing::info!(group_id = %group.id, "group deleted");
        Ok(())
    }

    /// `GET /groups`.
    pub async fn list_groups(&self, caller: &Caller, query: &ListRequest) -> Result<Page<Group>> {
        caller.require_admin()?;
        Ok(self
            .store()
            .list_groups(&GroupScope::All, &self.list_query(caller, query))
            .await?)
    }

    /// `PUT /groups/{group}/users/{user}`: idempotent.
    #[tracing::instrument(skip_all)]
    pub async fn add_member(&self, caller: &Caller, g: &GroupRef, u: &UserRef) -> Result<()> {
        caller.require_admin()?;
        let keys = SegmentKeys::of(caller, g, u);
        let found = self
            .store()
            .add_member_named(
                keys.group(),
                keys.user(),
                &self.event(caller, EventType::MemberAdded),
            )
            .await?;
        found.group.ok_or_else(|| super::group_not_found(&g.name))?;
        let user = found_user(found.user, u)?;
        self.callers_changed(&[user]);
        Ok(())
    }

    /// `POST /groups/{group}/users`: all or nothing; 404 lists every unknown identifier.
    #[tracing::instrument(skip_all, fields(count = users.len()))]
    pub async fn add_members(&self, caller: &Caller, g: &GroupRef, users: &[String]) -> Result<()> {
        caller.require_admin()?;
        check_bulk(users)?;
        let group = self.resolve_group_id(g).await?;
        let mut ids: Vec<UserId> = Vec::with_capacity(users.len());
        let mut missing = Vec::new();
        for u in users {
            match self.resolve_user_id(Some(caller), &UserRef::parse(u)).await {
                Ok(id) => ids.push(id),
                Err(Error::NotFound { .. }) => missing.push(u.clone()),
                Err(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            return Err(Error::NotFound {
                message: format!(
                    "{} of the users were not found; none were added.",
                    missing.len()
                ),
                data: json!({ "users": missing }),
            });
        }
        ids.sort();
        ids.dedup();
        let event = self.event(caller, EventType::MemberAdded).group(group);
        self.store().add_members(group, &ids, &event).await?;
        self.callers_changed(&ids);
        Ok(())
    }

    /// `DELETE /groups/{group}/users/{user}`: 409 when not a direct member.
    #[tracing::instrument(skip_all)]
    pub async fn remove_member(&self, caller: &Caller, g: &GroupRef, u: &UserRef) -> Result<()> {
        caller.require_admin()?;
        let group = self.resolve_group_id(g).await?;
        let user = self.resolve_user_id(Some(caller), u).await?;
        let event = self
            .event(caller, EventType::MemberRemoved)
            .group(group)
            .user(user);
        let removed = self
            .store()
            .remove_member(group, user, self.now(), &event)
            .await?;
        self.callers_changed(&[user]);
        if !removed {
            return Err(Error::Conflict(
                "The user is not a direct member of the group.".into(),
            ));
        }
        Ok(())
    }

    /// `HEAD /groups/{group}/users/{user}`: member directly or through child groups.
    pub async fn has_member(&self, caller: &Caller, g: &GroupRef, u: &UserRef) -> Result<bool> {
        caller.require_may_address(u)?;
        let keys = SegmentKeys::of(caller, g, u);
        let found = self.store().check_member(keys.group(), keys.user()).await?;
        found.group.ok_or_else(|| super::group_not_found(&g.name))?;
        let user = found_user(found.user, u)?;
        caller.require_self_or_admin(user)?;
        Ok(found.member)
    }

    /// `GET /groups/{group}/users`.
    pub async fn group_members(
        &self,
        caller: &Caller,
        g: &GroupRef,
        inherited: bool,
        excluded: &[GroupRef],
        query: &ListRequest,
    ) -> Result<Page<User>> {
        caller.require_admin()?;
        let group = self.resolve_group_id(g).await?;
        let excluded = self.resolve_excluded(excluded).await?;
        let scope = UserScope::MembersOf {
            group,
            inherited,
            excluded,
        };
        Ok(self
            .store()
            .list_users(&scope, &self.list_query(caller, query))
            .await?)
    }

    /// `PUT /groups/{group}/groups/{child}`: idempotent; 409 for a cycle.
    #[tracing::instrument(skip_all)]
    pub async fn add_child(&self, caller: &Caller, g: &GroupRef, child: &GroupRef) -> Result<()> {
        caller.require_admin()?;
        let parent = self.resolve_group_id(g).await?;
        let child = self.resolve_group_id(child).await?;
        let event = self.event(caller, EventType::ChildAdded).group(parent);
        self.store().add_children(parent, &[child], &event).await?;
        self.callers_changed_all();
        Ok(())
    }

    /// `POST /groups/{group}/groups`: all or nothing.
    #[tracing::instrument(skip_all, fields(count = children.len()))]
    pub async fn add_children(
        &self,
        caller: &Caller,
        g: &GroupRef,
        children: &[String],
    ) -> Result<()> {
        caller.require_admin()?;
        check_bulk(children)?;
        let parent = self.resolve_group_id(g).await?;
        let mut ids = Vec::with_capacity(children.len());
        let mut missing = Vec::new();
        for c in children {
            match self.try_resolve_group_id(&GroupRef::group(c)).await? {
                Some(id) => ids.push(id),
                None => missing.push(c.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::NotFound {
                message: format!(
                    "{} of the groups were not found; none were added.",
                    missing.len()
                ),
                data: json!({ "groups": missing }),
            });
        }
        ids.sort();
        ids.dedup();
        let event = self.event(caller, EventType::ChildAdded).group(parent);
        self.store().add_children(parent, &ids, &event).await?;
        self.callers_changed_all();
        Ok(())
    }

    /// `DELETE /groups/{group}/groups/{child}`: 409 when not a direct child.
    #[tracing::instrument(skip_all)]
    pub async fn remove_child(
        &self,
        caller: &Caller,
        g: &GroupRef,
        child: &GroupRef,
    ) -> Result<()> {
        caller.require_admin()?;
        let parent = self.resolve_group_id(g).await?;
        let child = self.resolve_group_id(child).await?;
        let event = self.event(caller, EventType::ChildRemoved).group(parent);
        let removed = self
            .store()
            .remove_child(parent, child, self.now(), &event)
            .await?;
        self.callers_changed_all();
        if !removed {
            return Err(Error::Conflict(
                "The group is not a direct child of that group.".into(),
            ));
        }
        Ok(())
    }

    /// `GET /groups/{group}/groups`.
    pub async fn child_groups(
        &self,
        caller: &Caller,
        g: &GroupRef,
        inherited: bool,
        include_self: bool,
        excluded: &[GroupRef],
        query: &ListRequest,
    ) -> Result<Page<Group>> {
        caller.require_admin()?;
        let group = self.resolve_group_id(g).await?;
        let excluded = self.resolve_excluded(excluded).await?;
        let scope = GroupScope::ChildrenOf {
            group,
            inherited,
            include_self,
            excluded,
        };
        Ok(self
            .store()
            .list_groups(&scope, &self.list_query(caller, query))
            .await?)
    }
}

/// A group and a user path segment as the store resolves them: by id when the segment
/// parses as one, then by folded name; the user `current` is the caller.
struct SegmentKeys {
    group_id: Option<GroupId>,
    group_key: String,
    user_id: Option<UserId>,
    user_key: String,
}

impl SegmentKeys {
    fn of(caller: &Caller, g: &GroupRef, u: &UserRef) -> Self {
        let (user_id, user_key) = match u {
            UserRef::Current => (Some(caller.user.id), String::new()),
            UserRef::Key(k) => (k.id, name_key(&k.name)),
        };
        Self {
            group_id: g.id,
            group_key: name_key(&g.name),
            user_id,
            user_key,
        }
    }

    fn group(&self) -> Named<'_, GroupId> {
        Named {
            id: self.group_id,
            key: &self.group_key,
        }
    }

    fn user(&self) -> Named<'_, UserId> {
        Named {
            id: self.user_id,
            key: &self.user_key,
        }
    }
}

/// The user a store found for a path segment, or the error its absence means: 404
/// naming it, or 401 when the caller's own account is gone.
fn found_user(found: Option<UserId>, u: &UserRef) -> Result<UserId> {
    match (found, u) {
        (Some(id), _) => Ok(id),
        (None, UserRef::Current) => Err(Error::Unauthenticated),
        (None, UserRef::Key(k)) => Err(super::user_not_found(&k.name)),
    }
}
