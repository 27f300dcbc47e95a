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
}

/// A place in a JSON value: the SQL expression of the root and the object keys below it.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub root: String,
    pub keys: Vec<&'a str>,
}

impl<'a> Location<'a> {
    /// The location `path` names under `fields`, if it is one.
    pub fn of(fields: &[JsonField], path: &'a str) -> Option<Result<Self, RqlError>> {
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
            Some(Self::new(field.column.to_owned(), keys))
        })
    }

    fn new(root: String, keys: Vec<&'a str>) -> Result<Self, RqlError> {
        if let Some(bad) = keys
            .iter()
            .find(|k| k.is_empty() || k.contains(['"', '\\']))
        {
            return Err(RqlError(format!(
                "`{bad}` cannot be part of a queried path"
            )));
        }
        Ok(Self { root, keys })
    }

    /// Postgres: the `jsonb` at the location (SQL NULL when missing).
    fn postgres(&self, sql: &mut Sql) -> String {
        let mut expression = self.root.clone();
        for key in &self.keys {
            expression = format!(
                "({expression} -> {})",
                sql.bind(Value::Text((*key).to_owned()))
            );
        }
        expression
    }

    /// SQLite: the JSON path of the location, bound.
    fn sqlite_path(&self, sql: &mut Sql) -> String {
        let path: String = std::iter::once("$".to_owned())
            .chain(self.keys.iter().map(|k| format!(".\"{k}\"")))
            .collect();
        sql.bind(Value::Text(path))
    }
}

/// A typed condition on one value: `(type test) AND (value test)` per dialect.
fn element_test(dialect: Dialect, alias: &str, op: Cmp, value: &Scalar, sql: &mut Sql) -> String {
    let operator = match op {
        Cmp::Eq | Cmp::Ne => "=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Lt => "<",
        Cmp::Le => "<=",
    };
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
            "({alias}.type IN ('integer', 'real') AND {alias}.value {operator} {})",
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

fn like_test(dialect: Dialect, alias: &str, pattern: &str, sql: &mut Sql) -> String {
    let pattern = sql.bind(Value::Text(like_pattern(pattern)));
    match dialect {
        Dialect::Postgres => format!(
            "(jsonb_typeof({alias}.j) = 'string' AND lower(({alias}.j #>> '{{}}') COLLATE \"C\") LIKE lower({pattern} COLLATE \"C\") ESCAPE '\\')"
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
            let alias = format!("v{}", sql.binds.len());
            let condition = test(&alias, sql);
            format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({value}) = 'array' \
                 THEN {value} ELSE jsonb_build_array({value}) END) AS {alias}(j) WHERE {condition})"
            )
        }
        Dialect::Sqlite => {
            let root = &location.root;
            let path = location.sqlite_path(sql);
            let alias = format!("v{}", sql.binds.len());
            let condition = test(&alias, sql);
            let missing = if missing_passes {
                format!(" OR json_type({root}, {path}) IS NULL")
            } else {
                String::new()
            };
            format!(
                "(EXISTS (SELECT 1 FROM json_each({root}, {path}) AS {alias} WHERE \
                 json_type({root}, {path}) <> 'object' AND {condition}){missing})"
            )
        }
    }
}

/// `filter` (a comparison, `in`, `like` or `contains` on `location`) as SQL.
pub fn condition(
    dialect: Dialect,
    location: &Location<'_>,
    filter: &Expr,
    sql: &mut Sql,
) -> Result<String, RqlError> {
    Ok(match filter {
        Expr::Compare { op, value, .. } => {
            let op = *op;
            let matches = any_value(
                dialect,
                location,
                sql,
                *value == Scalar::Null && matches!(op, Cmp::Eq | Cmp::Ne),
                |alias, sql| {
                    element_test(
                        dialect,
                        alias,
                        if op == Cmp::Ne { Cmp::Eq } else { op },
                        value,
                        sql,
                    )
                },
            );
            if op == Cmp::Ne {
                format!("(NOT {matches})")
            } else {
                matches
            }
        }
        Expr::In {
            values, negated, ..
        } => {
            let missing = values.contains(&Scalar::Null);
            let matches = any_value(dialect, location, sql, missing, |alias, sql| {
                let tests: Vec<String> = values
                    .iter()
                    .map(|value| element_test(dialect, alias, Cmp::Eq, value, sql))
                    .collect();
                if tests.is_empty() {
                    "FALSE".to_owned()
                } else {
                    format!("({})", tests.join(" OR "))
                }
            });
            if *negated {
                format!("(NOT {matches})")
            } else {
                matches
            }
        }
        Expr::Like { pattern, .. } => any_value(dialect, location, sql, false, |alias, sql| {
            like_test(dialect, alias, pattern, sql)
        }),
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
            if *negated {
                format!("(NOT {present})")
            } else {
                present
            }
        }
        Expr::Contains {
            element: Some(element),
            negated,
            ..
        } => {
            let exists = match dialect {
                Dialect::Postgres => {
                    let value = location.postgres(sql);
                    let alias = format!("e{}", sql.binds.len());
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
                    let alias = format!("e{}", sql.binds.len());
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
            if *negated {
                format!("(NOT {exists})")
            } else {
                format!("({exists})")
            }
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

/// `ORDER BY` terms for a JSON location: by type, then by value.
pub fn order_terms(
    dialect: Dialect,
    location: &Location<'_>,
    direction: Direction,
    sql: &mut Sql,
) -> Vec<String> {
    let (rank, number, text) = match dialect {
        Dialect::Postgres => {
            let value = location.postgres(sql);
            (
                format!(
                    "(CASE jsonb_typeof({value}) WHEN 'number' THEN 1 WHEN 'string' THEN 2 \
                     WHEN 'boolean' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END)"
                ),
                format!(
                    "(CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value} #>> '{{}}')::float8 \
                     WHEN jsonb_typeof({value}) = 'boolean' THEN (CASE WHEN {value} = 'true'::jsonb THEN 1 ELSE 0 END) END)"
                ),
                format!(
                    "(CASE WHEN jsonb_typeof({value}) = 'string' THEN {value} #>> '{{}}' END) COLLATE \"C\""
                ),
            )
        }
        Dialect::Sqlite => {
            let root = &location.root;
            let path = location.sqlite_path(sql);
            let kind = format!("json_type({root}, {path})");
            (
                format!(
                    "(CASE {kind} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 \
                     WHEN 'true' THEN 3 WHEN 'false' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END)"
                ),
                format!(
                    "(CASE WHEN {kind} IN ('integer', 'real') THEN json_extract({root}, {path}) \
                     WHEN {kind} = 'true' THEN 1 WHEN {kind} = 'false' THEN 0 END)"
                ),
                format!("(CASE WHEN {kind} = 'text' THEN json_extract({root}, {path}) END)"),
            )
        }
    };
    let order = match direction {
        Direction::Ascending => "ASC",
        Direction::Descending => "DESC",
    };
    [rank, number, text]
        .into_iter()
        .map(|term| format!("{term} {order}"))
        .collect()
}
