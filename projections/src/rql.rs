//! RQL (Resource Query Language), as Extra Horizon clients send it: one parser for the whole API.
//!
//! The raw query string is parsed *before* percent-decoding, so the structural characters
//! `( ) , & |` are always structure; every value is then decoded twice, because the SDK encodes
//! values twice (exh-api.md §3.4) and decoding a value that was encoded once is harmless.
//!
//! Grammar (a superset of what the services use):
//!
//! ```text
//! query      := term (("&" | "|" | ",") term)*
//! term       := call | comparison
//! call       := NAME "(" [arg ("," arg)*] ")"
//! arg        := call | "(" value ("," value)* ")" | value
//! comparison := path ("=" | "==" | "!=" | "<" | "<=" | ">" | ">=") value | path "=" NAME "=" value
//! value      := [converter ":"] text
//! ```

use percent_encoding::percent_decode_str;

/// A typed RQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// From the `date:`, `isodate:` and `epoch:` converters: milliseconds since the epoch.
    Date(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare {
        path: String,
        op: Cmp,
        value: Scalar,
    },
    In {
        path: String,
        values: Vec<Scalar>,
        negated: bool,
    },
    Like {
        path: String,
        pattern: String,
    },
    /// `contains(path)` / `excludes(path)`, or with conditions on the elements of an array.
    Contains {
        path: String,
        element: Option<Box<Expr>>,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

impl Expr {
    /// Whether a condition in the expression (not inside `contains`) is on `path`.
    pub fn names(&self, path: &str) -> bool {
        match self {
            Self::And(parts) | Self::Or(parts) => parts.iter().any(|part| part.names(path)),
            Self::Compare { path: p, .. }
            | Self::In { path: p, .. }
            | Self::Like { path: p, .. }
            | Self::Contains { path: p, .. } => p == path,
        }
    }
}

/// A parsed query: what to match, and how to shape and page the answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub filter: Option<Expr>,
    pub select: Option<Vec<String>>,
    pub sort: Vec<(String, Direction)>,
    pub limit: Option<u64>,
    pub offset: u64,
    pub skip_count: bool,
}

/// The query could not be understood: Extra Horizon's `INVALID_RQL_EXCEPTION`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RQL: {0}")]
pub struct RqlError(pub String);

fn invalid(message: impl Into<String>) -> RqlError {
    RqlError(message.into())
}

/// The syntax tree before operators are interpreted.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Call(String, Vec<Node>),
    Array(Vec<Node>),
    Value(String),
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 32;
const STRUCTURE: &[char] = &['(', ')', ',', '&', '|'];

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Raw text up to the next structural character.
    fn word(&mut self) -> &'a str {
        let rest = &self.text[self.at..];
        let end = rest.find(STRUCTURE).unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    fn term(&mut self) -> Result<Node, RqlError> {
        let word = self.word();
        if self.eat('(') {
            if word.is_empty() {
                return Err(invalid("a group needs an operator name"));
            }
            let name = word.to_owned();
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(format!("`{name}` is not an operator")));
            }
            let args = self.args()?;
            return Ok(Node::Call(name, args));
        }
        comparison(word)
    }

    fn args(&mut self) -> Result<Vec<Node>, RqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid("the query nests too deeply"));
        }
        let mut args = Vec::new();
        if self.eat(')') {
            self.depth -= 1;
            return Ok(args);
        }
        loop {
            args.push(self.arg()?);
            if self.eat(',') {
                continue;
            }
            if self.eat(')') {
                break;
            }
            return Err(invalid("expected `,` or `)`"));
        }
        self.depth -= 1;
        Ok(args)
    }

    fn arg(&mut self) -> Result<Node, RqlError> {
        if self.eat('(') {
            return Ok(Node::Array(self.args()?));
        }
        let start = self.at;
        let word = self.word();
        if self.peek() == Some('(') {
            self.at = start;
            return self.term();
        }
        Ok(Node::Value(word.to_owned()))
    }
}

/// FIQL sugar: `a=b`, `a!=b`, `a<=b`, `a=gt=b`, ...
fn comparison(word: &str) -> Result<Node, RqlError> {
    let word = word
        .replace("%3C", "<")
        .replace("%3c", "<")
        .replace("%3E", ">")
        .replace("%3e", ">");
    let operators = [
        ("!=", "ne"),
        ("<=", "le"),
        (">=", "ge"),
        ("==", "eq"),
        ("<", "lt"),
        (">", "gt"),
        ("=", "eq"),
    ];
    for (symbol, name) in operators {
        if let Some((path, value)) = word.split_once(symbol) {
            if path.is_empty() {
                break;
            }
            // `a=gt=5`
            let named = value.split_once('=').filter(|(op, _)| {
                symbol == "=" && !op.is_empty() && op.chars().all(|c| c.is_ascii_alphabetic())
            });
            let (name, value) = named.unwrap_or((name, value));
            return Ok(Node::Call(
                name.to_owned(),
                vec![Node::Value(path.to_owned()), Node::Value(value.to_owned())],
            ));
        }
    }
    if word.is_empty() {
        return Err(invalid("empty term"));
    }
    Err(invalid(format!(
        "`{word}` is neither an operator call nor a comparison"
    )))
}

/// Decodes a raw value twice (see the module docs).
fn decode(raw: &str) -> Result<String, RqlError> {
    let once = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("a value is not valid UTF-8"))?;
    let twice = percent_decode_str(&once)
        .decode_utf8()
        .map_err(|_| invalid("a value is not valid UTF-8"))?;
    Ok(twice.into_owned())
}

/// JavaScript's number-to-string for the numbers that round-trip (so `0123` stays a string).
fn as_number(text: &str) -> Option<f64> {
    let number: f64 = text.parse().ok()?;
    if !number.is_finite() {
        return None;
    }
    let printed = if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        format!("{number}")
    };
    (printed == text).then_some(number)
}

fn scalar(raw: &str) -> Result<Scalar, RqlError> {
    let text = decode(raw)?;
    if let Some((converter, rest)) = text.split_once(':') {
        match converter {
            "string" => return Ok(Scalar::String(rest.to_owned())),
            "number" => {
                return rest
                    .parse()
                    .map(Scalar::Number)
                    .map_err(|_| invalid(format!("`{rest}` is not a number")));
            }
            "boolean" => return Ok(Scalar::Bool(rest == "true")),
            "date" | "isodate" => {
                return parse_date(rest)
                    .map(Scalar::Date)
                    .ok_or_else(|| invalid(format!("`{rest}` is not a date")));
            }
            "epoch" => {
                return rest
                    .parse()
                    .map(Scalar::Date)
                    .map_err(|_| invalid(format!("`{rest}` is not an epoch")));
            }
            "auto" => return Ok(auto(rest)),
            "re" | "RE" | "glob" => {
                return Err(invalid(format!(
                    "the `{converter}:` converter is not supported"
                )));
            }
            _ => {}
        }
    }
    Ok(auto(&text))
}

fn auto(text: &str) -> Scalar {
    match text {
        "true" => Scalar::Bool(true),
        "false" => Scalar::Bool(false),
        "null" | "undefined" => Scalar::Null,
        _ => match as_number(text) {
            Some(number) => Scalar::Number(number),
            None => match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
                Some(quoted) => Scalar::String(quoted.to_owned()),
                None => Scalar::String(text.to_owned()),
            },
        },
    }
}

/// Milliseconds since the epoch as ISO 8601 text in UTC with milliseconds
/// (`2026-11-25T04:00:00.000Z`): how the camelCase services render times and documents store them.
pub fn iso_date(millis: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap_or_default()
}

/// An ISO 8601 date or date-time as milliseconds since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

fn path(node: &Node) -> Result<String, RqlError> {
    match node {
        Node::Value(raw) => {
            let path = decode(raw)?;
            let valid = !path.is_empty()
                && path.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                });
            if valid {
                Ok(path)
            } else {
                Err(invalid(format!("`{path}` is not a property path")))
            }
        }
        _ => Err(invalid("expected a property path")),
    }
}

fn values(nodes: &[Node]) -> Result<Vec<Scalar>, RqlError> {
    let mut values = Vec::new();
    for node in nodes {
        match node {
            Node::Value(raw) => values.push(scalar(raw)?),
            Node::Array(items) => values.extend(self::values(items)?),
            Node::Call(name, _) => return Err(invalid(format!("`{name}(...)` is not a value"))),
        }
    }
    Ok(values)
}

fn count(
    name: &str,
    args: &[Node],
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), RqlError> {
    if range.contains(&args.len()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{name}` takes {}..={} arguments",
            range.start(),
            range.end()
        )))
    }
}

/// Interprets one call, adding filters to `filters` and options to `query`.
fn interpret(
    node: &Node,
    query: &mut Query,
    filters: &mut Vec<Expr>,
    top: bool,
) -> Result<(), RqlError> {
    let Node::Call(name, args) = node else {
        return Err(invalid("expected an operator"));
    };
    let is_option = matches!(
        name.as_str(),
        "select" | "sort" | "limit" | "skipCount" | "skip_count"
    );
    if !is_option {
        filters.push(filter(node, query)?);
        return Ok(());
    }
    if !top {
        return Err(invalid(format!(
            "`{name}` is only allowed at the top level"
        )));
    }
    match name.as_str() {
        "select" => {
            count(name, args, 1..=64)?;
            query.select = Some(args.iter().map(path).collect::<Result<_, _>>()?);
        }
        "sort" => {
            count(name, args, 1..=16)?;
            for arg in args {
                let Node::Value(raw) = arg else {
                    return Err(invalid("`sort` takes property paths"));
                };
                let text = decode(raw)?;
                let (direction, field) = match text.strip_prefix('-') {
                    Some(field) => (Direction::Descending, field.to_owned()),
                    None => (
                        Direction::Ascending,
                        text.trim_start_matches(['+', ' ']).to_owned(),
                    ),
                };
                query.sort.push((path(&Node::Value(field))?, direction));
            }
        }
        "limit" => {
            count(name, args, 1..=2)?;
            let numbers = values(args)?;
            let as_count = |value: &Scalar| match value {
                Scalar::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 1e15 => Ok(*n as u64),
                _ => Err(invalid("`limit` takes whole numbers")),
            };
            query.limit = Some(as_count(&numbers[0])?);
            if let Some(offset) = numbers.get(1) {
                query.offset = as_count(offset)?;
            }
        }
        _ => {
            count(name, args, 0..=0)?;
            query.skip_count = true;
        }
    }
    Ok(())
}

fn filter(node: &Node, query: &mut Query) -> Result<Expr, RqlError> {
    let Node::Call(name, args) = node else {
        return Err(invalid("expected an operator"));
    };
    let compare = |op: Cmp| -> Result<Expr, RqlError> {
        count(name, args, 2..=2)?;
        let mut value = values(&args[1..])?;
        Ok(Expr::Compare {
            path: path(&args[0])?,
            op,
            value: value.remove(0),
        })
    };
    Ok(match name.as_str() {
        "eq" => compare(Cmp::Eq)?,
        "ne" => compare(Cmp::Ne)?,
        "gt" => compare(Cmp::Gt)?,
        "ge" => compare(Cmp::Ge)?,
        "lt" => compare(Cmp::Lt)?,
        "le" => compare(Cmp::Le)?,
        "in" | "out" => {
            count(name, args, 2..=1000)?;
            Expr::In {
                path: path(&args[0])?,
                values: values(&args[1..])?,
                negated: name == "out",
            }
        }
        "like" => {
            count(name, args, 2..=2)?;
            let pattern = match values(&args[1..])?.remove(0) {
                Scalar::String(text) => text,
                Scalar::Number(n) => format!("{n}"),
                other => return Err(invalid(format!("`like` needs text, not {other:?}"))),
            };
            Expr::Like {
                path: path(&args[0])?,
                pattern,
            }
        }
        "contains" | "excludes" => {
            count(name, args, 1..=64)?;
            let mut conditions = Vec::new();
            for arg in &args[1..] {
                interpret(arg, query, &mut conditions, false)?;
            }
            let element = match conditions.len() {
                0 => None,
                1 => conditions.pop().map(Box::new),
                _ => Some(Box::new(Expr::And(conditions))),
            };
            Expr::Contains {
                path: path(&args[0])?,
                element,
                negated: name == "excludes",
            }
        }
        "and" | "or" => {
            let mut parts = Vec::new();
            for arg in args {
                interpret(arg, query, &mut parts, name == "and")?;
            }
            if name == "and" {
                Expr::And(parts)
            } else {
                Expr::Or(parts)
            }
        }
        other => return Err(invalid(format!("`{other}` is not a supported operator"))),
    })
}

/// Parses a raw (still percent-encoded) query string, without the leading `?`.
pub fn parse(raw: &str) -> Result<Query, RqlError> {
    let mut query = Query::default();
    if raw.trim().is_empty() {
        return Ok(query);
    }
    if raw.len() > 16 * 1024 {
        return Err(invalid("the query is too long"));
    }
    let mut parser = Parser {
        text: raw,
        at: 0,
        depth: 0,
    };
    let mut and = Vec::new();
    let mut or = Vec::new();
    loop {
        let term = parser.term()?;
        match parser.peek() {
            None => {
                and.push(term);
                break;
            }
            Some('&' | ',') => {
                parser.at += 1;
                and.push(term);
            }
            Some('|') => {
                parser.at += 1;
                or.push(term);
            }
            Some(other) => return Err(invalid(format!("unexpected `{other}`"))),
        }
        if !or.is_empty() && !and.is_empty() {
            return Err(invalid("`&` and `|` cannot be mixed in one group"));
        }
    }
    if !or.is_empty() {
        or.append(&mut and);
        let mut parts = Vec::new();
        for node in &or {
            parts.push(filter(node, &mut query)?);
        }
        query.filter = Some(Expr::Or(parts));
        return Ok(query);
    }
    let mut filters = Vec::new();
    for node in &and {
        interpret(node, &mut query, &mut filters, true)?;
    }
    query.filter = match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(Expr::And(filters)),
    };
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filter_of(raw: &str) -> Expr {
        parse(raw).unwrap().filter.unwrap()
    }

    #[test]
    fn comparisons_parse_with_typed_values() {
        assert_eq!(
            filter_of("eq(first_name,Adam)"),
            Expr::Compare {
                path: "first_name".into(),
                op: Cmp::Eq,
                value: Scalar::String("Adam".into())
            }
        );
        assert_eq!(
            filter_of("gt(data.hr,60)"),
            Expr::Compare {
                path: "data.hr".into(),
                op: Cmp::Gt,
                value: Scalar::Number(60.0)
            }
        );
        assert_eq!(
            filter_of("eq(activation,true)"),
            Expr::Compare {
                path: "activation".into(),
                op: Cmp::Eq,
                value: Scalar::Bool(true)
            }
        );
    }

    #[test]
    fn leading_zeros_and_the_string_converter_keep_text() {
        let Expr::Compare { value, .. } = filter_of("eq(phone_number,0123)") else {
            panic!()
        };
        assert_eq!(value, Scalar::String("0123".into()));
        let Expr::Compare { value, .. } = filter_of("eq(code,string:42)") else {
            panic!()
        };
        assert_eq!(value, Scalar::String("42".into()));
    }

    #[test]
    fn values_are_decoded_twice() {
        let Expr::Like { pattern, .. } = filter_of("like(description,a%2529a)") else {
            panic!()
        };
        assert_eq!(pattern, "a)a");
        let Expr::Compare { value, .. } = filter_of("eq(email,john.doe%2540example.com)") else {
            panic!()
        };
        assert_eq!(value, Scalar::String("john.doe@example.com".into()));
    }

    #[test]
    fn options_are_separated_from_filters() {
        let query = parse("eq(status,new)&select(id,data.title)&sort(-creationTimestamp,+name)&limit(10,40)&skipCount()").unwrap();
        assert_eq!(query.select, Some(vec!["id".into(), "data.title".into()]));
        assert_eq!(
            query.sort,
            vec![
                ("creationTimestamp".into(), Direction::Descending),
                ("name".into(), Direction::Ascending)
            ]
        );
        assert_eq!(
            (query.limit, query.offset, query.skip_count),
            (Some(10), 40, true)
        );
        assert!(matches!(query.filter, Some(Expr::Compare { .. })));
    }

    #[test]
    fn options_may_be_wrapped_in_and() {
        let query = parse("and(eq(a,1),limit(5))").unwrap();
        assert_eq!(query.limit, Some(5));
        assert_eq!(
            query.filter,
            Some(Expr::And(vec![Expr::Compare {
                path: "a".into(),
                op: Cmp::Eq,
                value: Scalar::Number(1.0)
            }]))
        );
    }

    #[test]
    fn fiql_sugar_becomes_calls() {
        assert_eq!(filter_of("age=gt=5"), filter_of("gt(age,5)"));
        assert_eq!(filter_of("age>=5"), filter_of("ge(age,5)"));
        assert_eq!(filter_of("age%3E5"), filter_of("gt(age,5)"));
        assert_eq!(filter_of("name=x"), filter_of("eq(name,x)"));
        assert_eq!(filter_of("name!=x"), filter_of("ne(name,x)"));
    }

    #[test]
    fn in_accepts_lists_and_arrays() {
        assert_eq!(filter_of("in(id,a,b)"), filter_of("in(id,(a,b))"));
    }

    #[test]
    fn element_matches_nest_conditions() {
        let Expr::Contains {
            path,
            element,
            negated,
        } = filter_of("contains(staff_enlistments,eq(group_id,5e9f))")
        else {
            panic!()
        };
        assert_eq!(path, "staff_enlistments");
        assert!(!negated);
        assert!(matches!(element.as_deref(), Some(Expr::Compare { .. })));
    }

    #[test]
    fn or_at_the_top_level() {
        assert!(matches!(filter_of("eq(a,1)|eq(a,2)"), Expr::Or(parts) if parts.len() == 2));
        assert!(parse("eq(a,1)|eq(a,2)&eq(b,3)").is_err());
    }

    #[test]
    fn malformed_queries_are_refused() {
        for raw in [
            "eq(a",
            "eq(a,1))",
            "nope(a,1)",
            "eq(a)",
            "limit(x)",
            "(a)",
            "eq(,1)",
            "a",
        ] {
            assert!(parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn dates_parse_in_both_forms() {
        assert_eq!(parse_date("2021-01-21"), Some(1_611_187_200_000));
        assert_eq!(
            parse_date("2021-09-24T09:11:40.000Z"),
            Some(1_632_474_700_000)
        );
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(raw in ".{0,200}") {
            let _ = parse(&raw);
        }

        #[test]
        fn the_parser_never_panics_on_rql_shaped_text(raw in "[a-z(),&|=<>!%0-9.:_-]{0,80}") {
            let _ = parse(&raw);
        }
    }
}
