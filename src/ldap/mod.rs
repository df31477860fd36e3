//! The LDAP front door (LDAPv3, RFC 4511), beside the HTTP one: the same users and
//! groups for applications that speak LDAP (Nextcloud, Gitea, Grafana, SSSD...).
//!
//! Read-only, on the `ldap3_proto` codec: simple binds (as a user, by DN or email, or as
//! an API key's service account) through the token grants' own cores; search
//! (`search.rs`, filters translated to the query AST in `filter.rs`) and compare; the
//! extended operations Who am I (RFC 4532), password modify (RFC 3062) and StartTLS.
//! Every other write is `unwillingToPerform`. Like `http/`, it calls the service and never the store.
//!
//! Bounds: a message is at most [`MAX_MESSAGE`] bytes and [`MAX_BER_DEPTH`] levels deep
//! (past either the connection gets a notice of disconnection with `protocolError`),
//! filters at most [`filter::MAX_DEPTH`] deep; at most `--ldap-max-connections` at once
//! (past it a new one is told `busy` and closed), each closed after
//! `--ldap-idle-timeout-secs` of silence. A critical control the server does not know
//! is `unavailableCriticalExtension`.

pub mod dn;
pub mod entries;
pub mod filter;
pub mod search;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapBindResponse, LdapExtendedRequest, LdapExtendedResponse,
    LdapMsg, LdapOp, LdapPasswordModifyRequest, LdapResult, LdapResultCode, LdapSearchRequest,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::codec::Framed;
use tracing::Instrument as _;

use crate::service::Services;
use crate::service::auth::GrantError;
use crate::service::directory::Reader;
use dn::{Place, Tree};
use entries::{OID_PASSWORD_MODIFY, OID_START_TLS, OID_WHOAMI, Selection};

/// The largest LDAP message read, in bytes.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The deepest BER nesting read (a filter nested deeper is refused before this).
pub const MAX_BER_DEPTH: usize = 64;

/// What the LDAP listeners need from the configuration.
#[derive(Clone)]
pub struct Settings {
    /// The tree's base.
    pub tree: Tree,
    /// LDAPS and StartTLS, when a certificate and key were given.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Most connections at once.
    pub max_connections: usize,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base", &self.tree.base_text)
            .field("tls", &self.tls.is_some())
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// The LDAP front door of one server.
pub struct Server {
    services: Arc<Services>,
    settings: Settings,
    connections: Arc<Semaphore>,
}

/// How a connection arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    Ldaps,
}

impl Server {
    /// A front door over `services`.
    pub fn new(services: Arc<Services>, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            services,
            settings,
        })
    }

    /// Accepts connections on `plain` (LDAP, StartTLS when configured) and `ldaps`
    /// until `stop` turns true, then waits up to five seconds for open connections to
    /// finish the operation they are in.
    pub async fn serve(
        self: Arc<Self>,
        plain: Option<TcpListener>,
        ldaps: Option<TcpListener>,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let a = plain.map(|l| tokio::spawn(self.clone().accept(l, Transport::Plain, stop.clone())));
        let b = ldaps.map(|l| tokio::spawn(self.clone().accept(l, Transport::Ldaps, stop.clone())));
        for task in [a, b].into_iter().flatten() {
            let _ = task.await;
        }
        let all = u32::try_from(self.settings.max_connections).unwrap_or(u32::MAX);
        let _ =
            tokio::time::timeout(Duration::from_secs(5), self.connections.acquire_many(all)).await;
        Ok(())
    }

    async fn accept(
        self: Arc<Self>,
        listener: TcpListener,
        transport: Transport,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "LDAP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let stop = stop.clone();
            let span =
                tracing::info_span!("ldap", peer = %peer, conn = %uuid::Uuid::new_v4().simple());
            tokio::spawn(
                async move {
                    let Ok(permit) = server.connections.clone().try_acquire_owned() else {
                        server.services.metrics().ldap_connection("refused");
                        let mut framed = framed(stream);
                        let _ = framed
                            .send(notice(LdapResultCode::Busy, "Too many connections."))
                            .await;
                        return;
                    };
                    server.services.metrics().ldap_connection("accepted");
                    server.connection(stream, peer, transport, stop).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }

    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        transport: Transport,
        stop: watch::Receiver<bool>,
    ) {
        let mut session = Session {
            reader: None,
            peer: peer.ip(),
            tls: transport == Transport::Ldaps,
        };
        if transport == Transport::Ldaps {
            let Some(acceptor) = self.settings.tls.clone() else {
                return;
            };
            let handshake =
                tokio::time::timeout(self.settings.idle_timeout, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls)) => {
                    let mut framed = framed(tls);
                    self.session(&mut framed, &mut session, stop).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "LDAPS handshake failed"),
                Err(_) => tracing::debug!("LDAPS handshake timed out"),
            }
            return;
        }
        let mut plain = framed(stream);
        if self.session(&mut plain, &mut session, stop.clone()).await != Next::StartTls {
            return;
        }
        let Some(acceptor) = self.settings.tls.clone() else {
            return;
        };
        let parts = plain.into_parts();
        if !parts.read_buf.is_empty() {
            // Data sent after the StartTLS request, before the handshake: not allowed.
            return;
        }
        match tokio::time::timeout(self.settings.idle_timeout, acceptor.accept(parts.io)).await {
            Ok(Ok(tls)) => {
                session.tls = true;
                let mut framed = framed(tls);
                self.session(&mut framed, &mut session, stop).await;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "StartTLS handshake failed"),
            Err(_) => tracing::debug!("StartTLS handshake timed out"),
        }
    }

    /// Answers messages until the client unbinds or leaves, the connection idles out,
    /// the server stops, or StartTLS succeeds (then the caller wraps the stream).
    async fn session<S>(
        &self,
        framed: &mut Framed<S, LdapCodec>,
        session: &mut Session,
        mut stop: watch::Receiver<bool>,
    ) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let read = tokio::select! {
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    let _ = framed
                        .send(notice(LdapResultCode::Unavailable, "The server is shutting down."))
                        .await;
                    return Next::Close;
                }
                r = tokio::time::timeout(self.settings.idle_timeout, framed.next()) => r,
            };
            let msg = match read {
                Err(_) => {
                    let _ = framed
                        .send(notice(LdapResultCode::Unavailable, "Idle timeout."))
                        .await;
                    return Next::Close;
                }
                Ok(None) => return Next::Close,
                // The peer went away (or broke TLS): nothing to answer.
                Ok(Some(Err(e)))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    tracing::debug!(error = %e, "LDAP connection lost");
                    return Next::Close;
                }
                Ok(Some(Err(e))) => {
                    // Malformed BER, an oversized or too deep message, or an operation
                    // the codec cannot read: RFC 4511 §4.1.1 says disconnect.
                    tracing::info!(error = %e, "LDAP protocol error; disconnecting");
                    self.services
                        .metrics()
                        .ldap_operation("malformed", "protocolError", 0.0);
                    let _ = framed
                        .send(notice(LdapResultCode::ProtocolError, "Malformed message."))
                        .await;
                    return Next::Close;
                }
                Ok(Some(Ok(msg))) => msg,
            };
            let started = Instant::now();
            let kind = op_name(&msg.op);
            let (replies, next) = self
                .operation(msg, session)
                .instrument(tracing::info_span!("ldap_op", op = kind))
                .await;
            let code = replies.last().map_or("none", result_name);
            self.services
                .metrics()
                .ldap_operation(kind, code, started.elapsed().as_secs_f64());
            // A client that stops reading its answers is not waited on for ever.
            let write = async {
                for reply in replies {
                    framed.feed(reply).await?;
                }
                framed.flush().await
            };
            match tokio::time::timeout(self.settings.idle_timeout, write).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Next::Close,
                Err(_) => {
                    tracing::info!("LDAP client stopped reading; disconnecting");
                    return Next::Close;
                }
            }
            if next != Next::Continue {
                return next;
            }
        }
    }

    /// One request: its replies, and what the connection does next.
    async fn operation(&self, msg: LdapMsg, session: &mut Session) -> (Vec<LdapMsg>, Next) {
        let id = msg.msgid;
        // Controls: the paged-results control on a search is understood; any other
        // control marked critical refuses the operation.
        let mut paged = None;
        for control in &msg.ctrl {
            match control {
                LdapControl::SimplePagedResults { size, cookie }
                    if matches!(msg.op, LdapOp::SearchRequest(_)) =>
                {
                    paged = Some((usize::try_from(*size).unwrap_or(0), cookie.clone()));
                }
                c if is_critical(c) => {
                    return match reply(
                        &msg.op,
                        id,
                        LdapResultCode::UnavailableCriticalExtension,
                        "A critical control is not supported.",
                    ) {
                        Some(r) => (vec![r], Next::Continue),
                        None => (Vec::new(), Next::Continue),
                    };
                }
                _ => {}
            }
        }
        match msg.op {
            LdapOp::BindRequest(req) => (vec![self.bind(id, req, session).await], Next::Continue),
            LdapOp::UnbindRequest => (Vec::new(), Next::Close),
            LdapOp::SearchRequest(req) => {
                (self.search(id, &req, paged, session).await, Next::Continue)
            }
            LdapOp::ExtendedRequest(req) => self.extended(id, req, session).await,
            LdapOp::AbandonRequest(_) => (Vec::new(), Next::Continue),
            LdapOp::CompareRequest(req) => {
                (vec![self.compare(id, req, session).await], Next::Continue)
            }
            LdapOp::ModifyRequest(_)
            | LdapOp::AddRequest(_)
            | LdapOp::DelRequest(_)
            | LdapOp::ModifyDNRequest(_) => {
                let r = reply(
                    &msg.op,
                    id,
                    LdapResultCode::UnwillingToPerform,
                    "This directory is read-only over LDAP; use the Security API.",
                );
                (r.into_iter().collect(), Next::Continue)
            }
            // A response sent to the server.
            _ => (
                vec![notice(LdapResultCode::ProtocolError, "Not a request.")],
                Next::Close,
            ),
        }
    }

    async fn bind(&self, id: i32, req: LdapBindRequest, session: &mut Session) -> LdapMsg {
        // A bind starts over as anonymous, whatever its outcome (RFC 4511 §4.2.1).
        session.reader = None;
        let respond = |code, message: &str| LdapMsg {
            msgid: id,
            op: LdapOp::BindResponse(LdapBindResponse {
                res: result(code, message),
                saslcreds: None,
            }),
            ctrl: Vec::new(),
        };
        if req.version != 3 {
            return respond(LdapResultCode::ProtocolError, "Only LDAPv3 is supported.");
        }
        let password = match req.cred {
            LdapBindCred::Simple(p) => p,
            _ => {
                return respond(
                    LdapResultCode::AuthMethodNotSupported,
                    "Only simple binds are supported.",
                );
            }
        };
        match (req.dn.is_empty(), password.is_empty()) {
            (true, true) => return respond(LdapResultCode::Success, ""),
            // An unauthenticated bind (RFC 4513 §5.1.2) is refused, not taken as anonymous.
            (false, true) => {
                return respond(
                    LdapResultCode::UnwillingToPerform,
                    "Unauthenticated binds are not allowed.",
                );
            }
            (true, false) => {
                return respond(LdapResultCode::InvalidCredentials, "Invalid credentials.");
            }
            (false, false) => {}
        }
        let addr = Some(session.peer);
        let tree = &self.settings.tree;
        let result = match tree.place_of(&req.dn) {
            Place::Service(client_id) => {
                self.services
                    .directory_bind_api_key(&client_id, &password, addr)
                    .await
            }
            // `uid=`, `cn=`, `mail=` under ou=people; a bare username or email too.
            Place::User(name) => {
                self.services
                    .directory_bind_password(&name, password, addr)
                    .await
            }
            _ => {
                // Anything else is checked like an unknown user: the same answer and
                // the same argon2 work.
                self.services
                    .directory_bind_password(&req.dn, password, addr)
                    .await
            }
        };
        match result {
            Ok(reader) => {
                tracing::info!(user_id = %reader.user.id, sees_all = reader.sees_all, "LDAP bind");
                session.reader = Some(reader);
                respond(LdapResultCode::Success, "")
            }
            Err(e) => {
                let (code, message) = grant_error(&e);
                tracing::info!(outcome = e.outcome(), "LDAP bind refused");
                respond(code, &message)
            }
        }
    }

    /// Compare (RFC 4511 §4.10): `compareTrue` when the entry holds the value (matched
    /// as a search's equality filter would), `compareFalse` when it exists without it,
    /// and a search's error otherwise (`noSuchObject` for an entry the client cannot see).
    async fn compare(
        &self,
        id: i32,
        req: ldap3_proto::proto::LdapCompareRequest,
        session: &mut Session,
    ) -> LdapMsg {
        let respond = |code, message: &str| LdapMsg {
            msgid: id,
            op: LdapOp::CompareResult(result(code, message)),
            ctrl: Vec::new(),
        };
        let Ok(value) = String::from_utf8(req.val) else {
            return respond(
                LdapResultCode::InvalidAttributeSyntax,
                "The value is not text.",
            );
        };
        if let Err(msg) = self.refresh(session).await {
            return respond(LdapResultCode::Other, &msg);
        }
        let probe = |filter: ldap3_proto::proto::LdapFilter| {
            let dn = req.dn.clone();
            let reader = session.reader.clone();
            async move {
                let request = search::Request {
                    base: &dn,
                    scope: &ldap3_proto::proto::LdapSearchScope::Base,
                    filter: &filter,
                    selection: Selection::new(&["1.1".to_owned()], false),
                    size_limit: 1,
                    time_limit: 0,
                    paged: None,
                };
                search::run(
                    &self.services,
                    &self.settings.tree,
                    self.settings.tls.is_some(),
                    reader.as_ref(),
                    request,
                )
                .await
            }
        };
        let equal = probe(ldap3_proto::proto::LdapFilter::Equality(req.atype, value)).await;
        if equal.code != LdapResultCode::Success {
            return respond(equal.code, &equal.message);
        }
        if !equal.entries.is_empty() {
            return respond(LdapResultCode::CompareTrue, "");
        }
        let exists = probe(ldap3_proto::proto::LdapFilter::Present(
            "objectClass".into(),
        ))
        .await;
        match (exists.code, exists.entries.is_empty()) {
            (LdapResultCode::Success, false) => respond(LdapResultCode::CompareFalse, ""),
            (LdapResultCode::Success, true) => {
                respond(LdapResultCode::NoSuchObject, "No such entry.")
            }
            (code, _) => respond(code, &exists.message),
        }
    }

    async fn search(
        &self,
        id: i32,
        req: &LdapSearchRequest,
        paged: Option<(usize, Vec<u8>)>,
        session: &mut Session,
    ) -> Vec<LdapMsg> {
        let done = |code, message: &str, matched: String| LdapMsg {
            msgid: id,
            op: LdapOp::SearchResultDone(LdapResult {
                code,
                matcheddn: matched,
                message: message.to_owned(),
                referral: Vec::new(),
            }),
            ctrl: Vec::new(),
        };
        let (depth, nodes) = filter::size(&req.filter);
        if depth > filter::MAX_DEPTH || nodes > filter::MAX_NODES {
            return vec![done(
                LdapResultCode::UnwillingToPerform,
                "The filter is nested too deeply or too large.",
                String::new(),
            )];
        }
        if let Err(msg) = self.refresh(session).await {
            return vec![done(LdapResultCode::Other, &msg, String::new())];
        }
        let request = search::Request {
            base: &req.base,
            scope: &req.scope,
            filter: &req.filter,
            selection: Selection::new(&req.attrs, req.typesonly),
            size_limit: usize::try_from(req.sizelimit).unwrap_or(0),
            time_limit: u64::try_from(req.timelimit).unwrap_or(0),
            paged,
        };
        let outcome = search::run(
            &self.services,
            &self.settings.tree,
            self.settings.tls.is_some(),
            session.reader.as_ref(),
            request,
        )
        .await;
        let mut replies: Vec<LdapMsg> = outcome
            .entries
            .into_iter()
            .map(|e| LdapMsg {
                msgid: id,
                op: LdapOp::SearchResultEntry(e),
                ctrl: Vec::new(),
            })
            .collect();
        let mut last = done(outcome.code, &outcome.message, outcome.matched);
        if let Some(cookie) = outcome.cookie {
            last.ctrl
                .push(LdapControl::SimplePagedResults { size: 0, cookie });
        }
        replies.push(last);
        replies
    }

    /// Re-reads the bound account: one suspended, locked, expired or deleted since the
    /// bind reads as anonymous from now on.
    async fn refresh(&self, session: &mut Session) -> Result<(), String> {
        let Some(bound) = &session.reader else {
            return Ok(());
        };
        match self.services.directory_reader_now(bound).await {
            Ok(now) => {
                session.reader = now;
                Ok(())
            }
            Err(e) => {
                let log_id = uuid::Uuid::new_v4();
                tracing::error!(%log_id, error = %e, "reading the bound account failed");
                Err(format!("Internal error; logId {log_id}."))
            }
        }
    }

    async fn extended(
        &self,
        id: i32,
        req: LdapExtendedRequest,
        session: &mut Session,
    ) -> (Vec<LdapMsg>, Next) {
        let respond = |code, message: &str, name: Option<&str>, value: Option<Vec<u8>>| LdapMsg {
            msgid: id,
            op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: result(code, message),
                name: name.map(str::to_owned),
                value,
            }),
            ctrl: Vec::new(),
        };
        match req.name.as_str() {
            OID_WHOAMI => {
                if let Err(msg) = self.refresh(session).await {
                    return (
                        vec![respond(LdapResultCode::Other, &msg, None, None)],
                        Next::Continue,
                    );
                }
                let authzid = match &session.reader {
                    None => String::new(),
                    Some(r) => match &r.client_id {
                        Some(client) => format!("dn:{}", self.settings.tree.service_dn(client)),
                        None => format!("dn:{}", self.settings.tree.user_dn(&r.user.username)),
                    },
                };
                (
                    vec![respond(
                        LdapResultCode::Success,
                        "",
                        None,
                        Some(authzid.into_bytes()),
                    )],
                    Next::Continue,
                )
            }
            OID_PASSWORD_MODIFY => {
                let (code, message) = self.password_modify(&req, session).await;
                (vec![respond(code, &message, None, None)], Next::Continue)
            }
            OID_START_TLS => {
                if self.settings.tls.is_none() {
                    return (
                        vec![respond(
                            LdapResultCode::ProtocolError,
                            "StartTLS is not configured.",
                            Some(OID_START_TLS),
                            None,
                        )],
                        Next::Continue,
                    );
                }
                if session.tls {
                    return (
                        vec![respond(
                            LdapResultCode::OperationsError,
                            "TLS is already established.",
                            Some(OID_START_TLS),
                            None,
                        )],
                        Next::Continue,
                    );
                }
                (
                    vec![respond(
                        LdapResultCode::Success,
                        "",
                        Some(OID_START_TLS),
                        None,
                    )],
                    Next::StartTls,
                )
            }
            _ => (
                vec![respond(
                    LdapResultCode::ProtocolError,
                    "Unsupported extended operation.",
                    None,
                    None,
                )],
                Next::Continue,
            ),
        }
    }

    async fn password_modify(
        &self,
        req: &LdapExtendedRequest,
        session: &mut Session,
    ) -> (LdapResultCode, String) {
        let Ok(pm) = LdapPasswordModifyRequest::try_from(req) else {
            return (
                LdapResultCode::ProtocolError,
                "Malformed password modify request.".into(),
            );
        };
        let Some(new) = pm.new_password.filter(|p| !p.is_empty()) else {
            return (
                LdapResultCode::UnwillingToPerform,
                "A new password is required; this server does not generate one.".into(),
            );
        };
        if let Err(msg) = self.refresh(session).await {
            return (LdapResultCode::Other, msg);
        }
        let tree = &self.settings.tree;
        let named = pm.user_identity.as_deref().map(|who| {
            match tree.place_of(who.strip_prefix("dn:").unwrap_or(who)) {
                Place::User(name) => Some(name),
                _ if !who.contains('=') => Some(who.strip_prefix("u:").unwrap_or(who).to_owned()),
                _ => None,
            }
        });
        let reader = session.reader.as_ref();
        // One's own password only: a named user must be the bound one.
        let name = match (reader, named) {
            (_, Some(None)) => {
                return (LdapResultCode::NoSuchObject, "No such user.".into());
            }
            (Some(r), Some(Some(name))) => {
                let lower = name.to_lowercase();
                if lower != r.user.username.to_lowercase() && lower != r.user.email.to_lowercase() {
                    return (
                        LdapResultCode::InsufficentAccessRights,
                        "Only your own password can be changed over LDAP.".into(),
                    );
                }
                None
            }
            (None, Some(Some(name))) => Some(name),
            (Some(_), None) => None,
            (None, None) => {
                return (
                    LdapResultCode::UnwillingToPerform,
                    "Bind first, or name the user and give the old password.".into(),
                );
            }
        };
        let outcome = self
            .services
            .directory_set_password(
                reader,
                name.as_deref(),
                pm.old_password,
                new,
                Some(session.peer),
            )
            .await;
        match outcome {
            Ok(()) => (LdapResultCode::Success, String::new()),
            Err(e) => service_error(&e),
        }
    }
}

/// A client's session: who it is bound as.
struct Session {
    reader: Option<Reader>,
    peer: IpAddr,
    tls: bool,
}

/// What a connection does after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Continue,
    Close,
    StartTls,
}

fn framed<S: AsyncRead + AsyncWrite>(io: S) -> Framed<S, LdapCodec> {
    Framed::new(io, LdapCodec::new(Some(MAX_MESSAGE), Some(MAX_BER_DEPTH)))
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_owned(),
        referral: Vec::new(),
    }
}

/// A notice of disconnection (RFC 4511 §4.4.1).
fn notice(code: LdapResultCode, message: &str) -> LdapMsg {
    ldap3_proto::DisconnectionNotice::gen_response(code, message)
}

/// Whether a control is marked critical. Controls whose decoded form lost the flag are
/// taken as not critical.
fn is_critical(c: &LdapControl) -> bool {
    match c {
        LdapControl::Unknown { criticality, .. }
        | LdapControl::SyncRequest { criticality, .. }
        | LdapControl::ManageDsaIT { criticality }
        | LdapControl::PasswordPolicyRequest { criticality }
        | LdapControl::SearchOptions { criticality, .. }
        | LdapControl::ShowDeleted { criticality }
        | LdapControl::SdFlags { criticality, .. }
        | LdapControl::ExtendedDn { criticality, .. } => *criticality,
        _ => false,
    }
}

/// The response to a request with one result, or `None` for requests that have none.
fn reply(op: &LdapOp, id: i32, code: LdapResultCode, message: &str) -> Option<LdapMsg> {
    let res = result(code, message);
    let op = match op {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(LdapBindResponse {
            res,
            saslcreds: None,
        }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(res),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(res),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(res),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(res),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(res),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(res),
        LdapOp::ExtendedRequest(_) => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res,
            name: None,
            value: None,
        }),
        _ => return None,
    };
    Some(LdapMsg {
        msgid: id,
        op,
        ctrl: Vec::new(),
    })
}

/// A bind's failure as an LDAP result. Every wrong credential is the same
/// `invalidCredentials`, whatever the reason, as the token endpoint's `invalid_grant`.
fn grant_error(e: &GrantError) -> (LdapResultCode, String) {
    match e {
        GrantError::InvalidGrant | GrantError::InvalidClient => (
            LdapResultCode::InvalidCredentials,
            "Invalid credentials.".into(),
        ),
        GrantError::RateLimited {
            retry_after_secs, ..
        } => (
            LdapResultCode::Busy,
            format!("Too many attempts; retry after {retry_after_secs} s."),
        ),
        GrantError::InvalidRequest(why) => (LdapResultCode::ProtocolError, (*why).to_owned()),
        GrantError::UnsupportedGrantType => (LdapResultCode::AuthMethodNotSupported, String::new()),
        GrantError::Internal(e) => service_error(e),
    }
}

/// A service error as an LDAP result.
fn service_error(e: &crate::service::Error) -> (LdapResultCode, String) {
    use crate::service::Error;
    match e {
        Error::BadRequest(m) => (LdapResultCode::UnwillingToPerform, m.clone()),
        Error::Unauthenticated => (
            LdapResultCode::InvalidCredentials,
            "Invalid credentials.".into(),
        ),
        Error::Forbidden(m) => (LdapResultCode::InsufficentAccessRights, m.clone()),
        Error::NotFound { message, .. } => (LdapResultCode::NoSuchObject, message.clone()),
        // A wrong old password, or one the policy refuses.
        Error::Conflict(m) => (LdapResultCode::InvalidCredentials, m.clone()),
        Error::Invalid(f) => (LdapResultCode::ConstraintViolation, f.reason.clone()),
        Error::RateLimited { retry_after_secs } => (
            LdapResultCode::Busy,
            format!("Too many attempts; retry after {retry_after_secs} s."),
        ),
        Error::Busy => (LdapResultCode::Busy, e.to_string()),
        Error::Internal(_) => {
            let log_id = uuid::Uuid::new_v4();
            tracing::error!(%log_id, error = %e, "LDAP operation failed");
            (
                LdapResultCode::Other,
                format!("Internal error; logId {log_id}."),
            )
        }
    }
}

/// The metrics label of a request.
fn op_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindRequest(_) => "bind",
        LdapOp::UnbindRequest => "unbind",
        LdapOp::SearchRequest(_) => "search",
        LdapOp::ExtendedRequest(r) => match r.name.as_str() {
            OID_WHOAMI => "whoami",
            OID_PASSWORD_MODIFY => "passwd",
            OID_START_TLS => "starttls",
            _ => "extended",
        },
        LdapOp::AbandonRequest(_) => "abandon",
        LdapOp::CompareRequest(_) => "compare",
        LdapOp::ModifyRequest(_) => "modify",
        LdapOp::AddRequest(_) => "add",
        LdapOp::DelRequest(_) => "delete",
        LdapOp::ModifyDNRequest(_) => "modrdn",
        _ => "other",
    }
}

/// The metrics label of a reply's result code.
fn result_name(msg: &LdapMsg) -> &'static str {
    let code = match &msg.op {
        LdapOp::BindResponse(r) => &r.res.code,
        LdapOp::SearchResultDone(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::AddResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r) => &r.code,
        LdapOp::ExtendedResponse(r) => &r.res.code,
        _ => return "none",
    };
    use LdapResultCode as C;
    match code {
        C::Success => "success",
        C::ProtocolError => "protocolError",
        C::TimeLimitExceeded => "timeLimitExceeded",
        C::SizeLimitExceeded => "sizeLimitExceeded",
        C::AuthMethodNotSupported => "authMethodNotSupported",
        C::UnavailableCriticalExtension => "unavailableCriticalExtension",
        C::NoSuchObject => "noSuchObject",
        C::InvalidDNSyntax => "invalidDNSyntax",
        C::InvalidCredentials => "invalidCredentials",
        C::InsufficentAccessRights => "insufficientAccessRights",
        C::Busy => "busy",
        C::Unavailable => "unavailable",
        C::UnwillingToPerform => "unwillingToPerform",
        C::ConstraintViolation => "constraintViolation",
        C::CompareTrue => "compareTrue",
        C::CompareFalse => "compareFalse",
        C::OperationsError => "operationsError",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_critical_controls_refuse_an_operation() {
        let unknown = |criticality| LdapControl::Unknown {
            oid: "1.2.3.4".into(),
            criticality,
            value: None,
        };
        assert!(is_critical(&unknown(true)));
        assert!(!is_critical(&unknown(false)));
        assert!(!is_critical(&LdapControl::SimplePagedResults {
            size: 10,
            cookie: Vec::new()
        }));
        let search = LdapOp::DelRequest("cn=x".into());
        let r = reply(&search, 7, LdapResultCode::UnwillingToPerform, "no").unwrap();
        assert_eq!(r.msgid, 7);
        assert!(
            matches!(r.op, LdapOp::DelResponse(ref res) if res.code == LdapResultCode::UnwillingToPerform)
        );
        assert!(reply(&LdapOp::UnbindRequest, 1, LdapResultCode::Success, "").is_none());
    }

    #[test]
    fn every_wrong_credential_reads_the_same() {
        assert_eq!(
            grant_error(&GrantError::InvalidGrant),
            grant_error(&GrantError::InvalidClient)
        );
    }
}
