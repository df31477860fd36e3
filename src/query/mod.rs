//! The query languages of the search and list endpoints (spec §7): ZenQL text and the
//! JSON `where`/`orderBy`, parsed into one typed AST.
//!
//! Pipeline: client input → [`zenql`], [`json`] or [`scim_filter`] → [`ast::Expr`] / [`ast::OrderBy`]
//! (fields resolved against the resource's [`ast::FieldSet`], values type-checked) →
//! `store::filter_sql` turns it into SQL with bound values.
//!
//! Architecture invariant: this module is pure. It depends on nothing else in the crate,
//! never imports axum, sqlx or tokio, and never reads the clock; date functions stay
//! symbolic until translation, which is handed the current time.

pub mod ast;
pub mod error;
pub mod json;
pub mod scim_filter;
pub mod zenql;

#[cfg(test)]
mod tests {
    /// The purity invariant above, checked by reading the sources.
    #[test]
    fn query_and_filter_sql_stay_pure() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
        let forbidden = |name: &str| {
            // Spelled in pieces so that this file does not trip its own check.
            let mut v: Vec<String> = ["axum", "sqlx", "tokio"]
                .iter()
                .flat_map(|c| [format!("use {c}"), format!("{c}::")])
                .collect();
            v.push(["SystemTime", "::now"].concat());
            v.push(["now", "_utc()"].concat());
            if name.starts_with("query/") {
                v.push(["crate::", "store"].concat());
            }
            v
        };
        let files = [
            "query/mod.rs",
            "query/ast.rs",
            "query/error.rs",
            "query/json.rs",
            "query/zenql.rs",
            "query/scim_filter.rs",
            "store/filter_sql.rs",
        ];
        for name in files {
            let text = std::fs::read_to_string(format!("{root}{name}")).unwrap();
            for bad in forbidden(name) {
                assert!(!text.contains(&bad), "{name} contains `{bad}`");
            }
        }
    }
}
