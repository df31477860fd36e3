//! Prometheus metrics: one registry per running server (no process-wide recorder, so
//! several servers in one test process never mix their numbers), rendered as
//! OpenMetrics text by `GET /metrics`.
//!
//! Every label value comes from a small closed set: routes are the matched route
//! templates (`/api/security/users/{user}`), never raw paths; methods outside the
//! standard ones are `other`; grant types outside the ones gatehouse issues are `other`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::store::PoolStats;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the request-latency buckets: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of the request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// Labels of the login counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    grant: &'static str,
    outcome: &'static str,
}

/// Labels of the rate-limit counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// Labels of the webhook delivery counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    outcome: &'static str,
}

/// Labels of the LDAP operation metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapLabels {
    op: &'static str,
    result: &'static str,
}

/// Labels of the LDAP connection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LdapConnectionLabels {
    outcome: &'static str,
}

/// Labels of the pool gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;
type LdapHistogramFamily = Family<LdapLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    logins: Family<LoginLabels, Counter>,
    lockouts: Counter,
    rate_limited: Family<LimitLabels, Counter>,
    pool_open: Family<PoolLabels, Gauge>,
    pool_idle: Family<PoolLabels, Gauge>,
    pool_max: Family<PoolLabels, Gauge>,
    deliveries: Family<DeliveryLabels, Counter>,
    outbox_depth: Gauge,
    outbox_age: Gauge,
    audit_events: Gauge,
    ldap_operations: Family<LdapLabels, Counter>,
    ldap_latency: LdapHistogramFamily,
    ldap_connections: Family<LdapConnectionLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every gatehouse metric registered (all at zero).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to producing its response",
            Unit::Seconds,
            latency.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Token requests by grant and outcome (success, invalid_grant, invalid_client, \
             invalid_request, unsupported_grant_type, rate_limited, error)",
            logins.clone(),
        );
        let lockouts = Counter::default();
        registry.register(
            "lockouts",
            "Accounts locked after repeated failed logins",
            lockouts.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "login_rate_limited",
            "Token requests refused with 429, by the limit that refused them (ip, user)",
            rate_limited.clone(),
        );
        let pool_open = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Open database connections, by pool",
            pool_open.clone(),
        );
        let pool_idle = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_idle_connections",
            "Open database connections not in use, by pool",
            pool_idle.clone(),
        );
        let pool_max = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections a pool opens",
            pool_max.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, failed)",
            deliveries.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "webhook_outbox_depth",
            "Webhook deliveries pending, all endpoints (read each delivery round)",
            outbox_depth.clone(),
        );
        let outbox_age = Gauge::default();
        registry.register_with_unit(
            "webhook_outbox_oldest_age",
            "Age of the oldest pending webhook delivery",
            Unit::Other("milliseconds".into()),
            outbox_age.clone(),
        );
        let audit_events = Gauge::default();
        registry.register(
            "audit_events_recorded",
            "Audit events recorded since the database was made (the newest event id)",
            audit_events.clone(),
        );
        let ldap_operations = Family::<LdapLabels, Counter>::default();
        registry.register(
            "ldap_operations",
            "LDAP operations answered, by operation (bind, search, whoami, passwd, ...) and \
             result code",
            ldap_operations.clone(),
        );
        let ldap_latency: LdapHistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "ldap_operation_duration",
            "Time from reading an LDAP request to producing its replies",
            Unit::Seconds,
            ldap_latency.clone(),
        );
        let ldap_connections = Family::<LdapConnectionLabels, Counter>::default();
        registry.register(
            "ldap_connections",
            "LDAP connections, by outcome (accepted, refused: over --ldap-max-connections)",
            ldap_connections.clone(),
        );
        Self {
            registry,
            deliveries,
            outbox_depth,
            outbox_age,
            audit_events,
            ldap_operations,
            ldap_latency,
            ldap_connections,
            requests,
            latency,
            logins,
            lockouts,
            rate_limited,
            pool_open,
            pool_idle,
            pool_max,
        }
    }

    /// Counts an answered request. `route` is the matched route template, or `None`
    /// when no route matched.
    pub fn request(&self, method: &str, route: Option<&str>, status: u16, seconds: f64) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.unwrap_or("unmatched").to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Counts a token request by its grant type (as sent) and outcome.
    pub fn login(&self, grant_type: Option<&str>, outcome: &'static str) {
        let labels = LoginLabels {
            grant: grant_label(grant_type),
            outcome,
        };
        self.logins.get_or_create(&labels).inc();
    }

    /// Counts a webhook delivery attempt by outcome.
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels { outcome })
            .inc();
    }

    /// Sets the outbox gauges and the count of recorded events.
    pub fn outbox(&self, depth: i64, oldest_age_ms: i64, events: i64) {
        self.outbox_depth.set(depth);
        self.outbox_age.set(oldest_age_ms);
        self.audit_events.set(events);
    }

    /// Counts and times an LDAP operation by its kind and result code (both from closed
    /// sets chosen by the LDAP front door).
    pub fn ldap_operation(&self, op: &'static str, result: &'static str, seconds: f64) {
        let labels = LdapLabels { op, result };
        self.ldap_operations.get_or_create(&labels).inc();
        self.ldap_latency.get_or_create(&labels).observe(seconds);
    }

    /// Counts an LDAP connection, `accepted` or `refused`.
    pub fn ldap_connection(&self, outcome: &'static str) {
        self.ldap_connections
            .get_or_create(&LdapConnectionLabels { outcome })
            .inc();
    }

    /// Counts an account lockout.
    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    /// Counts a request refused by a rate limit (`ip` or `user`).
    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// The OpenMetrics text of every metric, after setting the pool gauges from `pools`.
    pub fn render(&self, pools: &[PoolStats]) -> String {
        for p in pools {
            let labels = PoolLabels { pool: p.pool };
            self.pool_open.get_or_create(&labels).set(i64::from(p.size));
            self.pool_idle
                .get_or_create(&labels)
                .set(i64::try_from(p.idle).unwrap_or(i64::MAX));
            self.pool_max.get_or_create(&labels).set(i64::from(p.max));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The grant label: the grant types gatehouse accepts, `none` or `other`.
fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        Some("contensis_classic" | "password") => "contensis_classic",
        Some("contensis_classic_refresh_token" | "refresh_token") => {
            "contensis_classic_refresh_token"
        }
        Some("client_credentials") => "client_credentials",
        Some("ldap") => "ldap",
        None => "none",
        Some(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_bounded_labels() {
        let m = Metrics::new();
        m.request("GET", Some("/api/security/users/{user}"), 200, 0.003);
        m.request("BREW", None, 404, 0.001);
        m.login(Some("contensis_classic"), "success");
        m.login(Some("x".repeat(100).as_str()), "unsupported_grant_type");
        m.lockout();
        m.rate_limited("ip");
        let text = m.render(&[PoolStats {
            pool: "writer",
            size: 1,
            idle: 1,
            max: 1,
        }]);
        assert!(text.contains(
            r#"gatehouse_http_requests_total{method="GET",route="/api/security/users/{user}",status="200"} 1"#
        ), "{text}");
        assert!(text.contains(r#"method="other",route="unmatched",status="404""#));
        assert!(text.contains(
            r#"gatehouse_http_request_duration_seconds_bucket{le="0.0025",method="GET",route="/api/security/users/{user}",status="200"} 0"#
        ), "{text}");
        assert!(text.contains(
            r#"gatehouse_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/security/users/{user}",status="200"} 1"#
        ), "{text}");
        assert!(
            text.contains(
                r#"gatehouse_logins_total{grant="contensis_classic",outcome="success"} 1"#
            )
        );
        assert!(text.contains(r#"grant="other",outcome="unsupported_grant_type""#));
        assert!(text.contains("gatehouse_lockouts_total 1"));
        assert!(text.contains(r#"gatehouse_login_rate_limited_total{limit="ip"} 1"#));
        assert!(text.contains(r#"gatehouse_db_pool_connections{pool="writer"} 1"#));
        assert!(text.ends_with("# EOF\n"));
    }
}
