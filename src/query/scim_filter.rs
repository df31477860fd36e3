//! SCIM 2.0 filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): lexer, parser, the
//! translation into the one query AST ([`Expr`]) that ZenQL and the JSON `where` also
//! produce, and an evaluator of value filters over JSON (for PATCH paths such as
//! `members[value eq "…"]`).
//!
//! Grammar (operators, `and`/`or`/`not` and attribute names are case-insensitive; `and`
//! binds tighter than `or`):
//!
//! ```text
//! filter    := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" "(" or ")" | "(" or ")" | attrPath "[" or "]" | attrExp
//! attrExp   := attrPath "pr" | attrPath compareOp compValue
//! compareOp := eq | ne | co | sw | ew | gt | lt | ge | le
//! compValue := false | null | true | NUMBER | "JSON string"
//! attrPath  := [URI ":"] ATTRNAME ["." SUBATTR]
//! path      := attrPath | attrPath "[" or "]" ["." SUBATTR]     (PATCH only)
//! ```
//!
//! Role: SCIM's filter text in, a [`Filter`] out; [`to_expr`] maps its attributes
//! through a table the caller gives (which SCIM attribute is which resource field), so
//! a SCIM list runs through the same SQL translation as every other list. What the
//! shared AST cannot say (a filter on a sub-attribute other than the mapped one, `gt`
//! on a boolean) is a [`QueryError`], which the SCIM front door answers as
//! `invalidFilter`. Pure: no other module of the crate, no clock; input length and
//! nesting depth are capped.

use std::fmt;

use serde_json::Value as Json;

use super::ast::{self, Expr, FieldRef, FieldType, Literal, OpKind, Relation};
use super::error::QueryError;

/// Longest accepted filter or path, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 32;

/// An attribute as a filter or path names it: `urn:…:User:name.givenName` is
/// `uri = urn:…:User`, `name = name`, `sub = givenName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI prefix, when written.
    pub uri: Option<String>,
    /// The attribute name, as written.
    pub name: String,
    /// The sub-attribute, as written.
    pub sub: Option<String>,
}

impl AttrPath {
    /// The same attribute with `sub` as its sub-attribute (for value filters, whose
    /// attributes are sub-attributes of the outer one).
    pub fn with_sub(&self, sub: &str) -> Self {
        Self {
            uri: self.uri.clone(),
            name: self.name.clone(),
            sub: Some(sub.to_owned()),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`.
    Eq,
    /// `ne`.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`.
    Gt,
    /// `ge`.
    Ge,
    /// `lt`.
    Lt,
    /// `le`.
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }

    fn kind(self) -> OpKind {
        match self {
            Self::Eq => OpKind::Eq,
            Self::Ne => OpKind::Ne,
            Self::Co => OpKind::Contains,
            Self::Sw => OpKind::StartsWith,
            Self::Ew => OpKind::EndsWith,
            Self::Gt => OpKind::Gt,
            Self::Ge => OpKind::Ge,
            Self::Lt => OpKind::Lt,
            Self::Le => OpKind::Le,
        }
    }
}

/// A comparison value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
}

impl CompValue {
    /// The value as JSON.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(*b),
            Self::Number(n) => serde_json::from_str(n).unwrap_or(Json::Null),
            Self::String(s) => Json::String(s.clone()),
        }
    }
}

/// A parsed SCIM filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every item holds.
    And(Vec<Filter>),
    /// At least one item holds.
    Or(Vec<Filter>),
    /// `not (…)`.
    Not(Box<Filter>),
    /// `attr op value`.
    Compare {
        /// The attribute.
        attr: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The value.
        value: CompValue,
    },
    /// `attr pr`.
    Present(AttrPath),
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`, whose
    /// attribute names are sub-attributes of `attr`.
    ValuePath {
        /// The multi-valued attribute.
        attr: AttrPath,
        /// The filter over its values.
        filter: Box<Filter>,
    },
}

/// A PATCH operation's `path`: an attribute, optionally narrowed to the values that
/// match a filter, optionally down to one sub-attribute of those values.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its sub-attribute when written `name.sub` without a filter).
    pub attr: AttrPath,
    /// `[filter]`.
    pub filter: Option<Filter>,
    /// `.sub` after the filter.
    pub sub: Option<String>,
}

/// Parses a filter (the `filter` parameter of a list or `.search`).
pub fn parse(input: &str) -> Result<Filter, QueryError> {
    let mut p = Parser::new(input)?;
    if p.peek().tok == Tok::Eof {
        return Err(QueryError::at(0, "the filter is empty"));
    }
    let f = p.or()?;
    p.end()?;
    Ok(f)
}

/// Parses a PATCH path such as `emails[type eq "work"].value`.
pub fn parse_path(input: &str) -> Result<PatchPath, QueryError> {
    let mut p = Parser::new(input)?;
    let t = p.next();
    let Tok::Word(word) = t.tok else {
        return Err(QueryError::at(t.pos, "expected an attribute name"));
    };
    let attr = attr_path(&word, t.pos)?;
    if p.peek().tok != Tok::LBracket {
        p.end()?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    }
    if attr.sub.is_some() {
        return Err(QueryError::at(
            t.pos,
            "a value filter follows an attribute, not a sub-attribute",
        ));
    }
    p.next();
    p.depth += 1;
    let filter = p.or()?;
    p.expect(&Tok::RBracket, "expected ']'")?;
    let sub = match p.peek().tok.clone() {
        Tok::Word(w) if w.starts_with('.') => {
            let pos = p.next().pos;
            let name = &w[1..];
            if !is_name(name) {
                return Err(QueryError::at(
                    pos,
                    format!("'{name}' is not a sub-attribute name"),
                ));
            }
            Some(name.to_owned())
        }
        _ => None,
    };
    p.end()?;
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// What a SCIM attribute is in the resource's query fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The field.
    pub field: FieldRef,
    /// The SCIM attribute is the negation of this boolean field (`active` is
    /// `not status.suspended`): only `eq`/`ne` with a boolean, and `pr`, apply.
    pub negated: bool,
    /// Not a field but a relation (a group's `members.value`, a user's
    /// `groups.value`): `eq "<id>"` holds when any of these relations does; `field` is
    /// unused, and no other operator applies.
    pub related: &'static [Relation],
}

impl Mapped {
    /// A field as it is.
    pub fn field(field: FieldRef) -> Self {
        Self {
            field,
            negated: false,
            related: &[],
        }
    }

    /// A relation to the user or group whose id is compared.
    pub fn related(relations: &'static [Relation]) -> Self {
        Self {
            field: FieldRef::AnyText,
            negated: false,
            related: relations,
        }
    }
}

/// Translates a filter into the shared AST. `resolve` says what each attribute is, or
/// why it cannot be filtered on (that reason becomes the error message).
pub fn to_expr(
    filter: &Filter,
    resolve: &dyn Fn(&AttrPath) -> Result<Mapped, String>,
) -> Result<Expr, QueryError> {
    translate(filter, None, resolve)
}

fn translate(
    filter: &Filter,
    outer: Option<&AttrPath>,
    resolve: &dyn Fn(&AttrPath) -> Result<Mapped, String>,
) -> Result<Expr, QueryError> {
    let qualify = |attr: &AttrPath| -> Result<AttrPath, QueryError> {
        match outer {
            None => Ok(attr.clone()),
            Some(o) if attr.uri.is_none() && attr.sub.is_none() => Ok(o.with_sub(&attr.name)),
            Some(_) => Err(QueryError::new(format!(
                "'{attr}' cannot be used inside a value filter"
            ))),
        }
    };
    let lookup =
        |attr: &AttrPath| -> Result<Mapped, QueryError> { resolve(attr).map_err(QueryError::new) };
    Ok(match filter {
        Filter::And(items) => Expr::And(
            items
                .iter()
                .map(|f| translate(f, outer, resolve))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Or(items) => Expr::Or(
            items
                .iter()
                .map(|f| translate(f, outer, resolve))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Not(inner) => Expr::Not(Box::new(translate(inner, outer, resolve)?)),
        Filter::ValuePath { attr, filter } => {
            if outer.is_some() {
                return Err(QueryError::new("value filters cannot be nested"));
            }
            translate(filter, Some(attr), resolve)?
        }
        Filter::Present(attr) => {
            let m = lookup(&qualify(attr)?)?;
            if !m.related.is_empty() {
                return Err(QueryError::new(format!(
                    "'{attr}' takes only 'eq' with an id"
                )));
            }
            ast::make_condition(m.field, OpKind::Exists(true), Vec::new())
                .map(Expr::Cmp)
                .map_err(QueryError::new)?
        }
        Filter::Compare { attr, op, value } => {
            let attr = qualify(attr)?;
            let m = lookup(&attr)?;
            if !m.related.is_empty() {
                let (CompareOp::Eq, CompValue::String(id)) = (op, value) else {
                    return Err(QueryError::new(format!(
                        "'{attr}' takes only 'eq' with an id"
                    )));
                };
                let mut any: Vec<Expr> = m
                    .related
                    .iter()
                    .map(|r| Expr::Related(*r, id.clone()))
                    .collect();
                return Ok(if any.len() == 1 {
                    any.remove(0)
                } else {
                    Expr::Or(any)
                });
            }
            let wants_bool = m.negated || m.field.ty() == Some(FieldType::Bool);
            let lit = literal(value, wants_bool);
            let lit = match (m.negated, lit) {
                (false, lit) => lit,
                (true, Literal::Bool(b)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
                    Literal::Bool(!b)
                }
                (true, _) => {
                    return Err(QueryError::new(format!(
                        "'{attr}' takes only 'eq' or 'ne' with true or false, or 'pr'"
                    )));
                }
            };
            ast::check_operator(&m.field, op.kind()).map_err(QueryError::new)?;
            let v = ast::coerce(&m.field, lit, true).map_err(QueryError::new)?;
            ast::make_condition(m.field, op.kind(), vec![v])
                .map(Expr::Cmp)
                .map_err(QueryError::new)?
        }
    })
}

/// A comparison value as the shared AST's literal. Booleans sent as strings (`"False"`,
/// as Entra ID does) are booleans where one is expected.
fn literal(v: &CompValue, wants_bool: bool) -> Literal {
    match v {
        CompValue::Null => Literal::Null,
        CompValue::Bool(b) => Literal::Bool(*b),
        CompValue::Number(n) => Literal::Number(n.clone()),
        CompValue::String(s) if wants_bool && s.eq_ignore_ascii_case("true") => Literal::Bool(true),
        CompValue::String(s) if wants_bool && s.eq_ignore_ascii_case("false") => {
            Literal::Bool(false)
        }
        CompValue::String(s) => Literal::Text(s.clone()),
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation over JSON: the values of a multi-valued attribute, for PATCH value paths.

/// Whether `item` (one value of a multi-valued attribute: an object, or a bare value
/// for simple multi-valued attributes, which answers to `value`) matches `filter`.
/// Attribute names compare case-insensitively, text case-insensitively, booleans also
/// when sent as strings, numbers as numbers.
pub fn matches(filter: &Filter, item: &Json) -> bool {
    match filter {
        Filter::And(items) => items.iter().all(|f| matches(f, item)),
        Filter::Or(items) => items.iter().any(|f| matches(f, item)),
        Filter::Not(inner) => !matches(inner, item),
        Filter::ValuePath { attr, filter } => match lookup_json(item, attr) {
            Some(Json::Array(values)) => values.iter().any(|v| matches(filter, v)),
            Some(v) => matches(filter, v),
            None => false,
        },
        Filter::Present(attr) => lookup_json(item, attr).is_some_and(|v| match v {
            Json::Null => false,
            Json::String(s) => !s.is_empty(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
            _ => true,
        }),
        Filter::Compare { attr, op, value } => {
            let found = lookup_json(item, attr);
            match found {
                Some(Json::Array(values)) => values.iter().any(|v| compare(v, *op, value)),
                Some(v) => compare(v, *op, value),
                None => matches!((op, value), (CompareOp::Eq, CompValue::Null)),
            }
        }
    }
}

fn lookup_json<'a>(item: &'a Json, attr: &AttrPath) -> Option<&'a Json> {
    let get = |v: &'a Json, name: &str| -> Option<&'a Json> {
        match v {
            Json::Object(map) => map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
            // A simple multi-valued attribute's values answer to `value`.
            other if name.eq_ignore_ascii_case("value") => Some(other),
            _ => None,
        }
    };
    let top = get(item, &attr.name)?;
    match &attr.sub {
        None => Some(top),
        Some(sub) => get(top, sub),
    }
}

fn compare(found: &Json, op: CompareOp, want: &CompValue) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (found, want) {
        (Json::Null, CompValue::Null) => Some(Ordering::Equal),
        (Json::Bool(a), CompValue::Bool(b)) => (a == b).then_some(Ordering::Equal),
        (Json::Bool(a), CompValue::String(s)) | (Json::String(s), CompValue::Bool(a))
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
        {
            (*a == s.eq_ignore_ascii_case("true")).then_some(Ordering::Equal)
        }
        (Json::Number(a), CompValue::Number(b)) => {
            let (a, b) = (a.as_f64(), b.parse::<f64>().ok());
            a.zip(b).and_then(|(a, b)| a.partial_cmp(&b))
        }
        (Json::String(a), CompValue::String(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            return match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                CompareOp::Le => a <= b,
            };
        }
        _ => None,
    };
    match op {
        CompareOp::Eq => ordering == Some(Ordering::Equal),
        CompareOp::Ne => ordering != Some(Ordering::Equal),
        CompareOp::Gt => ordering == Some(Ordering::Greater),
        CompareOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        CompareOp::Lt => ordering == Some(Ordering::Less),
        CompareOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

// ---------------------------------------------------------------------------------------
// Lexer and parser.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An attribute path, keyword, operator, `true`/`false`/`null` or number; or a
    /// `.sub` right after `]`.
    Word(String),
    /// A JSON string, unescaped.
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '$' | '+')
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let mut it = input.char_indices().peekable();
    while let Some(&(pos, c)) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' | ')' | '[' | ']' => {
                it.next();
                let tok = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    _ => Tok::RBracket,
                };
                out.push(Token { tok, pos });
            }
            '"' => {
                let start = pos;
                let mut end = None;
                let mut escaped = false;
                it.next();
                for (i, c) in it.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let Some(end) = end else {
                    return Err(QueryError::at(start, "unterminated string"));
                };
                let s: String = serde_json::from_str(&input[start..=end])
                    .map_err(|_| QueryError::at(start, "invalid escape in string"))?;
                out.push(Token {
                    tok: Tok::Str(s),
                    pos: start,
                });
            }
            c if is_word_char(c) => {
                let mut end = pos;
                while let Some(&(i, c)) = it.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    it.next();
                }
                out.push(Token {
                    tok: Tok::Word(input[pos..end].to_owned()),
                    pos,
                });
            }
            other => {
                return Err(QueryError::at(
                    pos,
                    format!("unexpected character '{other}'"),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: input.len(),
    });
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Self, QueryError> {
        if input.len() > MAX_LEN {
            return Err(QueryError::at(
                MAX_LEN,
                format!("the filter is too long (at most {MAX_LEN} bytes)"),
            ));
        }
        Ok(Self {
            toks: lex(input)?,
            i: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn expect(&mut self, tok: &Tok, message: &str) -> Result<(), QueryError> {
        let t = self.next();
        if &t.tok == tok {
            Ok(())
        } else {
            Err(QueryError::at(t.pos, message))
        }
    }

    fn end(&mut self) -> Result<(), QueryError> {
        let t = self.peek();
        if t.tok == Tok::Eof {
            Ok(())
        } else {
            Err(QueryError::at(t.pos, "expected 'and', 'or' or the end"))
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn deeper(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::at(
                self.peek().pos,
                format!("the filter nests too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, QueryError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            self.next();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Filter::And(Vec::new()))
        } else {
            Filter::Or(items)
        })
    }

    fn and(&mut self) -> Result<Filter, QueryError> {
        let mut items = vec![self.unary()?];
        while self.keyword("and") {
            self.next();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Filter::And(Vec::new()))
        } else {
            Filter::And(items)
        })
    }

    fn unary(&mut self) -> Result<Filter, QueryError> {
        self.deeper()?;
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Filter, QueryError> {
        if self.keyword("not") {
            self.next();
            self.expect(&Tok::LParen, "expected '(' after 'not'")?;
            let inner = self.or()?;
            self.expect(&Tok::RParen, "expected ')'")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        let t = self.next();
        match t.tok {
            Tok::LParen => {
                let inner = self.or()?;
                self.expect(&Tok::RParen, "expected ')'")?;
                Ok(inner)
            }
            Tok::Word(w) => {
                let attr = attr_path(&w, t.pos)?;
                if self.peek().tok == Tok::LBracket {
                    self.next();
                    let filter = self.or()?;
                    self.expect(&Tok::RBracket, "expected ']'")?;
                    return Ok(Filter::ValuePath {
                        attr,
                        filter: Box::new(filter),
                    });
                }
                let op_tok = self.next();
                let Tok::Word(op_word) = op_tok.tok else {
                    return Err(QueryError::at(
                        op_tok.pos,
                        "expected an operator such as 'eq' or 'pr'",
                    ));
                };
                if op_word.eq_ignore_ascii_case("pr") {
                    return Ok(Filter::Present(attr));
                }
                let Some(op) = CompareOp::parse(&op_word) else {
                    return Err(QueryError::at(
                        op_tok.pos,
                        format!("unknown operator '{op_word}'"),
                    ));
                };
                let v = self.next();
                let value = match v.tok {
                    Tok::Str(s) => CompValue::String(s),
                    Tok::Word(w) if w.eq_ignore_ascii_case("true") => CompValue::Bool(true),
                    Tok::Word(w) if w.eq_ignore_ascii_case("false") => CompValue::Bool(false),
                    Tok::Word(w) if w.eq_ignore_ascii_case("null") => CompValue::Null,
                    Tok::Word(w) if ast::is_number(&w) => CompValue::Number(w),
                    _ => {
                        return Err(QueryError::at(
                            v.pos,
                            "expected a value: a \"string\", a number, true, false or null",
                        ));
                    }
                };
                Ok(Filter::Compare { attr, op, value })
            }
            _ => Err(QueryError::at(t.pos, "expected an attribute, 'not' or '('")),
        }
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$' || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// Splits `[URI ":"] name ["." sub]`. A URI is recognised by its `urn:` scheme; the
/// attribute follows its last colon (a URI's own dots, as in `2.0`, stay in it).
fn attr_path(word: &str, pos: usize) -> Result<AttrPath, QueryError> {
    let bad = || QueryError::at(pos, format!("'{word}' is not an attribute path"));
    let (uri, rest) = if word.len() > 4 && word[..4].eq_ignore_ascii_case("urn:") {
        let cut = word.rfind(':').ok_or_else(bad)?;
        (Some(word[..cut].to_owned()), &word[cut + 1..])
    } else {
        (None, word)
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    if !is_name(name) || sub.is_some_and(|s| !is_name(s)) {
        return Err(bad());
    }
    Ok(AttrPath {
        uri,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::USERS;
    use serde_json::json;

    fn attr(name: &str) -> AttrPath {
        attr_path(name, 0).unwrap()
    }

    /// A small mapping like the SCIM front door's, for users.
    fn users(a: &AttrPath) -> Result<Mapped, String> {
        let key = match &a.sub {
            Some(s) => format!("{}.{}", a.name, s).to_ascii_lowercase(),
            None => a.name.to_ascii_lowercase(),
        };
        let named = |n: &str| Mapped::field(USERS.lookup(n).unwrap());
        Ok(match key.as_str() {
            "username" => named("username"),
            "emails" | "emails.value" => named("email"),
            "name.givenname" => named("firstName"),
            "meta.lastmodified" => named("modified"),
            "active" => Mapped {
                negated: true,
                ..named("status.suspended")
            },
            "externalid" => Mapped::field(FieldRef::Custom("scim.externalId".into())),
            "groups" | "groups.value" => Mapped::related(&[Relation::MemberOf { nested: true }]),
            _ => return Err(format!("'{a}' cannot be filtered on")),
        })
    }

    fn check(filter: &str, zenql_form: &str) {
        let f = parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let e = to_expr(&f, &users).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(e.to_string(), zenql_form, "{filter}");
    }

    fn refused(filter: &str, why: &str) {
        let err = parse(filter)
            .and_then(|f| to_expr(&f, &users))
            .expect_err(filter);
        assert!(err.to_string().contains(why), "{filter}: {err}");
    }

    #[test]
    fn filters_become_the_shared_ast() {
        check(r#"userName eq "bjensen""#, r#"username = "bjensen""#);
        check(r#"USERNAME Eq "x""#, r#"username = "x""#);
        check(
            r#"name.givenName sw "Bar""#,
            r#"firstName startsWith "Bar""#,
        );
        check(r#"emails co "@example.com""#, r#"email ~ "@example.com""#);
        check(r#"emails[value ew ".org"]"#, r#"email endsWith ".org""#);
        check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName ne "a""#,
            r#"username != "a""#,
        );
        check("userName pr", "username exists true");
        check(
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            "modified > 2011-05-13T04:42:34.000Z",
        );
        check(
            r#"externalId eq "e-1""#,
            r#"custom.scim.externalId = "e-1""#,
        );
        check(
            r#"userName eq "a" or userName eq "b" and not (emails pr)"#,
            r#"(username = "a" or (username = "b" and not email exists true))"#,
        );
    }

    #[test]
    fn active_is_not_suspended_and_takes_booleans_as_strings() {
        check("active eq true", "status.suspended = false");
        check("active eq false", "status.suspended = true");
        check(r#"active eq "False""#, "status.suspended = true");
        check("active ne true", "status.suspended != false");
        check("active pr", "status.suspended exists true");
        refused("active gt true", "takes only 'eq' or 'ne'");
    }

    #[test]
    fn what_the_ast_cannot_say_is_refused() {
        refused(r#"title eq "x""#, "cannot be filtered on");
        refused(r#"emails[type eq "work"]"#, "cannot be filtered on");
        refused(r#"meta.lastModified co "2011""#, "needs a text field");
        refused(r#"meta.lastModified gt "yesterday""#, "takes a date");
        refused(
            r#"emails[value eq "a" and value[x eq 1]]"#,
            "cannot be nested",
        );
    }

    #[test]
    fn malformed_filters_say_where() {
        for (bad, pos) in [
            ("", 0),
            ("userName", 8),
            ("userName eq", 11),
            (r#"userName xx "a""#, 9),
            (r#"userName eq "a"#, 12),
            (r#"(userName eq "a""#, 16),
            (r#"userName eq "a" and"#, 19),
            (r#"userName eq "a" "b""#, 16),
            ("userName eq bare", 12),
            ("user#Name pr", 4),
            ("not userName pr", 4),
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.position(), Some(pos), "{bad}: {err}");
        }
    }

    #[test]
    fn length_and_depth_are_bounded() {
        let long = format!(r#"userName eq "{}""#, "x".repeat(MAX_LEN));
        assert!(parse(&long).unwrap_err().to_string().contains("too long"));
        let deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
        assert!(
            parse(&deep)
                .unwrap_err()
                .to_string()
                .contains("nests too deeply")
        );
        let nots = format!("{}userName pr{}", "not (".repeat(40), ")".repeat(40));
        assert!(parse(&nots).is_err());
    }

    #[test]
    fn patch_paths() {
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, attr("emails"));
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(matches!(p.filter, Some(Filter::Compare { .. })));
        let p = parse_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!(p.sub, None);
        let p = parse_path("name.givenName").unwrap();
        assert_eq!(p.attr.sub.as_deref(), Some("givenName"));
        let p = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
            .unwrap();
        assert_eq!(
            p.attr.uri.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.attr.name, "manager");
        for bad in [
            "",
            "emails[",
            "emails[type eq \"w\"",
            "emails]",
            "a b",
            "x.y[z pr]",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn value_filters_evaluate_over_json() {
        let work = json!({"type": "work", "value": "A@x.org", "primary": true});
        let home = json!({"type": "home", "value": "b@y.org"});
        let f = |s: &str| parse(s).unwrap();
        assert!(matches(&f(r#"type eq "WORK""#), &work));
        assert!(!matches(&f(r#"type eq "work""#), &home));
        assert!(matches(
            &f(r#"value ew "@x.org" and primary eq true"#),
            &work
        ));
        assert!(
            matches(&f(r#"primary eq "True""#), &work),
            "Entra's string booleans"
        );
        assert!(!matches(&f("primary pr"), &home));
        assert!(matches(&f("not (primary pr)"), &home));
        assert!(matches(&f(r#"type ne "work""#), &home));
        assert!(
            matches(&f(r#"value eq "a@x.org""#), &json!("a@x.org")),
            "bare values"
        );
        assert!(matches(&f("n gt 2"), &json!({"n": 3})));
        assert!(!matches(&f("n gt 2"), &json!({"n": "3"})));
    }
}
