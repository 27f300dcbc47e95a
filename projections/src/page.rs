//! Paged list queries, shared by every read model: RQL filter, visibility, sort and paging
//! compiled into one `SELECT` and (unless `skipCount()`) one `COUNT(*)`, which Postgres answers in
//! one statement.

use crate::json_sql::{Indexes, JsonField};
use crate::rql::{Query, RqlError};
use crate::sql::{Compiler, Dialect, Field, Relation, Sql};
use crate::store::ReadStore;

/// One page of a list, in Extra Horizon's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Absent when the query asked for `skipCount()`.
    pub total: Option<u64>,
    pub offset: u64,
    pub limit: u64,
}

/// Page sizes of a list endpoint: the default and the most a client may ask for (more is clamped).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default: u64,
    pub maximum: u64,
}

impl Limits {
    pub const STANDARD: Self = Self {
        default: 20,
        maximum: 100,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Rql(#[from] RqlError),
    #[error("read-store query failed: {0}")]
    Store(#[from] sqlx::Error),
}

/// A list query over one read model.
pub struct List<'a> {
    /// `SELECT <columns> FROM <table and joins>`.
    pub select: &'static str,
    /// `FROM <table and joins>`, for counts and keys.
    pub from: &'static str,
    pub fields: &'a [Field],
    /// Lists of objects each row has, queried through subqueries.
    pub relations: &'a [Relation],
    /// JSON columns, queried by paths into them.
    pub json: &'a [JsonField],
    /// The indexes of JSON paths.
    pub indexed: Indexes<'a>,
    /// The column that makes the order total (the primary key).
    pub tiebreak: &'static str,
    /// What the caller may see, as a boolean SQL expression with its parameters, if restricted.
    pub visible: Option<Sql>,
    pub limits: Limits,
}

/// The compiled statements of a list: the page query and the count query, with their binds.
pub struct Compiled {
    pub page: Sql,
    pub count: Option<Sql>,
    pub offset: u64,
    pub limit: u64,
}

impl List<'_> {
    /// The `WHERE` clause of visibility and the query's filter, with its binds in `sql`.
    fn where_clause(
        &self,
        compiler: &Compiler<'_>,
        query: &Query,
        sql: &mut Sql,
    ) -> Result<String, RqlError> {
        let mut conditions = Vec::new();
        if let Some(visible) = &self.visible {
            // Visibility comes first, so its placeholders are $1.. as written.
            sql.binds = visible.binds.clone();
            conditions.push(format!("({})", visible.text));
        }
        if let Some(filter) = &query.filter {
            conditions.push(compiler.filter(filter, sql)?);
        }
        Ok(if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        })
    }

    pub fn compile(self, store: &ReadStore, query: &Query) -> Result<Compiled, RqlError> {
        let compiler = Compiler {
            fields: self.fields,
            relations: self.relations,
            json: self.json,
            indexed: self.indexed,
            dialect: Dialect::from(store),
        };
        let mut sql = Sql::default();
        let where_clause = self.where_clause(&compiler, query, &mut sql)?;
        let count = (!query.skip_count).then(|| Sql {
            text: format!("SELECT COUNT(*) {}{where_clause}", self.from),
            binds: sql.binds.clone(),
            ..Sql::default()
        });
        let order = compiler.order_by(query, self.tiebreak, &mut sql)?;
        let limit = query
            .limit
            .unwrap_or(self.limits.default)
            .min(self.limits.maximum);
        let limit_placeholder = sql.bind(crate::table::Value::Int(
            i64::try_from(limit).unwrap_or(i64::MAX),
        ));
        let offset_placeholder = sql.bind(crate::table::Value::Int(
            i64::try_from(query.offset).unwrap_or(i64::MAX),
        ));
        sql.text = format!(
            "{}{where_clause} {order} LIMIT {limit_placeholder} OFFSET {offset_placeholder}",
            self.select
        );
        Ok(Compiled {
            page: sql,
            count,
            offset: query.offset,
            limit,
        })
    }

    /// The keys (the `tiebreak` column) of every row the query's filter selects, unpaged: which
    /// records a bulk operation (`POST /roles/add_permissions?<rql>`) acts on.
    pub async fn keys(self, store: &ReadStore, query: &Query) -> Result<Vec<String>, QueryError> {
        let compiler = Compiler {
            fields: self.fields,
            relations: self.relations,
            json: self.json,
            indexed: self.indexed,
            dialect: Dialect::from(store),
        };
        let mut sql = Sql::default();
        let where_clause = self.where_clause(&compiler, query, &mut sql)?;
        sql.text = format!(
            "SELECT {tiebreak} {from}{where_clause} ORDER BY {tiebreak}",
            tiebreak = self.tiebreak,
            from = self.from
        );
        let keys = crate::with_pool!(store, pool => {
            let mut keys = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.text));
            for value in &sql.binds {
                keys = crate::bind_value!(keys, value);
            }
            keys.fetch_all(pool).await?
        });
        Ok(keys)
    }
}

/// Runs a compiled list, decoding rows as `T`. On Postgres a page and its count are one statement
/// (one round trip): the count rides on each row of the page, and an empty first page counts none;
/// only an empty later page is counted apart.
#[macro_export]
macro_rules! fetch_page {
    ($store:expr, $compiled:expr, $row:ty) => {{
        let compiled: $crate::page::Compiled = $compiled;
        match ($store, compiled.count) {
            ($crate::store::ReadStore::Postgres(pool), Some(count)) => {
                let text = format!(
                    "SELECT p.*, ({}) AS vigil_total FROM ({}) p",
                    count.text, compiled.page.text
                );
                // The count's parameters are the first of the page's (the filter's).
                let mut page = sqlx::query(sqlx::AssertSqlSafe(text));
                for value in &compiled.page.binds {
                    page = $crate::bind_value!(page, value);
                }
                let rows = page.fetch_all(pool).await?;
                let mut total = None;
                let mut data = Vec::with_capacity(rows.len());
                for row in &rows {
                    total = Some(sqlx::Row::try_get::<i64, _>(row, "vigil_total")?);
                    data.push(<$row as sqlx::FromRow<'_, _>>::from_row(row)?);
                }
                let total = match total {
                    Some(total) => total,
                    None if compiled.offset == 0 => 0,
                    None => $crate::fetch_page!(@count pool, count),
                };
                Ok::<_, $crate::page::QueryError>($crate::page::Page {
                    data,
                    total: Some(u64::try_from(total).unwrap_or(0)),
                    offset: compiled.offset,
                    limit: compiled.limit,
                })
            }
            (store, count) => $crate::with_pool!(store, pool => {
                let mut page = sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(compiled.page.text));
                for value in &compiled.page.binds {
                    page = $crate::bind_value!(page, value);
                }
                let (data, total) = match count {
                    // One read transaction, so the page and its total see the same rows.
                    Some(count) => {
                        let mut read = pool.begin().await?;
                        let data = page.fetch_all(&mut *read).await?;
                        let total = $crate::fetch_page!(@count &mut *read, count);
                        read.commit().await?;
                        (data, Some(u64::try_from(total).unwrap_or(0)))
                    }
                    None => (page.fetch_all(pool).await?, None),
                };
                Ok::<_, $crate::page::QueryError>($crate::page::Page {
                    data,
                    total,
                    offset: compiled.offset,
                    limit: compiled.limit,
                })
            }),
        }
    }};
    (@count $pool:expr, $count:expr) => {{
        let count: $crate::sql::Sql = $count;
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count.text));
        for value in &count.binds {
            query = $crate::bind_value!(query, value);
        }
        query.fetch_one($pool).await?
    }};
}

/// Keeps only the `select`ed paths of a JSON object (dotted paths reach into nested objects).
pub fn select(object: serde_json::Value, paths: Option<&[String]>) -> serde_json::Value {
    let Some(paths) = paths else {
        return object;
    };
    let mut selected = serde_json::Map::new();
    for path in paths {
        let parts: Vec<&str> = path.split('.').collect();
        let found = parts
            .iter()
            .try_fold(&object, |value, part| value.get(part));
        if let Some(value) = found {
            insert_path(&mut selected, &parts, value.clone());
        }
    }
    serde_json::Value::Object(selected)
}

fn insert_path(
    map: &mut serde_json::Map<String, serde_json::Value>,
    parts: &[&str],
    value: serde_json::Value,
) {
    match parts {
        [] => {}
        [last] => {
            map.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry((*first).to_owned())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn select_keeps_only_the_named_paths() {
        let object = json!({"id": "1", "data": {"title": "t", "body": "b"}, "status": "new"});
        let paths = vec!["id".to_owned(), "data.title".to_owned()];
        assert_eq!(
            select(object, Some(&paths)),
            json!({"id": "1", "data": {"title": "t"}})
        );
    }
}
