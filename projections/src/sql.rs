//! RQL compiled to SQL: filters become a `WHERE` clause with bound parameters only, and sorts an
//! `ORDER BY`, over the columns a read model exposes. A property the read model does not expose is
//! an RQL error, never a query on an arbitrary name.

use crate::json_sql::{self, Indexes, JsonField, Location};
use crate::rql::{Cmp, Direction, Expr, Query, RqlError, Scalar};
use crate::store::ReadStore;
use crate::table::Value;

/// How a column compares and sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Integer,
    Bool,
    /// Milliseconds since the epoch; RQL may give a number or an ISO date.
    Timestamp,
}

/// A property a query may filter or sort on.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The RQL path, e.g. `first_name`.
    pub path: &'static str,
    /// The SQL expression, e.g. `u.first_name`.
    pub column: &'static str,
    pub field_type: FieldType,
}

impl Field {
    pub const fn new(path: &'static str, column: &'static str, field_type: FieldType) -> Self {
        Self {
            path,
            column,
            field_type,
        }
    }
}

/// A list of objects each row has, kept in another table (a user's staff enlistments): RQL reaches
/// its elements with dotted paths (`staff_enlistments.group_id`) and `contains(path, <condition>)`,
/// compiled to `EXISTS` subqueries.
#[derive(Debug, Clone, Copy)]
pub struct Relation {
    /// The RQL path of the list, e.g. `staff_enlistments`.
    pub path: &'static str,
    /// `FROM <table> <alias> WHERE <alias>.<key> = <outer row's key>`: the elements of a row.
    pub elements: &'static str,
    /// The properties of an element, as columns of the alias.
    pub fields: &'static [Field],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl From<&ReadStore> for Dialect {
    fn from(store: &ReadStore) -> Self {
        match store {
            ReadStore::Postgres(_) => Self::Postgres,
            ReadStore::Sqlite(_) => Self::Sqlite,
        }
    }
}

/// SQL text with `$n` placeholders and the values they stand for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Value>,
    /// How many subquery aliases were handed out, so nested ones never shadow each other.
    pub aliases: usize,
}

impl Sql {
    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, value: Value) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// A fresh alias for a subquery: `prefix` and a number unique in this statement.
    pub fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// Adds parameters and returns their placeholders as a list (`$1, $2`), for `IN (...)`.
    pub fn bind_all(&mut self, values: impl IntoIterator<Item = Value>) -> String {
        values
            .into_iter()
            .map(|value| self.bind(value))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Visibility of a list limited to one user's rows (`user_id`), when `user` is given.
pub fn of_user(user: Option<&str>) -> Option<Sql> {
    user.map(|user| {
        let mut sql = Sql::default();
        sql.text = format!("user_id = {}", sql.bind(Value::Text(user.to_owned())));
        sql
    })
}

/// Compiles RQL against one read model's fields.
pub struct Compiler<'a> {
    pub fields: &'a [Field],
    pub relations: &'a [Relation],
    /// JSON columns, queried by the paths into them.
    pub json: &'a [JsonField],
    /// The indexes of JSON paths.
    pub indexed: Indexes<'a>,
    pub dialect: Dialect,
}

impl Compiler<'_> {
    fn field(&self, path: &str) -> Result<&Field, RqlError> {
        self.fields
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| RqlError(format!("`{path}` cannot be queried here")))
    }

    /// The relation a path is, or reaches into with a dotted path (with the rest of that path).
    fn relation<'p>(&self, path: &'p str) -> Option<(&Relation, Option<&'p str>)> {
        let (head, rest) = match path.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        self.relations
            .iter()
            .find(|r| r.path == head)
            .map(|relation| (relation, rest))
    }

    /// `filter` on the elements of a relation: whether some element (or, `negated`, none) matches.
    fn exists(
        &self,
        relation: &Relation,
        element: Option<&Expr>,
        negated: bool,
        sql: &mut Sql,
    ) -> Result<String, RqlError> {
        let inner = Compiler {
            fields: relation.fields,
            relations: &[],
            json: &[],
            indexed: Indexes::NONE,
            dialect: self.dialect,
        };
        let condition = match element {
            Some(element) => format!(" AND {}", inner.filter(element, sql)?),
            None => String::new(),
        };
        Ok(format!(
            "({}EXISTS (SELECT 1 {}{condition}))",
            if negated { "NOT " } else { "" },
            relation.elements
        ))
    }

    /// A condition on a dotted path into a relation (`staff_enlistments.group_id`), if it is one.
    /// As in Extra Horizon's document store, `ne` and `out` mean that no element matches.
    fn through_relation(&self, filter: &Expr, sql: &mut Sql) -> Option<Result<String, RqlError>> {
        let path = match filter {
            Expr::Compare { path, .. } | Expr::In { path, .. } | Expr::Like { path, .. } => path,
            _ => return None,
        };
        if self.fields.iter().any(|f| f.path == path) {
            return None;
        }
        let (relation, Some(rest)) = self.relation(path)? else {
            return None;
        };
        let rest = rest.to_owned();
        let (element, negated) = match filter.clone() {
            Expr::Compare {
                op: Cmp::Ne, value, ..
            } => (
                Expr::Compare {
                    path: rest,
                    op: Cmp::Eq,
                    value,
                },
                true,
            ),
            Expr::Compare { op, value, .. } => (
                Expr::Compare {
                    path: rest,
                    op,
                    value,
                },
                false,
            ),
            Expr::In {
                values, negated, ..
            } => (
                Expr::In {
                    path: rest,
                    values,
                    negated: false,
                },
                negated,
            ),
            Expr::Like { pattern, .. } => (
                Expr::Like {
                    path: rest,
                    pattern,
                },
                false,
            ),
            _ => return None,
        };
        Some(self.exists(relation, Some(&element), negated, sql))
    }

    /// Appends `filter` as a boolean SQL expression to `sql`.
    pub fn filter(&self, filter: &Expr, sql: &mut Sql) -> Result<String, RqlError> {
        if let Some(compiled) = self.through_relation(filter, sql) {
            return compiled;
        }
        let path = match filter {
            Expr::Compare { path, .. }
            | Expr::In { path, .. }
            | Expr::Like { path, .. }
            | Expr::Contains { path, .. } => Some(path.as_str()),
            Expr::And(_) | Expr::Or(_) => None,
        };
        if let Some(location) = path.and_then(|path| Location::of(self.json, path, self.indexed)) {
            return json_sql::condition(self.dialect, &location?, filter, sql);
        }
        Ok(match filter {
            Expr::And(parts) | Expr::Or(parts) if parts.is_empty() => "TRUE".to_owned(),
            Expr::And(parts) => self.join(parts, " AND ", sql)?,
            Expr::Or(parts) => self.join(parts, " OR ", sql)?,
            Expr::Compare { path, op, value } => {
                let field = self.field(path)?;
                self.compare(field, *op, value, sql)
            }
            Expr::In {
                path,
                values,
                negated,
            } => {
                let field = self.field(path)?;
                let matches: Vec<String> = values
                    .iter()
                    .map(|value| self.compare(field, Cmp::Eq, value, sql))
                    .collect();
                let any = if matches.is_empty() {
                    "FALSE".to_owned()
                } else {
                    format!("({})", matches.join(" OR "))
                };
                if *negated { format!("NOT {any}") } else { any }
            }
            Expr::Like { path, pattern } => {
                let field = self.field(path)?;
                if field.field_type != FieldType::Text {
                    return Ok("FALSE".to_owned());
                }
                let placeholder = sql.bind(Value::Text(like_pattern(pattern)));
                let operator = match self.dialect {
                    Dialect::Postgres => "ILIKE",
                    Dialect::Sqlite => "LIKE",
                };
                format!("({} {operator} {placeholder} ESCAPE '\\')", field.column)
            }
            Expr::Contains {
                path,
                element,
                negated,
            } if self.relation(path).is_some_and(|(_, rest)| rest.is_none()) => {
                let Some((relation, _)) = self.relation(path) else {
                    return Err(RqlError(format!("`{path}` cannot be queried here")));
                };
                return self.exists(relation, element.as_deref(), *negated, sql);
            }
            Expr::Contains {
                path,
                element: None,
                negated,
            } => {
                let field = self.field(path)?;
                format!(
                    "({} IS {}NULL)",
                    field.column,
                    if *negated { "" } else { "NOT " }
                )
            }
            Expr::Contains { path, .. } => {
                return Err(RqlError(format!("`{path}` is not a list of objects")));
            }
        })
    }

    fn join(&self, parts: &[Expr], separator: &str, sql: &mut Sql) -> Result<String, RqlError> {
        let compiled = parts
            .iter()
            .map(|part| self.filter(part, sql))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("({})", compiled.join(separator)))
    }

    /// A comparison. A value that cannot be of the column's type matches nothing (`ne`: anything),
    /// as in Extra Horizon's document store; `ne` also matches rows without the property.
    fn compare(&self, field: &Field, op: Cmp, value: &Scalar, sql: &mut Sql) -> String {
        let column = field.column;
        if *value == Scalar::Null {
            return match op {
                Cmp::Eq => format!("({column} IS NULL)"),
                Cmp::Ne => format!("({column} IS NOT NULL)"),
                _ => "FALSE".to_owned(),
            };
        }
        let Some(bound) = coerce(field.field_type, value) else {
            return if op == Cmp::Ne {
                "TRUE".to_owned()
            } else {
                "FALSE".to_owned()
            };
        };
        let placeholder = sql.bind(bound);
        let collated = match (self.dialect, field.field_type) {
            (Dialect::Postgres, FieldType::Text) if op != Cmp::Eq && op != Cmp::Ne => {
                format!("{column} COLLATE \"C\"")
            }
            _ => column.to_owned(),
        };
        match op {
            Cmp::Eq => format!("({column} = {placeholder})"),
            Cmp::Ne => format!("({column} IS NULL OR {column} <> {placeholder})"),
            Cmp::Gt => format!("({collated} > {placeholder})"),
            Cmp::Ge => format!("({collated} >= {placeholder})"),
            Cmp::Lt => format!("({collated} < {placeholder})"),
            Cmp::Le => format!("({collated} <= {placeholder})"),
        }
    }

    /// `ORDER BY` for the query's sort, ending with `tiebreak` so pages are stable. Nulls sort
    /// first ascending, as in Extra Horizon, and text sorts by code point on both backends.
    pub fn order_by(
        &self,
        query: &Query,
        tiebreak: &str,
        sql: &mut Sql,
    ) -> Result<String, RqlError> {
        let mut terms = Vec::new();
        for (path, direction) in &query.sort {
            if let Some(location) = Location::of(self.json, path, self.indexed) {
                terms.extend(json_sql::order_terms(
                    self.dialect,
                    &location?,
                    *direction,
                    sql,
                ));
                continue;
            }
            let field = self.field(path)?;
            let column = match (self.dialect, field.field_type) {
                (Dialect::Postgres, FieldType::Text) => format!("{} COLLATE \"C\"", field.column),
                _ => field.column.to_owned(),
            };
            terms.push(match direction {
                Direction::Ascending => format!("{column} ASC NULLS FIRST"),
                Direction::Descending => format!("{column} DESC NULLS LAST"),
            });
        }
        terms.push(format!("{tiebreak} ASC"));
        Ok(format!("ORDER BY {}", terms.join(", ")))
    }
}

/// The value as the column's type, if it can be one.
fn coerce(field_type: FieldType, value: &Scalar) -> Option<Value> {
    match (field_type, value) {
        (FieldType::Text, Scalar::String(text)) => Some(Value::Text(text.clone())),
        (FieldType::Text, Scalar::Number(n)) => Some(Value::Text(js_number(*n))),
        (FieldType::Text, Scalar::Bool(b)) => Some(Value::Text(b.to_string())),
        (FieldType::Integer | FieldType::Timestamp, Scalar::Number(n)) if n.fract() == 0.0 => {
            Some(Value::Int(*n as i64))
        }
        (FieldType::Integer | FieldType::Timestamp, Scalar::Date(ms)) => Some(Value::Int(*ms)),
        (FieldType::Timestamp, Scalar::String(text)) => {
            crate::rql::parse_date(text).map(Value::Int)
        }
        (FieldType::Bool, Scalar::Bool(b)) => Some(Value::Bool(*b)),
        _ => None,
    }
}

fn js_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A `LIKE` pattern: a substring match, or with `*` wildcards when the value has any.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    if escaped.contains('*') {
        escaped.replace('*', "%")
    } else {
        format!("%{escaped}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::parse;

    const FIELDS: &[Field] = &[
        Field {
            path: "first_name",
            column: "first_name",
            field_type: FieldType::Text,
        },
        Field {
            path: "creation_timestamp",
            column: "creation_timestamp",
            field_type: FieldType::Timestamp,
        },
        Field {
            path: "activation",
            column: "activation",
            field_type: FieldType::Bool,
        },
    ];

    const RELATIONS: &[Relation] = &[Relation {
        path: "staff_enlistments",
        elements: "FROM staff e WHERE e.user_id = users.id",
        fields: &[Field {
            path: "group_id",
            column: "e.group_id",
            field_type: FieldType::Text,
        }],
    }];

    fn compile(raw: &str) -> Result<Sql, RqlError> {
        let compiler = Compiler {
            fields: FIELDS,
            relations: RELATIONS,
            json: &[],
            indexed: Indexes::NONE,
            dialect: Dialect::Sqlite,
        };
        let query = parse(raw)?;
        let mut sql = Sql::default();
        sql.text = compiler.filter(query.filter.as_ref().unwrap(), &mut sql)?;
        Ok(sql)
    }

    #[test]
    fn values_become_parameters_never_text() {
        let sql = compile("eq(first_name,Robert%27%29%3B%20DROP%20TABLE%20users_v1%3B--)").unwrap();
        assert_eq!(sql.text, "(first_name = $1)");
        assert_eq!(
            sql.binds,
            vec![Value::Text("Robert'); DROP TABLE users_v1;--".into())]
        );
    }

    #[test]
    fn unknown_properties_are_refused() {
        assert!(compile("eq(password,x)").is_err());
    }

    #[test]
    fn timestamps_accept_numbers_and_dates() {
        let sql =
            compile("and(ge(creation_timestamp,2021-01-21),lt(creation_timestamp,1611187200001))")
                .unwrap();
        assert_eq!(
            sql.binds,
            vec![Value::Int(1_611_187_200_000), Value::Int(1_611_187_200_001)]
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_matches_nothing() {
        assert_eq!(compile("eq(activation,maybe)").unwrap().text, "FALSE");
        assert_eq!(compile("ne(activation,maybe)").unwrap().text, "TRUE");
    }

    #[test]
    fn lists_of_objects_are_queried_through_exists() {
        let sql = compile("contains(staff_enlistments,eq(group_id,g1))").unwrap();
        assert_eq!(
            sql.text,
            "(EXISTS (SELECT 1 FROM staff e WHERE e.user_id = users.id AND (e.group_id = $1)))"
        );
        assert_eq!(sql.binds, vec![Value::Text("g1".into())]);
        assert_eq!(
            compile("excludes(staff_enlistments)").unwrap().text,
            "(NOT EXISTS (SELECT 1 FROM staff e WHERE e.user_id = users.id))"
        );
        assert_eq!(
            compile("eq(staff_enlistments.group_id,g1)").unwrap().text,
            "(EXISTS (SELECT 1 FROM staff e WHERE e.user_id = users.id AND (e.group_id = $1)))"
        );
        assert_eq!(
            compile("out(staff_enlistments.group_id,(g1,g2))")
                .unwrap()
                .text,
            "(NOT EXISTS (SELECT 1 FROM staff e WHERE e.user_id = users.id AND ((e.group_id = $1) OR (e.group_id = $2))))"
        );
        assert!(compile("contains(staff_enlistments,eq(password,x))").is_err());
    }

    #[test]
    fn like_escapes_wildcards_and_searches_substrings() {
        let sql = compile("like(first_name,50%25_off)").unwrap();
        assert_eq!(sql.binds, vec![Value::Text("%50\\%\\_off%".into())]);
    }
}
