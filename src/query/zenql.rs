//! ZenQL: the text query language of the `zenql=` parameter (spec §7), lexer and
//! recursive-descent parser.
//!
//! Grammar (keywords and operator words are case-insensitive; `and` binds tighter than `or`):
//!
//! ```text
//! query   := or?                         (empty input: no filter)
//! or      := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" or ")" | clause
//! clause  := FIELD ( ("=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<=") value
//!                  | "not"? "in" "(" value ("," value)* ")"
//!                  | "not"? "exists" ("true" | "false")?
//!                  | "not"? "between" "(" value "," value ")"
//!                  | "not"? ("startsWith" | "endsWith") value )
//! value   := "quoted" | 'quoted' | null | true | false | NUMBER | DATE | WORD
//!          | FUNCTION "(" INTEGER? ")"
//! ```
//!
//! Role: turn client text into a checked [`Expr`] or a [`QueryError`] with a byte offset.
//! It must not read the clock (date functions stay symbolic), and must not recurse or
//! allocate without bound: input length and nesting depth are capped.

use super::ast::{self, Expr, FieldRef, FieldSet, Literal, OpKind};
use super::error::QueryError;

/// Longest accepted query, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;

/// Parses a ZenQL query against a resource's fields. Blank input means "no filter"
/// (an empty `And`, which matches every row).
pub fn parse(input: &str, fields: &FieldSet) -> Result<Expr, QueryError> {
    if input.len() > MAX_LEN {
        return Err(QueryError::at(
            MAX_LEN,
            format!("query is too long (at most {MAX_LEN} bytes)"),
        ));
    }
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        i: 0,
        fields,
        depth: 0,
    };
    if p.peek().tok == Tok::Eof {
        return Ok(Expr::And(Vec::new()));
    }
    let expr = p.parse_or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(QueryError::at(
            t.pos,
            "expected 'and', 'or' or the end of the query",
        ));
    }
    Ok(expr)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word: field name, keyword, operator word, unquoted value, function name.
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Tilde,
    NotTilde,
    Gt,
    Ge,
    Lt,
    Le,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

/// Characters that end a bare word.
fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ',' | '=' | '!' | '~' | '<' | '>')
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut toks = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(pos, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let next_is = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, want: char| {
            if chars.peek().map(|&(_, c)| c) == Some(want) {
                chars.next();
                true
            } else {
                false
            }
        };
        let tok = match c {
            '(' | ')' | ',' | '=' | '~' => {
                chars.next();
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    '=' => Tok::Eq,
                    _ => Tok::Tilde,
                }
            }
            '!' => {
                chars.next();
                if next_is(&mut chars, '=') {
                    Tok::Ne
                } else if next_is(&mut chars, '~') {
                    Tok::NotTilde
                } else {
                    return Err(QueryError::at(pos, "expected '!=' or '!~'"));
                }
            }
            '<' | '>' => {
                chars.next();
                let eq = next_is(&mut chars, '=');
                match (c, eq) {
                    ('<', false) => Tok::Lt,
                    ('<', true) => Tok::Le,
                    (_, false) => Tok::Gt,
                    (_, true) => Tok::Ge,
                }
            }
            '"' | '\'' => {
                chars.next();
                Tok::Str(lex_string(&mut chars, c, pos)?)
            }
            _ => {
                let mut end = input.len();
                while let Some(&(i, c)) = chars.peek() {
                    if is_special(c) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                Tok::Word(input[pos..end].to_owned())
            }
        };
        toks.push(Token { tok, pos });
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos: input.len(),
    });
    Ok(toks)
}

/// Reads the rest of a string opened by `quote` at `start`: backslash escapes
/// (`\\ \" \' \n \r \t \/ \uXXXX`) and a doubled quote for a literal quote.
fn lex_string(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    quote: char,
    start: usize,
) -> Result<String, QueryError> {
    let mut out = String::new();
    loop {
        let Some((pos, c)) = chars.next() else {
            return Err(QueryError::at(start, "unterminated string"));
        };
        if c == quote {
            if chars.peek().map(|&(_, c)| c) == Some(quote) {
                chars.next();
                out.push(quote);
                continue;
            }
            return Ok(out);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(QueryError::at(start, "unterminated string"));
        };
        match e {
            '\\' | '"' | '\'' | '/' => out.push(e),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let mut code = 0u32;
                for _ in 0..4 {
                    let digit = chars.next().and_then(|(_, h)| h.to_digit(16));
                    let Some(d) = digit else {
                        return Err(QueryError::at(pos, "expected four hex digits after '\\u'"));
                    };
                    code = code * 16 + d;
                }
                match char::from_u32(code) {
                    Some(ch) => out.push(ch),
                    None => return Err(QueryError::at(pos, "'\\u' escape is not a character")),
                }
            }
            other => return Err(QueryError::at(pos, format!("unknown escape '\\{other}'"))),
        }
    }
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    fields: &'a FieldSet,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `bump` never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Token, QueryError> {
        let t = self.bump();
        if t.tok == want {
            Ok(t)
        } else {
            Err(QueryError::at(t.pos, format!("expected {what}")))
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::at(
                pos,
                format!("query is nested too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_and()?];
        while self.at_word("or") {
            self.bump();
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_unary()?];
        while self.at_word("and") {
            self.bump();
            items.push(self.parse_unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Expr, QueryError> {
        let pos = self.peek().pos;
        if self.at_word("not") {
            self.bump();
            self.enter(pos)?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek().tok == Tok::LParen {
            self.bump();
            self.enter(pos)?;
            let inner = self.parse_or()?;
            self.expect(Tok::RParen, "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.parse_clause()
    }

    fn parse_clause(&mut self) -> Result<Expr, QueryError> {
        let t = self.bump();
        let Tok::Word(name) = t.tok else {
            return Err(QueryError::at(t.pos, "expected a field name"));
        };
        let Some(field) = self.fields.lookup(&name) else {
            return Err(QueryError::at(t.pos, format!("unknown field '{name}'")));
        };
        let op_tok = self.bump();
        let op_pos = op_tok.pos;
        let symbol = match &op_tok.tok {
            Tok::Eq => Some(OpKind::Eq),
            Tok::Ne => Some(OpKind::Ne),
            Tok::Tilde => Some(OpKind::Contains),
            Tok::NotTilde => Some(OpKind::NotContains),
            Tok::Gt => Some(OpKind::Gt),
            Tok::Ge => Some(OpKind::Ge),
            Tok::Lt => Some(OpKind::Lt),
            Tok::Le => Some(OpKind::Le),
            _ => None,
        };
        if let Some(kind) = symbol {
            ast::check_operator(&field, kind).map_err(|m| QueryError::at(op_pos, m))?;
            let v = self.parse_value(&field)?;
            return self.finish(field, kind, vec![v], op_pos);
        }
        let Tok::Word(word) = &op_tok.tok else {
            return Err(QueryError::at(
                op_pos,
                format!("expected an operator after '{name}'"),
            ));
        };
        let mut word = word.to_ascii_lowercase();
        let negated = word == "not";
        if negated {
            let t = self.bump();
            word = match t.tok {
                Tok::Word(w) => w.to_ascii_lowercase(),
                _ => String::new(),
            };
            if !matches!(
                word.as_str(),
                "in" | "exists" | "between" | "startswith" | "endswith"
            ) {
                return Err(QueryError::at(
                    t.pos,
                    "expected 'in', 'exists', 'between', 'startsWith' or 'endsWith' after 'not'",
                ));
            }
        }
        let kind = match word.as_str() {
            "in" if negated => Some(OpKind::NotIn),
            "in" => Some(OpKind::In),
            "between" => Some(OpKind::Between),
            "startswith" => Some(OpKind::StartsWith),
            "endswith" => Some(OpKind::EndsWith),
            _ => None,
        };
        if let Some(kind) = kind {
            ast::check_operator(&field, kind).map_err(|m| QueryError::at(op_pos, m))?;
        }
        let expr = match word.as_str() {
            "in" => {
                self.expect(Tok::LParen, "'(' after 'in'")?;
                let mut values = vec![self.parse_value(&field)?];
                while self.peek().tok == Tok::Comma {
                    self.bump();
                    values.push(self.parse_value(&field)?);
                }
                self.expect(Tok::RParen, "',' or ')'")?;
                let kind = if negated { OpKind::NotIn } else { OpKind::In };
                return self.finish(field, kind, values, op_pos);
            }
            "exists" => {
                let mut b = true;
                if self.at_word("true") || self.at_word("false") {
                    b = self.at_word("true");
                    self.bump();
                }
                self.finish(field, OpKind::Exists(b), Vec::new(), op_pos)?
            }
            "between" => {
                self.expect(Tok::LParen, "'(' after 'between'")?;
                let a = self.parse_value(&field)?;
                self.expect(Tok::Comma, "','")?;
                let b = self.parse_value(&field)?;
                self.expect(Tok::RParen, "')'")?;
                self.finish(field, OpKind::Between, vec![a, b], op_pos)?
            }
            "startswith" | "endswith" => {
                let kind = if word == "startswith" {
                    OpKind::StartsWith
                } else {
                    OpKind::EndsWith
                };
                let v = self.parse_value(&field)?;
                self.finish(field, kind, vec![v], op_pos)?
            }
            _ => {
                return Err(QueryError::at(
                    op_pos,
                    format!("expected an operator after '{name}'"),
                ));
            }
        };
        Ok(if negated {
            Expr::Not(Box::new(expr))
        } else {
            expr
        })
    }

    fn finish(
        &self,
        field: FieldRef,
        kind: OpKind,
        values: Vec<ast::Value>,
        op_pos: usize,
    ) -> Result<Expr, QueryError> {
        ast::make_condition(field, kind, values)
            .map(Expr::Cmp)
            .map_err(|m| QueryError::at(op_pos, m))
    }

    /// Reads one value and checks it against the field.
    fn parse_value(&mut self, field: &FieldRef) -> Result<ast::Value, QueryError> {
        let t = self.bump();
        let lit = match t.tok {
            Tok::Str(s) => Literal::Text(s),
            Tok::Word(w) => {
                if self.peek().tok == Tok::LParen {
                    self.parse_call(&w, t.pos)?
                } else if w.eq_ignore_ascii_case("null") {
                    Literal::Null
                } else if w.eq_ignore_ascii_case("true") {
                    Literal::Bool(true)
                } else if w.eq_ignore_ascii_case("false") {
                    Literal::Bool(false)
                } else if ast::is_number(&w) {
                    Literal::Number(w)
                } else {
                    Literal::Text(w)
                }
            }
            _ => return Err(QueryError::at(t.pos, "expected a value")),
        };
        ast::coerce(field, lit, false).map_err(|m| QueryError::at(t.pos, m))
    }

    /// Reads `( INTEGER? )` after a function name.
    fn parse_call(&mut self, name: &str, pos: usize) -> Result<Literal, QueryError> {
        self.expect(Tok::LParen, "'('")?;
        let mut arg = None;
        if let Tok::Word(w) = &self.peek().tok {
            let at = self.peek().pos;
            match ast::parse_int(w) {
                Some(n) => arg = Some(n),
                None => {
                    return Err(QueryError::at(
                        at,
                        format!("expected an integer, not '{w}'"),
                    ));
                }
            }
            self.bump();
        }
        if self.peek().tok != Tok::RParen {
            let what = if arg.is_some() {
                "')'"
            } else {
                "an integer or ')'"
            };
            return Err(QueryError::at(self.peek().pos, format!("expected {what}")));
        }
        self.bump();
        ast::call_function(name, arg).map_err(|m| QueryError::at(pos, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{GROUPS, USERS};

    /// Parses against the user fields and compares the printed form, or the error.
    fn check(input: &str, expected: &str) {
        let got = match parse(input, &USERS) {
            Ok(e) => e.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn comparison_operators() {
        check("firstName = test", r#"firstName = "test""#);
        check("firstname~test", r#"firstName ~ "test""#);
        check("email=a@b.com", r#"email = "a@b.com""#);
        check("lastName != 'Smith'", r#"lastName != "Smith""#);
        check("lastName !~ smi", r#"lastName !~ "smi""#);
        check("username startsWith adm", r#"username startsWith "adm""#);
        check("username STARTSWITH adm", r#"username startsWith "adm""#);
        check("username endswith .com", r#"username endsWith ".com""#);
        check("username > m", r#"username > "m""#);
        check("username >= m", r#"username >= "m""#);
        check("username < m", r#"username < "m""#);
        check("username <= m", r#"username <= "m""#);
        check("created > 2024-01-31", "created > 2024-01-31");
        check(
            "created >= 2024-01-31T10:00:00Z",
            "created >= 2024-01-31T10:00:00.000Z",
        );
        check(
            "created < '2024-01-31T10:00:00.123+02:00'",
            "created < 2024-01-31T08:00:00.123Z",
        );
        check(
            "created <= 2024-01-31T10:00",
            "created <= 2024-01-31T10:00:00.000Z",
        );
        check(
            "created <= \"2024-01-31 10:00:05\"",
            "created <= 2024-01-31T10:00:05.000Z",
        );
    }

    #[test]
    fn list_exists_between() {
        check(
            "username in (a, 'b', \"c d\")",
            r#"username in ("a", "b", "c d")"#,
        );
        check("username IN(a)", r#"username in ("a")"#);
        check(
            "username not in (a, null)",
            r#"username not in ("a", null)"#,
        );
        check("expiry exists", "expiry exists true");
        check("expiry exists true", "expiry exists true");
        check("expiry EXISTS false", "expiry exists false");
        check("expiry not exists", "not expiry exists true");
        check(
            "created between(2024-01-01, 2024-01-31)",
            "created between(2024-01-01, 2024-01-31)",
        );
        check(
            "created between (now(-7), now())",
            "created between(now(-7), now())",
        );
        check(
            "created not between (now(-7), now())",
            "not created between(now(-7), now())",
        );
        check(
            "username not startsWith x",
            r#"not username startsWith "x""#,
        );
        check("custom.age between(18, 65)", "custom.age between(18, 65)");
        check(
            "custom.x between(1, b)",
            "error: between needs two values of the same kind (two numbers or two texts) at position 9",
        );
    }

    #[test]
    fn functions() {
        check("created > now()", "created > now()");
        check("created > now(-7)", "created > now(-7)");
        check("created > NOW( +7 )", "created > now(7)");
        for name in ["Day", "Week", "Month", "Year"] {
            check(
                &format!("created >= startOf{name}()"),
                &format!("created >= startOf{name}()"),
            );
            check(
                &format!("created <= endOf{name}(-2)"),
                &format!("created <= endOf{name}(-2)"),
            );
        }
        check("id = currentUser()", "id = currentUser()");
        check(
            "created = currentUser()",
            "error: field 'created' takes a date such as 2024-01-31 or now(-7), not currentUser() at position 10",
        );
        check(
            "created > now(x)",
            "error: expected an integer, not 'x' at position 14",
        );
        check("created > now(1, 2)", "error: expected ')' at position 15");
        check(
            "created > now(",
            "error: expected an integer or ')' at position 14",
        );
        check(
            "created > yesterday()",
            "error: unknown function 'yesterday' at position 10",
        );
        check(
            "created > now(100001)",
            "error: date offset 100001 is out of range (at most 100000) at position 10",
        );
        check(
            "id = currentUser(1)",
            "error: currentUser() takes no argument at position 5",
        );
        check(
            "custom.when > now()",
            "error: field 'custom.when' does not take a date function: custom properties are compared as text, numbers or booleans at position 14",
        );
    }

    #[test]
    fn values() {
        check("status.locked = true", "status.locked = true");
        check("status.locked = FALSE", "status.locked = false");
        check("status.locked = null", "status.locked = null");
        check(
            "status.locked = 'true'",
            "error: field 'status.locked' takes true or false, not text at position 16",
        );
        check(
            "firstName = true",
            "error: field 'firstName' takes text, not a boolean (quote it to compare as text) at position 12",
        );
        check("firstName = 'true'", r#"firstName = "true""#);
        check("firstName = null", "firstName = null");
        check("firstName = 'null'", r#"firstName = "null""#);
        check("firstName = 007", r#"firstName = "007""#);
        check("custom.n = 007", "custom.n = 7");
        check("custom.n = -1.5e3", "custom.n = -1500.0");
        check("custom.n = 99999999999999999999", "custom.n = 1e20");
        check("custom.n = '42'", r#"custom.n = "42""#);
        check("custom.flag = true", "custom.flag = true");
        check("custom.Dept = sales", r#"custom.Dept = "sales""#);
        check("CUSTOM.dept = x", r#"custom.dept = "x""#);
        check("custom.nan = nan", r#"custom.nan = "nan""#);
        check(
            "created = 2024-02-30",
            "error: field 'created' takes a date such as 2024-01-31 or 2024-01-31T10:00:00Z, not '2024-02-30' at position 10",
        );
        check(
            "created = 5",
            "error: field 'created' takes a date such as 2024-01-31 or now(-7), not a number at position 10",
        );
        check(
            "created > null",
            "error: operator 'greaterThan' takes a text, number or date value, not null at position 8",
        );
        check(
            "created ~ 2024",
            "error: operator 'contains' needs a text field, and 'created' is not one at position 8",
        );
        check(
            "status.locked > true",
            "error: operator 'greaterThan' cannot be used with true/false field 'status.locked' at position 14",
        );
    }

    #[test]
    fn quoting_and_escapes() {
        check(r#"lastName = "O'Brien""#, r#"lastName = "O'Brien""#);
        check("lastName = 'O''Brien'", r#"lastName = "O'Brien""#);
        check(r"lastName = 'O\'Brien'", r#"lastName = "O'Brien""#);
        check(r#"lastName = "say ""hi""""#, r#"lastName = "say \"hi\"""#);
        check(
            r#"lastName = "a\\b\nc\t\u00e9\/""#,
            r#"lastName = "a\\b\nc\té/""#,
        );
        check("lastName = O'Brien", r#"lastName = "O'Brien""#);
        check(
            "lastName = 'unterminated",
            "error: unterminated string at position 11",
        );
        check(
            r#"lastName = "bad \q""#,
            r"error: unknown escape '\q' at position 16",
        );
        check(
            r#"lastName = "\u12""#,
            r"error: expected four hex digits after '\u' at position 12",
        );
        check("lastName = 'ünïcödé'", r#"lastName = "ünïcödé""#);
        check("lastName = ''", r#"lastName = """#);
    }

    #[test]
    fn precedence_and_grouping() {
        check("a = 1 or b = 2", "error: unknown field 'a' at position 0");
        check(
            "firstName = a or lastName = b and email = c",
            r#"(firstName = "a" or (lastName = "b" and email = "c"))"#,
        );
        check(
            "firstName = a AND lastName = b OR email = c",
            r#"((firstName = "a" and lastName = "b") or email = "c")"#,
        );
        check(
            "firstName = a and (lastName = b or email = c)",
            r#"(firstName = "a" and (lastName = "b" or email = "c"))"#,
        );
        check(
            "not firstName = a and lastName = b",
            r#"(not firstName = "a" and lastName = "b")"#,
        );
        check(
            "not (firstName = a or lastName = b)",
            r#"not (firstName = "a" or lastName = "b")"#,
        );
        check("NOT NOT firstName = a", r#"not not firstName = "a""#);
        check("((firstName = a))", r#"firstName = "a""#);
        check("", "(and)");
        check("   ", "(and)");
    }

    #[test]
    fn error_positions() {
        check(
            "frstName = x",
            "error: unknown field 'frstName' at position 0",
        );
        check("firstName = ", "error: expected a value at position 12");
        check("firstName =", "error: expected a value at position 11");
        check(
            "firstName",
            "error: expected an operator after 'firstName' at position 9",
        );
        check(
            "firstName is x",
            "error: expected an operator after 'firstName' at position 10",
        );
        check(
            "firstName = a lastName = b",
            "error: expected 'and', 'or' or the end of the query at position 14",
        );
        check(
            "firstName = a and",
            "error: expected a field name at position 17",
        );
        check("(firstName = a", "error: expected ')' at position 14");
        check(
            "firstName = a)",
            "error: expected 'and', 'or' or the end of the query at position 13",
        );
        check(
            "firstName ! a",
            "error: expected '!=' or '!~' at position 10",
        );
        check(
            "firstName in a",
            "error: expected '(' after 'in' at position 13",
        );
        check(
            "firstName in (a b)",
            "error: expected ',' or ')' at position 16",
        );
        check("firstName in ()", "error: expected a value at position 14");
        check(
            "firstName not like a",
            "error: expected 'in', 'exists', 'between', 'startsWith' or 'endsWith' after 'not' at position 14",
        );
        check("firstName between(a)", "error: expected ',' at position 19");
        check("= x", "error: expected a field name at position 0");
        check(
            "'firstName' = x",
            "error: expected a field name at position 0",
        );
        check(
            "custom. = x",
            "error: unknown field 'custom.' at position 0",
        );
        check("é = x and", "error: unknown field 'é' at position 0");
        check(
            "firstName = a and é",
            "error: unknown field 'é' at position 18",
        );
    }

    #[test]
    fn group_fields() {
        let got = parse("Name ~ admin and TYPE = x and custom.k exists", &GROUPS).unwrap();
        assert_eq!(
            got.to_string(),
            r#"(name ~ "admin" and type = "x" and custom.k exists true)"#
        );
        let err = parse("username = x", &GROUPS).unwrap_err();
        assert_eq!(err.to_string(), "unknown field 'username' at position 0");
        assert_eq!(err.position(), Some(0));
    }

    #[test]
    fn limits() {
        let long = format!("firstName = '{}'", "x".repeat(MAX_LEN));
        check(
            &long,
            "error: query is too long (at most 4096 bytes) at position 4096",
        );
        let deep = format!("{}firstName = a{}", "(".repeat(33), ")".repeat(33));
        check(
            &deep,
            "error: query is nested too deeply (at most 32 levels) at position 32",
        );
        let ok = format!("{}firstName = a{}", "(".repeat(32), ")".repeat(32));
        check(&ok, r#"firstName = "a""#);
        let nots = format!("{}firstName = a", "not ".repeat(40));
        check(
            &nots,
            "error: query is nested too deeply (at most 32 levels) at position 128",
        );
        // Depth is about nesting, not length: many siblings are fine.
        let wide = vec!["(firstName = a)"; 200].join(" or ");
        assert!(parse(&wide, &USERS).is_ok());
    }

    #[test]
    fn injection_attempts_stay_values_or_fail() {
        check(
            r#"username = "x' OR 1=1 --""#,
            r#"username = "x' OR 1=1 --""#,
        );
        check(
            "username;drop table users = x",
            "error: unknown field 'username;drop' at position 0",
        );
        check(
            "username = x; drop table users",
            "error: expected 'and', 'or' or the end of the query at position 14",
        );
    }

    #[test]
    fn printed_form_parses_back() {
        for q in [
            "firstName = a or lastName = b and not email ~ c",
            "created between(2024-01-01, now(-3)) and custom.n in (1, 2.5, 'x', null, true)",
            "username not in (\"a\\\"b\", 'c''d') or expiry exists false",
            "lastLogin > 2024-05-06T07:08:09.010Z and id = currentUser()",
        ] {
            let e = parse(q, &USERS).unwrap();
            let again = parse(&e.to_string(), &USERS).unwrap();
            assert_eq!(again, e, "{q} printed as {e}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn tokenish() -> impl Strategy<Value = String> {
            let atoms = prop::sample::select(vec![
                "firstName",
                "created",
                "custom.x",
                "status.locked",
                "and",
                "or",
                "not",
                "in",
                "exists",
                "between",
                "startsWith",
                "(",
                ")",
                ",",
                "=",
                "!=",
                "~",
                "!~",
                ">",
                "<=",
                "'a'",
                "\"b\\\"\"",
                "null",
                "true",
                "now(-7)",
                "startOfWeek(",
                "12",
                "2024-01-31",
                "x",
                "'",
                "\\",
                "é",
                "currentUser()",
            ]);
            prop::collection::vec(atoms, 0..24).prop_map(|v| v.join(" "))
        }

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
                let _ = parse(&s, &USERS);
            }

            #[test]
            fn token_soup_never_panics_and_round_trips(s in tokenish()) {
                if let Ok(e) = parse(&s, &USERS) {
                    let printed = e.to_string();
                    if !printed.contains("(and)") {
                        prop_assert_eq!(parse(&printed, &USERS).ok(), Some(e));
                    }
                }
            }
        }
    }
}
