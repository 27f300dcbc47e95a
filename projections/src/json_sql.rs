//! RQL over JSON columns (a document's `data`, its `userIds`), compiled to SQL with bound
//! parameters only — the same meaning on Postgres (`jsonb`) and SQLite (JSON1):
//!
//! - The values at a path are the value there, or the elements of the array there (one level).
//!   A comparison holds when one of them holds it: `eq(data.tags,x)` finds `x` in an array.
//! - Comparisons are typed: a number matches numbers (as doubles), a string strings (by code
//!   point), a boolean booleans; `null` matches JSON `null` and a missing value. Values of another
//!   type never match (`ne` and `out` then hold).
//! - `like` matches strings, case-insensitively for ASCII letters, with `*` wildcards.
//! - `contains(p)` holds when `p` is present (even `null`), `excludes(p)` when it is not;
//!   `contains(p, cond)` when `p` is an array with an element (an object) for which `cond` holds,
//!   or an object for which it holds, paths in `cond` being relative to the element or object.
//! - Sorting orders by type first (missing and `null`, numbers, strings, booleans, then objects
//!   and arrays), then by value.

use crate::rql::{Cmp, Direction, Expr, RqlError, Scalar, iso_date};
use crate::sql::{Dialect, Sql, like_pattern};
use crate::table::Value;

/// A JSON column RQL reaches: `path` itself (`userIds`), and below it when `nested` (`data.…`).
#[derive(Debug, Clone, Copy)]
pub struct JsonField {
    pub path: &'static str,
    pub column: &'static str,
    pub nested: bool,
    /// Postgres has a GIN index (`jsonb_path_ops`) on the column, so equality compiles to
    /// containment, which the index answers.
    pub contained: bool,
}

/// The indexes of a list's rows on paths into their JSON: which paths lead one, and which rows
/// they cover.
#[derive(Debug, Clone, Copy)]
pub struct Indexes<'a> {
    pub paths: &'a [String],
    /// Those of `paths` at which some row holds an array or an object: comparisons there keep
    /// the half that looks into arrays. At the others, the scalar half alone says the same, and
    /// the planner can read the index in order.
    pub arrays: &'a [String],
    /// The `data.<key>` paths a trigram index of the string there covers (Postgres): `like`
    /// on one of them is answered through it.
    pub searched: &'a [String],
    /// The list's table, its alias in the list's statement and its key column.
    pub table: &'static str,
    pub alias: &'static str,
    pub key: &'static str,
    /// The condition on the table's columns (unqualified, without parameters) selecting the rows
    /// the indexes cover.
    pub rows: &'a str,
}

impl Indexes<'_> {
    pub const NONE: Indexes<'static> = Indexes {
        paths: &[],
        arrays: &[],
        searched: &[],
        table: "",
        alias: "",
        key: "",
        rows: "TRUE",
    };
}

/// A place in a JSON value: the SQL expression of the root and the object keys below it.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub root: String,
    pub keys: Vec<&'a str>,
    /// The root has a containment index (see [`JsonField::contained`]).
    pub contained: bool,
    /// The indexes of the list, if one leads with this path: comparisons then compile to the
    /// typed terms it is built on.
    pub indexed: Option<Indexes<'a>>,
    /// Some row holds an array or an object at the path (when it is indexed).
    pub arrays: bool,
    /// A trigram index covers the string at this one-key path (see [`Indexes::searched`]).
    pub searched: bool,
}

/// Whether a key can be written into SQL as a literal (letters, digits, `_` and `-`): then an
/// expression over the path is the same text in a query and in an index, as matching needs.
fn plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl<'a> Location<'a> {
    /// The location `path` names under `fields`, if it is one; `indexed` lists the paths a
    /// schema index covers.
    pub fn of(
        fields: &[JsonField],
        path: &'a str,
        indexes: Indexes<'a>,
    ) -> Option<Result<Self, RqlError>> {
        fields.iter().find_map(|field| {
            let keys = if path == field.path {
                Vec::new()
            } else if field.nested {
                path.strip_prefix(field.path)?
                    .strip_prefix('.')?
                    .split('.')
                    .collect()
            } else {
                return None;
            };
            Some(Self::new(field.column.to_owned(), keys).map(|location| {
                Self {
                    contained: field.contained,
                    indexed: (indexes.paths.iter().any(|p| p == path)
                        && location.keys.iter().all(|k| plain(k)))
                    .then_some(indexes),
                    arrays: indexes.arrays.iter().any(|p| p == path),
                    searched: indexes.searched.iter().any(|p| p == path)
                        && matches!(location.keys.as_slice(), [key] if plain(key)),
                    ..location
                }
            }))
        })
    }

    /// The location `keys` below `root` (no index of either kind).
    pub fn new(root: String, keys: Vec<&'a str>) -> Result<Self, RqlError> {
        if let Some(bad) = keys
            .iter()
            .find(|k| k.is_empty() || k.contains(['"', '\\']))
        {
            return Err(RqlError(format!(
                "`{bad}` cannot be part of a queried path"
            )));
        }
        Ok(Self {
            root,
            keys,
            contained: false,
            indexed: None,
            arrays: false,
            searched: false,
        })
    }

    /// Postgres: the `jsonb` at the location (SQL NULL when missing).
    fn postgres(&self, sql: &mut Sql) -> String {
        let mut expression = self.root.clone();
        for key in &self.keys {
            let key = if plain(key) {
                format!("'{key}'")
            } else {
                sql.bind(Value::Text((*key).to_owned()))
            };
            expression = format!("({expression} -> {key})");
        }
        expression
    }

    /// SQLite: the JSON path of the location.
    fn sqlite_path(&self, sql: &mut Sql) -> String {
        let path: String = std::iter::once("$".to_owned())
            .chain(self.keys.iter().map(|k| format!(".\"{k}\"")))
            .collect();
        if self.keys.iter().all(|k| plain(k)) {
            format!("'{path}'")
        } else {
            sql.bind(Value::Text(path))
        }
    }

    /// The value at the location as a JSON document holding it at the same place: `{"a": {"b":
    /// v}}` for `a.b`.
    fn nest(&self, value: serde_json::Value) -> serde_json::Value {
        self.keys.iter().rev().fold(value, |inner, key| {
            serde_json::Value::Object(serde_json::Map::from_iter([((*key).to_owned(), inner)]))
        })
    }
}

/// The typed views of the value at a location, on which lists sort and schema indexes are built:
/// its rank (0 missing or `null`, 1 number, 2 string, 3 boolean, 4 object or array), its number
/// (booleans as 0 and 1) and its string (by code point).
#[derive(Debug, Clone)]
pub struct Terms {
    pub rank: String,
    pub number: String,
    pub text: String,
    /// Postgres: the string's first [`PREFIX`] characters, which its indexes hold instead of the
    /// string (an entry of a B-tree holds at most about 2.7 kB: a longer string would stop the
    /// read model). Tests on strings compare the prefixes, which the index answers, and then the
    /// strings.
    pub prefix: Option<String>,
}

/// The characters of a string a Postgres index holds (at most 4 bytes each).
const PREFIX: usize = 200;

impl Terms {
    pub fn of(dialect: Dialect, location: &Location<'_>, sql: &mut Sql) -> Self {
        match dialect {
            Dialect::Postgres => {
                let value = location.postgres(sql);
                Self {
                    rank: format!(
                        "(CASE jsonb_typeof({value}) WHEN 'number' THEN 1 WHEN 'string' THEN 2 \
                         WHEN 'boolean' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END)"
                    ),
                    number: format!(
                        "(CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value} #>> '{{}}')::float8 \
                         WHEN jsonb_typeof({value}) = 'boolean' THEN (CASE WHEN {value} = 'true'::jsonb THEN 1 ELSE 0 END) END)"
                    ),
                    text: format!(
                        "((CASE WHEN jsonb_typeof({value}) = 'string' THEN {value} #>> '{{}}' END) COLLATE \"C\")"
                    ),
                    prefix: Some(format!(
                        "(left((CASE WHEN jsonb_typeof({value}) = 'string' THEN {value} #>> '{{}}' END), {PREFIX}) COLLATE \"C\")"
                    )),
                }
            }
            Dialect::Sqlite => {
                let root = &location.root;
                let path = location.sqlite_path(sql);
                let kind = format!("json_type({root}, {path})");
                Self {
                    rank: format!(
                        "(CASE {kind} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 \
                         WHEN 'true' THEN 3 WHEN 'false' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END)"
                    ),
                    number: format!(
                        "(CASE WHEN {kind} IN ('integer', 'real') THEN CAST(json_extract({root}, {path}) AS REAL) \
                         WHEN {kind} = 'true' THEN 1 WHEN {kind} = 'false' THEN 0 END)"
                    ),
                    text: format!(
                        "(CASE WHEN {kind} = 'text' THEN json_extract({root}, {path}) END)"
                    ),
                    prefix: None,
                }
            }
        }
    }

    /// Whether a scalar value passes `op value`, in the terms (`None` for `null`, which also
    /// matches a missing value and is left to the general form).
    fn scalar_test(&self, op: Cmp, value: &Scalar, sql: &mut Sql) -> Option<String> {
        let Self { rank, number, .. } = self;
        let operator = operator(op);
        Some(match value {
            Scalar::Null => return None,
            Scalar::Number(n) => format!(
                "({rank} = 1 AND {number} {operator} {})",
                sql.bind(Value::Float(*n))
            ),
            Scalar::String(s) => self.string_test(op, s.clone(), sql),
            Scalar::Date(millis) => self.string_test(op, iso_date(*millis), sql),
            Scalar::Bool(_) if op != Cmp::Eq => "FALSE".to_owned(),
            Scalar::Bool(b) => format!("({rank} = 3 AND {number} = {})", u8::from(*b)),
        })
    }

    /// Whether the value is a string that passes `op text`: through the prefixes where there are
    /// (the string is greater only if its prefix is not smaller, and so on), and then the strings
    /// unless `text` is shorter than a prefix, which its prefix then answers alone.
    fn string_test(&self, op: Cmp, text: String, sql: &mut Sql) -> String {
        let Self { rank, number, .. } = self;
        let short = text.chars().count() < PREFIX;
        let value = sql.bind(Value::Text(text));
        let operator = operator(op);
        let test = match (&self.prefix, op) {
            (None, _) => format!("{} {operator} {value}", self.text),
            (Some(prefix), _) if short => format!("{prefix} {operator} {value}"),
            (Some(prefix), Cmp::Eq | Cmp::Ne) => format!(
                "{prefix} = left({value}, {PREFIX}) AND {} {operator} {value}",
                self.text
            ),
            (Some(prefix), Cmp::Gt | Cmp::Ge) => format!(
                "{prefix} >= left({value}, {PREFIX}) AND {} {operator} {value}",
                self.text
            ),
            (Some(prefix), Cmp::Lt | Cmp::Le) => format!(
                "{prefix} <= left({value}, {PREFIX}) AND {} {operator} {value}",
                self.text
            ),
        };
        format!("({rank} = 2 AND {number} IS NULL AND {test})")
    }

    /// Whether the scalar value is one of `values` (`None` when one is `null`).
    fn scalar_in(&self, values: &[Scalar], sql: &mut Sql) -> Option<String> {
        if values.contains(&Scalar::Null) {
            return None;
        }
        let Self {
            rank, number, text, ..
        } = self;
        let numbers: Vec<Value> = values
            .iter()
            .filter_map(|v| match v {
                Scalar::Number(n) => Some(Value::Float(*n)),
                _ => None,
            })
            .collect();
        let strings: Vec<Value> = values
            .iter()
            .filter_map(|v| match v {
                Scalar::String(s) => Some(Value::Text(s.clone())),
                Scalar::Date(millis) => Some(Value::Text(iso_date(*millis))),
                _ => None,
            })
            .collect();
        let booleans: Vec<String> = values
            .iter()
            .filter_map(|v| match v {
                Scalar::Bool(b) => Some(u8::from(*b).to_string()),
                _ => None,
            })
            .collect();
        let mut tests = Vec::new();
        if !numbers.is_empty() {
            tests.push(format!(
                "({rank} = 1 AND {number} IN ({}))",
                sql.bind_all(numbers)
            ));
        }
        if !strings.is_empty() {
            let short = strings
                .iter()
                .all(|s| matches!(s, Value::Text(s) if s.chars().count() < PREFIX));
            let placeholders: Vec<String> = strings.into_iter().map(|s| sql.bind(s)).collect();
            let placeholders = placeholders.join(", ");
            let test = match &self.prefix {
                Some(prefix) if short => format!("{prefix} IN ({placeholders})"),
                Some(prefix) => {
                    let lefts: Vec<String> = placeholders
                        .split(", ")
                        .map(|p| format!("left({p}, {PREFIX})"))
                        .collect();
                    format!(
                        "{prefix} IN ({}) AND {text} IN ({placeholders})",
                        lefts.join(", ")
                    )
                }
                None => format!("{text} IN ({placeholders})"),
            };
            tests.push(format!("({rank} = 2 AND {number} IS NULL AND {test})"));
        }
        if !booleans.is_empty() {
            tests.push(format!(
                "({rank} = 3 AND {number} IN ({}))",
                booleans.join(", ")
            ));
        }
        Some(if tests.is_empty() {
            "FALSE".to_owned()
        } else {
            format!("({})", tests.join(" OR "))
        })
    }
}

fn operator(op: Cmp) -> &'static str {
    match op {
        Cmp::Eq | Cmp::Ne => "=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Lt => "<",
        Cmp::Le => "<=",
    }
}

/// A typed condition on one value: `(type test) AND (value test)` per dialect.
fn element_test(dialect: Dialect, alias: &str, op: Cmp, value: &Scalar, sql: &mut Sql) -> String {
    let operator = operator(op);
    let ordering = !matches!(op, Cmp::Eq | Cmp::Ne);
    match (dialect, value) {
        (_, Scalar::Date(millis)) => {
            element_test(dialect, alias, op, &Scalar::String(iso_date(*millis)), sql)
        }
        // Postgres does not promise to test the type before casting, so the cast is guarded.
        (Dialect::Postgres, Scalar::Number(n)) => format!(
            "((CASE WHEN jsonb_typeof({alias}.j) = 'number' THEN ({alias}.j #>> '{{}}')::float8 END) {operator} {})",
            sql.bind(Value::Float(*n))
        ),
        (Dialect::Sqlite, Scalar::Number(n)) => format!(
            "({alias}.type IN ('integer', 'real') AND CAST({alias}.value AS REAL) {operator} {})",
            sql.bind(Value::Float(*n))
        ),
        (Dialect::Postgres, Scalar::String(s)) => format!(
            "(jsonb_typeof({alias}.j) = 'string' AND ({alias}.j #>> '{{}}') COLLATE \"C\" {operator} {})",
            sql.bind(Value::Text(s.clone()))
        ),
        (Dialect::Sqlite, Scalar::String(s)) => format!(
            "({alias}.type = 'text' AND {alias}.value {operator} {})",
            sql.bind(Value::Text(s.clone()))
        ),
        (_, Scalar::Bool(_) | Scalar::Null) if ordering => "FALSE".to_owned(),
        (Dialect::Postgres, Scalar::Bool(b)) => format!("({alias}.j = '{b}'::jsonb)"),
        (Dialect::Sqlite, Scalar::Bool(b)) => format!("({alias}.type = '{b}')"),
        (Dialect::Postgres, Scalar::Null) => format!("(jsonb_typeof({alias}.j) = 'null')"),
        (Dialect::Sqlite, Scalar::Null) => format!("({alias}.type = 'null')"),
    }
}

/// The expression a trigram index of the strings at `location` is built on (`data.<key>` on
/// Postgres): the lowered text of the value there.
pub fn searched_term(root: &str, key: &str) -> String {
    lowered(&format!("{root} ->> '{key}'"))
}

/// The text `expression` lowered for `like`: ASCII letters only, whatever the database's locale.
fn lowered(expression: &str) -> String {
    format!("lower(({expression}) COLLATE \"C\")")
}

/// The indexed text that must hold `pattern` for some value at `location` to be `like` it, when
/// a trigram index covers the location and that follows: the pattern is a substring search (no
/// `*`) of characters JSON writes as themselves. The text of an array is its JSON, in which each
/// of its strings then appears.
fn searched_text(dialect: Dialect, location: &Location<'_>, pattern: &str) -> Option<String> {
    let literal = !pattern
        .chars()
        .any(|c| c == '*' || c == '"' || c == '\\' || c.is_control());
    match (dialect, location.keys.as_slice()) {
        (Dialect::Postgres, [key]) if location.searched && literal => {
            Some(searched_term(&location.root, key))
        }
        _ => None,
    }
}

/// `text` (already [`lowered`]) `LIKE` the bound `pattern`, lowered the same way.
fn lowered_like(text: &str, pattern: &str) -> String {
    format!("{text} LIKE {} ESCAPE '\\'", lowered(pattern))
}

fn like_test(dialect: Dialect, alias: &str, pattern: &str, sql: &mut Sql) -> String {
    let pattern = sql.bind(Value::Text(like_pattern(pattern)));
    match dialect {
        Dialect::Postgres => format!(
            "(jsonb_typeof({alias}.j) = 'string' AND {})",
            lowered_like(&lowered(&format!("{alias}.j #>> '{{}}'")), &pattern)
        ),
        Dialect::Sqlite => {
            format!("({alias}.type = 'text' AND {alias}.value LIKE {pattern} ESCAPE '\\')")
        }
    }
}

/// Whether some value at `location` passes `test` (given the alias of the value); when
/// `missing_passes`, a missing value passes too.
fn any_value(
    dialect: Dialect,
    location: &Location<'_>,
    sql: &mut Sql,
    missing_passes: bool,
    test: impl FnOnce(&str, &mut Sql) -> String,
) -> String {
    match dialect {
        Dialect::Postgres => {
            let value = location.postgres(sql);
            let alias = sql.alias("v");
            let condition = test(&alias, sql);
            format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({value}) = 'array' \
                 THEN {value} ELSE jsonb_build_array({value}) END) AS {alias}(j) WHERE {condition})"
            )
        }
        // `LIMIT 1`: the SQLite Vigil links turns this `EXISTS` into a join, which repeats the
        // row once per matching element (a page with an offset then showed a row twice).
        Dialect::Sqlite => {
            let root = &location.root;
            let path = location.sqlite_path(sql);
            let alias = sql.alias("v");
            let condition = test(&alias, sql);
            let missing = if missing_passes {
                format!(" OR json_type({root}, {path}) IS NULL")
            } else {
                String::new()
            };
            format!(
                "(EXISTS (SELECT 1 FROM json_each({root}, {path}) AS {alias} WHERE \
                 json_type({root}, {path}) <> 'object' AND {condition} LIMIT 1){missing})"
            )
        }
    }
}

/// The largest magnitude below which every integer is a double.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// `value` as the JSON a document holds when it equals it, if containment can say so. Numbers are
/// compared as doubles and containment compares decimals; a document holds each number as the
/// shortest decimal of its double (or an exact integer), so the two agree except for integers
/// beyond 2^53, which are left to the general form.
fn json_literal(value: &Scalar) -> Option<serde_json::Value> {
    match value {
        Scalar::String(s) => Some(serde_json::Value::String(s.clone())),
        Scalar::Date(millis) => Some(serde_json::Value::String(iso_date(*millis))),
        Scalar::Bool(b) => Some(serde_json::Value::Bool(*b)),
        Scalar::Number(n) if n.abs() < EXACT_INTEGERS || n.fract() != 0.0 => {
            serde_json::Number::from_f64(*n).map(serde_json::Value::Number)
        }
        Scalar::Number(_) | Scalar::Null => None,
    }
}

/// On a root with a containment index, whether the value at `location` is one of `values` or an
/// array holding one: `root @> {"a": v}` or `root @> {"a": [v]}` says exactly that (an array
/// whose element is an array or object holding `v` does not contain `{"a": [v]}`), and the GIN
/// index answers it. `None` where containment cannot say it.
fn containment(location: &Location<'_>, values: &[Scalar], sql: &mut Sql) -> Option<String> {
    if !location.contained {
        return None;
    }
    let literals = values
        .iter()
        .map(json_literal)
        .collect::<Option<Vec<_>>>()?;
    if literals.is_empty() {
        return Some("FALSE".to_owned());
    }
    let root = location.root.clone();
    let tests: Vec<String> = literals
        .into_iter()
        .flat_map(|literal| {
            [
                location.nest(literal.clone()),
                location.nest(serde_json::Value::Array(vec![literal])),
            ]
        })
        .map(|document| {
            format!(
                "{root} @> {}::jsonb",
                sql.bind(Value::Text(document.to_string()))
            )
        })
        .collect();
    Some(format!("({})", tests.join(" OR ")))
}

/// On a path a schema index covers, `scalar` (a test of a scalar value in the typed terms the
/// index is built on) or, for an array, the general test of its elements: the index answers both
/// halves (the second through its rank), with exactly the general form's meaning. Where no row
/// holds an array or object at the path, the scalar half alone.
///
/// SQLite would rather walk the list's order than read an `OR` through an index: there the keys
/// each half matches are selected by a query of their own, which it answers through the index.
fn indexed<'a>(
    dialect: Dialect,
    location: &Location<'a>,
    sql: &mut Sql,
    scalar: impl FnOnce(&Terms, &mut Sql) -> Option<String>,
    general: impl FnOnce(&Location<'a>, &mut Sql) -> String,
) -> Option<String> {
    let indexes = location.indexed?;
    match dialect {
        Dialect::Postgres => {
            let terms = Terms::of(dialect, location, sql);
            let scalar = scalar(&terms, sql)?;
            if !location.arrays {
                return Some(scalar);
            }
            let general = general(location, sql);
            Some(format!("({scalar} OR ({} = 4 AND {general}))", terms.rank))
        }
        Dialect::Sqlite => {
            let Indexes {
                table,
                alias: outer,
                key,
                rows,
                ..
            } = indexes;
            let alias = sql.alias("i");
            let inner = Location {
                root: format!(
                    "{alias}.{}",
                    location.root.rsplit('.').next().unwrap_or_default()
                ),
                keys: location.keys.clone(),
                contained: false,
                indexed: None,
                arrays: false,
                searched: false,
            };
            let terms = Terms::of(dialect, &inner, sql);
            let scalar = scalar(&terms, sql)?;
            let rows = format!("{alias}.{rows}");
            let arrays = if location.arrays {
                format!(
                    " UNION ALL SELECT {alias}.{key} FROM {table} {alias} WHERE {rows} AND {} = 4 AND {}",
                    terms.rank,
                    general(&inner, sql)
                )
            } else {
                String::new()
            };
            Some(format!(
                "({outer}.{key} IN (SELECT {alias}.{key} FROM {table} {alias} WHERE {rows} AND {scalar}{arrays}))"
            ))
        }
    }
}

/// A comparison (or `in`) at `location` in the best form that says it: through the typed terms of
/// a schema index (`scalar`), else, for an equality with one of `equal` on Postgres, through
/// containment, else in the `general` form.
fn best_form<'a>(
    dialect: Dialect,
    location: &Location<'a>,
    sql: &mut Sql,
    scalar: impl FnOnce(&Terms, &mut Sql) -> Option<String>,
    equal: Option<&[Scalar]>,
    general: impl Fn(&Location<'a>, &mut Sql) -> String,
) -> String {
    indexed(dialect, location, sql, scalar, &general)
        .or_else(|| {
            equal
                .filter(|_| dialect == Dialect::Postgres)
                .and_then(|values| containment(location, values, sql))
        })
        .unwrap_or_else(|| general(location, sql))
}

/// `NOT condition` when `negated`.
fn negate(negated: bool, condition: String) -> String {
    if negated {
        format!("(NOT {condition})")
    } else {
        condition
    }
}

/// `filter` (a comparison, `in`, `like` or `contains` on `location`) as SQL.
///
/// A comparison on a path a schema index covers compiles to the typed terms the index is built
/// on; an equality elsewhere, on Postgres, to containment, which the GIN index of `data` answers;
/// anything else to the general form, which looks at each value at the path.
pub fn condition(
    dialect: Dialect,
    location: &Location<'_>,
    filter: &Expr,
    sql: &mut Sql,
) -> Result<String, RqlError> {
    Ok(match filter {
        Expr::Compare { op, value, .. } => {
            let negated = *op == Cmp::Ne;
            let op = if negated { Cmp::Eq } else { *op };
            let general = |location: &Location<'_>, sql: &mut Sql| {
                any_value(
                    dialect,
                    location,
                    sql,
                    *value == Scalar::Null && op == Cmp::Eq,
                    |alias, sql| element_test(dialect, alias, op, value, sql),
                )
            };
            let equal = (op == Cmp::Eq).then_some(std::slice::from_ref(value));
            let matches = best_form(
                dialect,
                location,
                sql,
                |terms, sql| terms.scalar_test(op, value, sql),
                equal,
                general,
            );
            negate(negated, matches)
        }
        Expr::In {
            values, negated, ..
        } => {
            let general = |location: &Location<'_>, sql: &mut Sql| {
                any_value(
                    dialect,
                    location,
                    sql,
                    values.contains(&Scalar::Null),
                    |alias, sql| {
                        let tests: Vec<String> = values
                            .iter()
                            .map(|value| element_test(dialect, alias, Cmp::Eq, value, sql))
                            .collect();
                        if tests.is_empty() {
                            "FALSE".to_owned()
                        } else {
                            format!("({})", tests.join(" OR "))
                        }
                    },
                )
            };
            let matches = best_form(
                dialect,
                location,
                sql,
                |terms, sql| terms.scalar_in(values, sql),
                Some(values),
                general,
            );
            negate(*negated, matches)
        }
        Expr::Like { pattern, .. } => {
            let matches = any_value(dialect, location, sql, false, |alias, sql| {
                like_test(dialect, alias, pattern, sql)
            });
            match searched_text(dialect, location, pattern) {
                Some(text) => {
                    let pattern = sql.bind(Value::Text(like_pattern(pattern)));
                    format!("({} AND {matches})", lowered_like(&text, &pattern))
                }
                None => matches,
            }
        }
        Expr::Contains {
            element: None,
            negated,
            ..
        } => {
            let present = match dialect {
                Dialect::Postgres => format!("({} IS NOT NULL)", location.postgres(sql)),
                Dialect::Sqlite => format!(
                    "(json_type({}, {}) IS NOT NULL)",
                    location.root,
                    location.sqlite_path(sql)
                ),
            };
            negate(*negated, present)
        }
        Expr::Contains {
            element: Some(element),
            negated,
            ..
        } => {
            let exists = match dialect {
                Dialect::Postgres => {
                    let value = location.postgres(sql);
                    let alias = sql.alias("e");
                    let inner = relative(dialect, &format!("{alias}.j"), element, sql)?;
                    format!(
                        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof({value}) \
                         WHEN 'array' THEN {value} WHEN 'object' THEN jsonb_build_array({value}) \
                         ELSE '[]'::jsonb END) AS {alias}(j) WHERE {inner})"
                    )
                }
                Dialect::Sqlite => {
                    let root = &location.root;
                    let path = location.sqlite_path(sql);
                    let alias = sql.alias("e");
                    let element_root = format!(
                        "(CASE WHEN {alias}.type IN ('object', 'array') THEN {alias}.value ELSE json_quote({alias}.value) END)"
                    );
                    let inner = relative(dialect, &element_root, element, sql)?;
                    format!(
                        "EXISTS (SELECT 1 FROM (SELECT e.type AS type, e.value AS value \
                         FROM json_each({root}, {path}) AS e WHERE json_type({root}, {path}) = 'array' \
                         UNION ALL SELECT 'object', json_extract({root}, {path}) \
                         WHERE json_type({root}, {path}) = 'object') AS {alias} WHERE {inner})"
                    )
                }
            };
            negate(*negated, format!("({exists})"))
        }
        Expr::And(_) | Expr::Or(_) => {
            return Err(RqlError("a JSON condition is a comparison".into()));
        }
    })
}

/// `filter` with every path relative to the JSON value `root` (an element of an array).
fn relative(
    dialect: Dialect,
    root: &str,
    filter: &Expr,
    sql: &mut Sql,
) -> Result<String, RqlError> {
    let path = match filter {
        Expr::And(parts) | Expr::Or(parts) if parts.is_empty() => return Ok("TRUE".into()),
        Expr::And(parts) | Expr::Or(parts) => {
            let joiner = if matches!(filter, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let compiled = parts
                .iter()
                .map(|part| relative(dialect, root, part, sql))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(format!("({})", compiled.join(joiner)));
        }
        Expr::Compare { path, .. }
        | Expr::In { path, .. }
        | Expr::Like { path, .. }
        | Expr::Contains { path, .. } => path,
    };
    let location = Location::new(root.to_owned(), path.split('.').collect())?;
    condition(dialect, &location, filter, sql)
}

/// `ORDER BY` terms for a JSON location: by type, then by value (an index of the path, if a
/// schema has one, is built on the same terms, so a sorted page is read from it in order).
pub fn order_terms(
    dialect: Dialect,
    location: &Location<'_>,
    direction: Direction,
    sql: &mut Sql,
) -> Vec<String> {
    let Terms {
        rank,
        number,
        text,
        prefix,
    } = Terms::of(dialect, location, sql);
    let order = match direction {
        Direction::Ascending => "ASC",
        Direction::Descending => "DESC",
    };
    [Some(rank), Some(number), prefix, Some(text)]
        .into_iter()
        .flatten()
        .map(|term| format!("{term} {order}"))
        .collect()
}
