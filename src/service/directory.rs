//! The directory as a read-only front door (LDAP) sees it: who bound, what they may
//! read, and the reads, through the same logins and the same store queries as the
//! REST API.
//!
//! Binds run the token grants' cores (`Services::verify_login`,
//! `Services::verify_api_key`), so lockout, suspension, expiry, must-reset, the rate
//! limits and the argon2 bound are the same code. Reads take the query AST
//! ([`crate::query::ast::Expr`]) the ZenQL and JSON filters produce; the permission
//! rule is applied here, on the query, before the store sees it:
//!
//! - members of the directory readers' group (`--ldap-search-group`, System
//!   Administrators unless set) and administrators read everything;
//! - anyone else reads their own user entry and the groups they are in (directly or
//!   through nesting), and of a group's members only themself.

use std::net::IpAddr;

use super::auth::GrantError;
use super::{Error, ListRequest, Result, Services};
use crate::domain::group::Group;
use crate::domain::ids::{GroupId, GroupRef, UserId, UserRef};
use crate::domain::names::name_key;
use crate::domain::page::{Page, PageRequest};
use crate::domain::user::{Provider, User};
use crate::query::ast::{self, Condition, Expr, Op};
use crate::service::users::PasswordInput;
use crate::store::{GroupScope, UserScope};

/// Rows read per store query when a whole list is wanted (a user's groups, a group's
/// members).
const CHUNK: u32 = 1000;

/// The most groups or members read for one entry's `memberOf` or `member`.
pub const MAX_LISTED: usize = 100_000;

/// Who a directory session is bound as, and what they may read.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The account (for an API key, the key's service user).
    pub user: User,
    /// For an API key, its client id (its bind DN names it).
    pub client_id: Option<String>,
    /// Reads the whole tree (an administrator, or a member of the readers' group).
    pub sees_all: bool,
}

/// What a reader's query on users or groups is limited to.
#[derive(Debug, Clone, PartialEq)]
pub enum Visible {
    /// Everything.
    All,
    /// One user (the reader) / the reader's groups, closure included.
    Own(UserId),
}

impl Reader {
    /// What this reader may see.
    pub fn visible(&self) -> Visible {
        if self.sees_all {
            Visible::All
        } else {
            Visible::Own(self.user.id)
        }
    }
}

/// A user filter narrowed to people (API keys' service users are not entries) and to
/// what `visible` allows: the reader's own entry only, unless they see all.
pub fn users_visible(filter: Expr, visible: &Visible) -> Expr {
    let people = Expr::Related(
        ast::Relation::Provider,
        Provider::Contensis.as_str().to_owned(),
    );
    match visible {
        Visible::All => Expr::And(vec![filter, people]),
        Visible::Own(id) => Expr::And(vec![filter, people, id_is(&ast::USERS, &id.to_string())]),
    }
}

/// `id = <id>` over a field set that has an `id`.
fn id_is(fields: &ast::FieldSet, id: &str) -> Expr {
    let field = fields.lookup("id").expect("users and groups have an id");
    Expr::Cmp(Condition {
        field,
        op: Op::Eq(ast::Value::String(id.to_owned())),
    })
}

impl Services {
    /// A simple bind with a username (or email) and password: the per-address rate
    /// limit, then the password grant's core. Counted in `gatehouse_logins_total` as
    /// grant `ldap`.
    #[tracing::instrument(skip_all)]
    pub async fn directory_bind_password(
        &self,
        name: &str,
        password: String,
        client_addr: Option<IpAddr>,
    ) -> Result<Reader, GrantError> {
        let result = async {
            self.limit_attempt(client_addr, None)?;
            let user = self.verify_login(name, password).await?;
            Ok(self.reader(user, None).await?)
        }
        .await;
        self.count_bind(&result);
        result
    }

    /// A bind as an API key's service account with its secret: the per-address rate
    /// limit, then the client-credentials grant's core.
    #[tracing::instrument(skip_all)]
    pub async fn directory_bind_api_key(
        &self,
        client_id: &str,
        secret: &str,
        client_addr: Option<IpAddr>,
    ) -> Result<Reader, GrantError> {
        let result = async {
            self.limit_attempt(client_addr, None)?;
            let user = self.verify_api_key(client_id, secret).await?;
            Ok(self.reader(user, Some(client_id.to_owned())).await?)
        }
        .await;
        self.count_bind(&result);
        result
    }

    fn count_bind(&self, result: &Result<Reader, GrantError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(e) => e.outcome(),
        };
        self.metrics().login(Some("ldap"), outcome);
    }

    /// The bound account as it is now, for each operation of a session: `None` once it
    /// was deleted, suspended, locked or expired (or its key disabled) since the bind,
    /// so the session reads as anonymous from then on.
    pub async fn directory_reader_now(&self, bound: &Reader) -> Result<Option<Reader>> {
        let Some(user) = self.store().get_user(bound.user.id).await? else {
            return Ok(None);
        };
        if user.suspended || user.locked || user.is_expired(self.now()) {
            return Ok(None);
        }
        if user.provider == Provider::ApiKey {
            let enabled = self
                .store()
                .api_key_of_user(user.id)
                .await?
                .is_some_and(|k| k.enabled);
            if !enabled {
                return Ok(None);
            }
        }
        Ok(Some(self.reader(user, bound.client_id.clone()).await?))
    }

    async fn reader(&self, user: User, client_id: Option<String>) -> Result<Reader> {
        let mut groups = vec![crate::domain::ids::SYSTEM_ADMINISTRATORS_ID];
        if let Some(name) = &self.settings().directory_readers {
            if let Some(id) = self.store().find_group_by_key(&name_key(name)).await? {
                groups.push(id);
            }
        }
        let sees_all = self.store().is_member(user.id, &groups).await?;
        Ok(Reader {
            user,
            client_id,
            sees_all,
        })
    }

    /// The id of the user a name (username or email) names, for reading a filter.
    pub async fn directory_user_id(&self, name: &str) -> Result<Option<UserId>> {
        Ok(self.store().find_user_by_key(&name_key(name)).await?)
    }

    /// The id of the group a name names, for reading a filter or a DN.
    pub async fn directory_group_id(&self, name: &str) -> Result<Option<GroupId>> {
        self.try_resolve_group_id(&GroupRef::group(name)).await
    }

    /// One page of the users `filter` matches that `reader` may see, in the users
    /// list's default order.
    pub async fn directory_users(
        &self,
        reader: &Reader,
        filter: Expr,
        page: PageRequest,
    ) -> Result<Page<User>> {
        let mut req = ListRequest::page(page);
        req.filter = Some(users_visible(filter, &reader.visible()));
        let caller = self.directory_caller(reader);
        Ok(self
            .store()
            .list_users(&UserScope::All, &self.list_query(&caller, &req))
            .await?)
    }

    /// One page of the groups `filter` matches that `reader` may see.
    pub async fn directory_groups(
        &self,
        reader: &Reader,
        filter: Expr,
        page: PageRequest,
    ) -> Result<Page<Group>> {
        let scope = match reader.visible() {
            Visible::All => GroupScope::All,
            Visible::Own(user) => GroupScope::OfUser {
                user,
                inherited: true,
                excluded: Vec::new(),
            },
        };
        let mut req = ListRequest::page(page);
        req.filter = Some(filter);
        let caller = self.directory_caller(reader);
        Ok(self
            .store()
            .list_groups(&scope, &self.list_query(&caller, &req))
            .await?)
    }

    /// Every group `user` is in, directly or through nesting (an entry's `memberOf`).
    pub async fn directory_groups_of(&self, reader: &Reader, user: UserId) -> Result<Vec<Group>> {
        if reader.visible() != Visible::All && reader.user.id != user {
            return Ok(Vec::new());
        }
        let scope = GroupScope::OfUser {
            user,
            inherited: true,
            excluded: Vec::new(),
        };
        let caller = self.directory_caller(reader);
        let mut all = Vec::new();
        for index in 0.. {
            let req = ListRequest::page(PageRequest { index, size: CHUNK });
            let page = self
                .store()
                .list_groups(&scope, &self.list_query(&caller, &req))
                .await?;
            let n = page.items.len();
            all.extend(page.items);
            if n < CHUNK as usize || all.len() >= MAX_LISTED {
                break;
            }
        }
        Ok(all)
    }

    /// A group's direct members: users and child groups (an entry's `member`). A reader
    /// who does not see everything sees only themself among them.
    pub async fn directory_members(
        &self,
        reader: &Reader,
        group: GroupId,
    ) -> Result<(Vec<User>, Vec<Group>)> {
        let caller = self.directory_caller(reader);
        let visible = reader.visible();
        let mut users = Vec::new();
        for index in 0.. {
            let mut req = ListRequest::page(PageRequest { index, size: CHUNK });
            req.filter = Some(users_visible(Expr::And(Vec::new()), &visible));
            let scope = UserScope::MembersOf {
                group,
                inherited: false,
                excluded: Vec::new(),
            };
            let page = self
                .store()
                .list_users(&scope, &self.list_query(&caller, &req))
                .await?;
            let n = page.items.len();
            users.extend(page.items);
            if n < CHUNK as usize || users.len() >= MAX_LISTED {
                break;
            }
        }
        let mut groups = Vec::new();
        if visible == Visible::All {
            let scope = GroupScope::ChildrenOf {
                group,
                inherited: false,
                include_self: false,
                excluded: Vec::new(),
            };
            for index in 0.. {
                let req = ListRequest::page(PageRequest { index, size: CHUNK });
                let page = self
                    .store()
                    .list_groups(&scope, &self.list_query(&caller, &req))
                    .await?;
                let n = page.items.len();
                groups.extend(page.items);
                if n < CHUNK as usize || groups.len() >= MAX_LISTED {
                    break;
                }
            }
        }
        Ok((users, groups))
    }

    /// Password modify (RFC 3062): the bound user changes their own password, proving
    /// the old one, through the same operation and policy as
    /// `POST /users/{user}/credentials/password`. Without a bind, `name` names the user
    /// and the old password is the only proof (as for a user who must reset theirs).
    pub async fn directory_set_password(
        &self,
        reader: Option<&Reader>,
        name: Option<&str>,
        old: Option<String>,
        new: String,
        client_addr: Option<IpAddr>,
    ) -> Result<()> {
        let input = PasswordInput { existing: old, new };
        match reader {
            Some(reader) => {
                if reader.user.provider != Provider::Contensis {
                    return Err(Error::Forbidden("API keys have no password.".into()));
                }
                // One's own password only, proving the old one, administrators too.
                let caller = super::Caller {
                    user: reader.user.clone(),
                    is_admin: false,
                };
                self.change_password(Some(&caller), &UserRef::Current, input, client_addr)
                    .await
            }
            None => {
                let Some(name) = name else {
                    return Err(Error::Unauthenticated);
                };
                self.change_password(None, &UserRef::parse(name), input, client_addr)
                    .await
            }
        }
    }

    /// The caller a directory read is made as: only `currentUser()` in a filter reads
    /// it, and permission was settled above.
    fn directory_caller(&self, reader: &Reader) -> super::Caller {
        super::Caller {
            user: reader.user.clone(),
            is_admin: reader.sees_all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(sees_all: bool) -> Reader {
        Reader {
            user: User::new("alice".into(), "alice@example.com".into(), 0),
            client_id: None,
            sees_all,
        }
    }

    #[test]
    fn a_reader_who_sees_all_reads_every_person() {
        let r = reader(true);
        assert_eq!(r.visible(), Visible::All);
        let f = Expr::Or(Vec::new());
        assert_eq!(
            users_visible(f, &r.visible()).to_string(),
            r#"((or) and provider("contensis"))"#
        );
    }

    #[test]
    fn anyone_else_reads_only_their_own_user_entry() {
        let r = reader(false);
        assert_eq!(r.visible(), Visible::Own(r.user.id));
        let got = users_visible(Expr::And(Vec::new()), &r.visible());
        assert_eq!(
            got.to_string(),
            format!(
                "((and) and provider(\"contensis\") and id = \"{}\")",
                r.user.id
            ),
            "the filter is narrowed to the reader's id"
        );
    }
}
