//! The SCIM schemas gatehouse serves (RFC 7643 §4, §8.7): the core User schema, the
//! enterprise User extension and the core Group schema, as one table that both answers
//! `/Schemas` and checks request bodies (names matched case-insensitively and rewritten
//! to their canonical spelling, values checked against their types, booleans sent as
//! strings read as booleans).

use serde_json::{Map, Value, json};

use super::error::ScimError;

/// The core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// A list response.
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// A `.search` request.
pub const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// A bulk request.
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// A bulk response.
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// An error.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Text.
    String,
    /// `true` / `false`.
    Boolean,
    /// A URI.
    Reference,
    /// Base64 text.
    Binary,
    /// An object of sub-attributes.
    Complex,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Reference => "reference",
            Self::Binary => "binary",
            Self::Complex => "complex",
        }
    }
}

/// Who may write an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Clients may set it.
    ReadWrite,
    /// The server sets it; clients' values are ignored.
    ReadOnly,
    /// Set on creation only.
    Immutable,
    /// Clients set it; it is never returned.
    WriteOnly,
}

/// One attribute of a schema.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Canonical name.
    pub name: &'static str,
    /// Type.
    pub ty: Type,
    /// Multi-valued.
    pub multi: bool,
    /// Required.
    pub required: bool,
    /// Mutability.
    pub mutability: Mutability,
    /// Case-exact comparisons.
    pub case_exact: bool,
    /// `server` uniqueness (else none).
    pub unique: bool,
    /// Canonical values, if any.
    pub canonical: &'static [&'static str],
    /// Referenced resource types (`reference` attributes).
    pub refs: &'static [&'static str],
    /// Sub-attributes (`complex` attributes).
    pub sub: &'static [Attr],
    /// One line for `/Schemas`.
    pub description: &'static str,
}

const fn a(name: &'static str, ty: Type, description: &'static str) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        mutability: Mutability::ReadWrite,
        case_exact: false,
        unique: false,
        canonical: &[],
        refs: &[],
        sub: &[],
        description,
    }
}

const fn s(name: &'static str, description: &'static str) -> Attr {
    a(name, Type::String, description)
}

impl Attr {
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical = values;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.refs = types;
        self
    }
    const fn complex(mut self, sub: &'static [Attr]) -> Self {
        self.ty = Type::Complex;
        self.sub = sub;
        self
    }

    /// A sub-attribute by name, case-insensitively.
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr> {
        self.sub.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    fn describe(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.ty.name()));
        m.insert("multiValued".into(), json!(self.multi));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if self.ty != Type::Complex && self.ty != Type::Boolean {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical));
        }
        if !self.refs.is_empty() {
            m.insert("referenceTypes".into(), json!(self.refs));
        }
        if !self.sub.is_empty() {
            let sub: Vec<Value> = self.sub.iter().map(Attr::describe).collect();
            m.insert("subAttributes".into(), Value::Array(sub));
        }
        let (mutability, returned) = match self.mutability {
            Mutability::ReadWrite => ("readWrite", "default"),
            Mutability::ReadOnly => ("readOnly", "default"),
            Mutability::Immutable => ("immutable", "default"),
            Mutability::WriteOnly => ("writeOnly", "never"),
        };
        m.insert("mutability".into(), json!(mutability));
        m.insert("returned".into(), json!(returned));
        m.insert(
            "uniqueness".into(),
            json!(if self.unique { "server" } else { "none" }),
        );
        Value::Object(m)
    }
}

const PLURAL_TYPES: &[&str] = &["work", "home", "other"];

const EMAIL_SUB: &[Attr] = &[
    s("value", "The email address.").required(),
    s("display", "A human-readable name."),
    s("type", "work, home or other.").canonical(PLURAL_TYPES),
    a("primary", Type::Boolean, "The primary address."),
];
const PHONE_SUB: &[Attr] = &[
    s("value", "The phone number."),
    s("display", "A human-readable name."),
    s("type", "work, home, mobile, fax, pager or other.")
        .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    a("primary", Type::Boolean, "The primary number."),
];
const IM_SUB: &[Attr] = &[
    s("value", "The instant-messaging address."),
    s("display", "A human-readable name."),
    s("type", "The service.")
        .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    a("primary", Type::Boolean, "The primary address."),
];
const PHOTO_SUB: &[Attr] = &[
    a("value", Type::Reference, "The URL of the image.").refs(&["external"]),
    s("display", "A human-readable name."),
    s("type", "photo or thumbnail.").canonical(&["photo", "thumbnail"]),
    a("primary", Type::Boolean, "The primary photo."),
];
const ADDRESS_SUB: &[Attr] = &[
    s("formatted", "The full address."),
    s("streetAddress", "Street."),
    s("locality", "City or locality."),
    s("region", "State or region."),
    s("postalCode", "Postal code."),
    s("country", "Country (ISO 3166-1 alpha-2)."),
    s("type", "work, home or other.").canonical(PLURAL_TYPES),
    a("primary", Type::Boolean, "The primary address."),
];
const GROUP_REF_SUB: &[Attr] = &[
    s("value", "The group's id.").read_only(),
    a("$ref", Type::Reference, "The group's URI.")
        .refs(&["User", "Group"])
        .read_only(),
    s("display", "The group's name.").read_only(),
    s("type", "direct or indirect.")
        .canonical(&["direct", "indirect"])
        .read_only(),
];
const VALUE_SUB: &[Attr] = &[
    s("value", "The value."),
    s("display", "A human-readable name."),
    s("type", "A label."),
    a("primary", Type::Boolean, "The primary value."),
];
const CERT_SUB: &[Attr] = &[
    a("value", Type::Binary, "A DER certificate, base64."),
    s("display", "A human-readable name."),
    s("type", "A label."),
    a("primary", Type::Boolean, "The primary certificate."),
];

/// The core User schema's attributes. `emails` and `active` are required here, unlike
/// in RFC 7643: gatehouse keeps an email for every user, and every user is active or
/// suspended (docs/scim.md).
pub const USER_ATTRS: &[Attr] = &[
    s(
        "userName",
        "The username; unique, case-insensitively, also among emails.",
    )
    .required()
    .unique(),
    s("name", "The user's name.").complex(&[
        s("formatted", "The full name."),
        s("familyName", "The family name (gatehouse's lastName)."),
        s("givenName", "The given name (gatehouse's firstName)."),
        s("middleName", "The middle name."),
        s("honorificPrefix", "E.g. Ms."),
        s("honorificSuffix", "E.g. III."),
    ]),
    s("displayName", "The name to display."),
    s("nickName", "The casual name."),
    a("profileUrl", Type::Reference, "The user's online profile.").refs(&["external"]),
    s("title", "The job title."),
    s("userType", "E.g. Employee or Contractor."),
    s(
        "preferredLanguage",
        "The preferred language (gatehouse's language).",
    ),
    s("locale", "The locale, e.g. en-US."),
    s(
        "timezone",
        "The time zone, e.g. Europe/London (gatehouse's timezone).",
    ),
    a(
        "active",
        Type::Boolean,
        "false: suspended (no sign-in, tokens refused).",
    )
    .required(),
    s(
        "password",
        "The password; the password policy applies. Never returned.",
    )
    .write_only(),
    a(
        "emails",
        Type::Complex,
        "Email addresses; the primary one is gatehouse's email.",
    )
    .multi()
    .required()
    .complex(EMAIL_SUB),
    a("phoneNumbers", Type::Complex, "Phone numbers.")
        .multi()
        .complex(PHONE_SUB),
    a("ims", Type::Complex, "Instant-messaging addresses.")
        .multi()
        .complex(IM_SUB),
    a("photos", Type::Complex, "Photos.")
        .multi()
        .complex(PHOTO_SUB),
    a("addresses", Type::Complex, "Physical addresses.")
        .multi()
        .complex(ADDRESS_SUB),
    a(
        "groups",
        Type::Complex,
        "The groups the user is in; read-only.",
    )
    .multi()
    .read_only()
    .complex(GROUP_REF_SUB),
    a("entitlements", Type::Complex, "Entitlements.")
        .multi()
        .complex(VALUE_SUB),
    a("roles", Type::Complex, "Roles.")
        .multi()
        .complex(VALUE_SUB),
    a("x509Certificates", Type::Complex, "Certificates.")
        .multi()
        .complex(CERT_SUB),
];

/// The enterprise extension's attributes.
pub const ENTERPRISE_ATTRS: &[Attr] = &[
    s("employeeNumber", "The employee number."),
    s("costCenter", "The cost center."),
    s("organization", "The organization."),
    s("division", "The division."),
    s("department", "The department."),
    s("manager", "The user's manager.").complex(&[
        s("value", "The manager's id."),
        a("$ref", Type::Reference, "The manager's URI.").refs(&["User"]),
        s("displayName", "The manager's name.").read_only(),
    ]),
];

/// The core Group schema's attributes.
pub const GROUP_ATTRS: &[Attr] = &[
    s(
        "displayName",
        "The group's name; unique, case-insensitively.",
    )
    .required()
    .unique(),
    a(
        "members",
        Type::Complex,
        "Direct members: users and child groups.",
    )
    .multi()
    .complex(&[
        s("value", "The member's id.").immutable(),
        a("$ref", Type::Reference, "The member's URI.")
            .refs(&["User", "Group"])
            .immutable(),
        s("type", "User or Group.")
            .canonical(&["User", "Group"])
            .immutable(),
        s("display", "The member's name.").read_only(),
    ]),
];

/// The common attribute `externalId` (RFC 7643 §3.1), on every resource.
pub const EXTERNAL_ID: Attr = s("externalId", "The provisioning client's own id.").exact();

/// A schema: URI, name and attributes.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The URI.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// What it describes.
    pub description: &'static str,
    /// Its attributes.
    pub attrs: &'static [Attr],
}

/// Every schema served.
pub const SCHEMAS: &[Schema] = &[
    Schema {
        id: USER,
        name: "User",
        description: "User Account",
        attrs: USER_ATTRS,
    },
    Schema {
        id: ENTERPRISE,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attrs: ENTERPRISE_ATTRS,
    },
    Schema {
        id: GROUP,
        name: "Group",
        description: "Group",
        attrs: GROUP_ATTRS,
    },
];

/// The `/Schemas` representation of a schema.
pub fn describe(schema: &Schema, base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attrs.iter().map(Attr::describe).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{}", schema.id),
        },
    })
}

/// The attributes of a resource type: its schema's, and those of its extension.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSchema {
    /// The core schema.
    pub core: &'static Schema,
    /// The extension, if any.
    pub extension: Option<&'static Schema>,
}

/// Users: core User plus the enterprise extension.
pub const USERS: ResourceSchema = ResourceSchema {
    core: &SCHEMAS[0],
    extension: Some(&SCHEMAS[1]),
};

/// Groups.
pub const GROUPS: ResourceSchema = ResourceSchema {
    core: &SCHEMAS[2],
    extension: None,
};

/// Top-level attributes that are the server's, whatever a client sends.
const SERVER_ATTRS: &[&str] = &["id", "meta", "schemas"];

impl ResourceSchema {
    /// A core attribute (or `externalId`) by name, case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        if name.eq_ignore_ascii_case(EXTERNAL_ID.name) {
            return Some(&EXTERNAL_ID);
        }
        self.core
            .attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The extension, if `uri` names it (case-insensitively).
    pub fn extension_named(&self, uri: &str) -> Option<&'static Schema> {
        self.extension.filter(|e| e.id.eq_ignore_ascii_case(uri))
    }

    /// Checks a resource body and returns it with canonical attribute names, booleans
    /// as booleans, and the server's attributes (`id`, `meta`) and read-only ones left
    /// out. Unknown attributes, a missing or wrong `schemas`, and values of the wrong
    /// type are 400s.
    pub fn read_body(&self, body: Value) -> Result<Map<String, Value>, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax("The body must be a JSON object."));
        };
        let schemas: Vec<String> = match map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
            .map(|(_, v)| v)
        {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| ScimError::invalid_syntax("'schemas' must list URIs."))?,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "'schemas' must list {}.",
                    self.core.id
                )));
            }
        };
        if !schemas.iter().any(|s| s.eq_ignore_ascii_case(self.core.id)) {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must include {}.",
                self.core.id
            )));
        }
        for s in &schemas {
            if !s.eq_ignore_ascii_case(self.core.id) && self.extension_named(s).is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "Unknown schema '{s}' in 'schemas'."
                )));
            }
        }
        let mut out = Map::new();
        for (key, value) in map {
            if SERVER_ATTRS.iter().any(|s| s.eq_ignore_ascii_case(&key)) {
                continue;
            }
            if let Some(ext) = self.extension_named(&key) {
                let Value::Object(inner) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "'{}' must be an object.",
                        ext.id
                    )));
                };
                let mut checked = Map::new();
                for (k, v) in inner {
                    if k.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let attr = ext
                        .attrs
                        .iter()
                        .find(|a| a.name.eq_ignore_ascii_case(&k))
                        .ok_or_else(|| unknown(&format!("{}:{k}", ext.id)))?;
                    if let Some(v) = check_value(attr, v, attr.name)? {
                        checked.insert(attr.name.to_owned(), v);
                    }
                }
                out.insert(ext.id.to_owned(), Value::Object(checked));
                continue;
            }
            // `urn:…:User:userName`: a core attribute written with its schema.
            let name = match key.rsplit_once(':') {
                Some((uri, name)) if uri.eq_ignore_ascii_case(self.core.id) => name,
                _ => key.as_str(),
            };
            let attr = self.attr(name).ok_or_else(|| unknown(&key))?;
            if attr.mutability == Mutability::ReadOnly {
                continue;
            }
            if let Some(v) = check_value(attr, value, attr.name)? {
                out.insert(attr.name.to_owned(), v);
            }
        }
        Ok(out)
    }
}

fn unknown(name: &str) -> ScimError {
    ScimError::invalid_syntax(format!("Unknown attribute '{name}'."))
}

/// Checks one attribute's value against its definition; `None` for `null` (and for
/// an empty list), which means "unassigned". Read-only sub-attributes are dropped.
pub fn check_value(attr: &Attr, value: Value, path: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items = match value {
            Value::Array(items) => items,
            // A single value where a list is expected: one value (lenient, as clients
            // send it so).
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = check_single(attr, item, path)? {
                out.push(v);
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    check_single(attr, value, path)
}

fn check_single(attr: &Attr, value: Value, path: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |what: &str| ScimError::invalid_value(format!("'{path}' must be {what}."));
    Ok(Some(match attr.ty {
        Type::String | Type::Reference | Type::Binary => match value {
            Value::String(s) => Value::String(s),
            Value::Null => return Ok(None),
            _ => return Err(wrong("a string")),
        },
        Type::Boolean => match value {
            Value::Bool(b) => Value::Bool(b),
            // Entra ID sends "True" / "False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            Value::Null => return Ok(None),
            _ => return Err(wrong("true or false")),
        },
        Type::Complex => {
            let Value::Object(map) = value else {
                return Err(wrong("an object"));
            };
            let mut out = Map::new();
            for (k, v) in map {
                let sub = attr
                    .sub_attr(&k)
                    .ok_or_else(|| unknown(&format!("{path}.{k}")))?;
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = check_single(sub, v, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.to_owned(), v);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            Value::Object(out)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_and_canonicalised() {
        let body = json!({
            "schemas": [USER, ENTERPRISE],
            "id": "ignored",
            "USERNAME": "bjensen",
            "Active": "False",
            "emails": [{"VALUE": "b@x.org", "Primary": "true"}],
            "groups": [{"value": "ignored"}],
            ENTERPRISE: {"EMPLOYEENUMBER": "42"},
            "urn:ietf:params:scim:schemas:core:2.0:User:title": "Dr"
        });
        let out = USERS.read_body(body).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({
                "userName": "bjensen",
                "active": false,
                "emails": [{"value": "b@x.org", "primary": true}],
                ENTERPRISE: {"employeeNumber": "42"},
                "title": "Dr"
            })
        );
    }

    #[test]
    fn bad_bodies_are_400s() {
        for (body, why) in [
            (json!([]), "object"),
            (json!({"userName": "x"}), "schemas"),
            (json!({"schemas": [GROUP], "userName": "x"}), "must include"),
            (
                json!({"schemas": [USER, "urn:x"], "userName": "x"}),
                "Unknown schema",
            ),
            (
                json!({"schemas": [USER], "shoeSize": 42}),
                "Unknown attribute 'shoeSize'",
            ),
            (
                json!({"schemas": [USER], "active": "maybe"}),
                "true or false",
            ),
            (json!({"schemas": [USER], "userName": 5}), "a string"),
            (json!({"schemas": [USER], "name": "x"}), "an object"),
            (json!({"schemas": [USER], "emails": [{"x": 1}]}), "emails.x"),
            (json!({"schemas": [USER], ENTERPRISE: {"pay": 1}}), "pay"),
        ] {
            let err = USERS.read_body(body.clone()).expect_err(&body.to_string());
            assert_eq!(err.status.as_u16(), 400, "{body}");
            assert!(err.detail.contains(why), "{body}: {}", err.detail);
        }
    }
}
