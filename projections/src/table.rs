//! Read-model tables and the batched writes projections make to them.
//!
//! A projection does not write SQL: it records row changes in a [`Changes`] batch. The batch
//! coalesces everything that happened to one row inside it (a row inserted and updated in the
//! same batch is written once), then [`Changes::flush`] writes it in the projection's transaction:
//! bulk deletes, keyed deletes, upserts, then partial updates. Postgres receives each table's
//! upserts as one `INSERT ... SELECT FROM UNNEST(...)`; SQLite, which has no round trips, one
//! statement per row.
//!
//! Every table has a `position` column: the log position that last changed the row. Writes are
//! guarded by it, so applying a commit twice changes nothing.

use std::collections::HashMap;
use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, Postgres, Sqlite, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    BigInt,
    Bool,
    Json,
}

impl ColumnType {
    fn postgres_array(self) -> &'static str {
        match self {
            Self::Text | Self::Json => "text[]",
            Self::BigInt => "int8[]",
            Self::Bool => "bool[]",
        }
    }
}

/// A read-model table: its columns (the first `key_len` form the primary key; `position` last).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
    pub key_len: usize,
    sql: OnceLock<Statements>,
}

#[derive(Debug)]
struct Statements {
    postgres_upsert: String,
    copy: String,
    sqlite_upsert: String,
    delete: String,
}

impl Table {
    pub const fn new(
        name: &'static str,
        columns: &'static [(&'static str, ColumnType)],
        key_len: usize,
    ) -> Self {
        Self {
            name,
            columns,
            key_len,
            sql: OnceLock::new(),
        }
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|(name, _)| *name == column)
    }

    /// The index of `column`, which a projection names: an unknown one is its bug.
    fn column(&self, column: &str) -> Result<usize, ChangeError> {
        self.index(column)
            .ok_or_else(|| ChangeError::UnknownColumn {
                table: self.name,
                column: column.to_owned(),
            })
    }

    fn statements(&self) -> &Statements {
        self.sql.get_or_init(|| {
            let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
            let keys = names[..self.key_len].join(", ");
            let updates = names[self.key_len..]
                .iter()
                .map(|n| format!("{n} = EXCLUDED.{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let conflict = if updates.is_empty() {
                "DO NOTHING".to_owned()
            } else {
                format!("DO UPDATE SET {updates} WHERE {}.position < EXCLUDED.position", self.name)
            };
            let selected = self
                .columns
                .iter()
                .map(|(n, t)| if *t == ColumnType::Json { format!("u.{n}::jsonb") } else { format!("u.{n}") })
                .collect::<Vec<_>>()
                .join(", ");
            let arrays = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, t))| format!("${}::{}", i + 1, t.postgres_array()))
                .collect::<Vec<_>>()
                .join(", ");
            let placeholders = (1..=names.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let key_match = names[..self.key_len]
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} = ${}", i + 1))
                .collect::<Vec<_>>()
                .join(" AND ");
            Statements {
                postgres_upsert: format!(
                    "INSERT INTO {t} ({cols}) SELECT {selected} FROM UNNEST({arrays}) AS u({cols}) ON CONFLICT ({keys}) {conflict}",
                    t = self.name,
                    cols = names.join(", "),
                ),
                copy: format!("COPY {} ({}) FROM STDIN", self.name, names.join(", ")),
                sqlite_upsert: format!(
                    "INSERT INTO {t} ({cols}) VALUES ({placeholders}) ON CONFLICT ({keys}) {conflict}",
                    t = self.name,
                    cols = names.join(", "),
                ),
                delete: format!(
                    "DELETE FROM {t} WHERE {key_match} AND position < ${p}",
                    t = self.name,
                    p = self.key_len + 1
                ),
            }
        })
    }
}

/// A cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Json(serde_json::Value),
    /// A number in a query (never a column of a read model).
    Float(f64),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Self::Json(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// Binds a [`Value`] to a query of either backend.
#[macro_export]
macro_rules! bind_value {
    ($query:expr, $value:expr) => {
        match $value {
            $crate::table::Value::Null => $query.bind(None::<String>),
            $crate::table::Value::Text(v) => $query.bind(v.clone()),
            $crate::table::Value::Int(v) => $query.bind(*v),
            $crate::table::Value::Bool(v) => $query.bind(*v),
            $crate::table::Value::Json(v) => $query.bind(sqlx::types::Json(v.clone())),
            $crate::table::Value::Float(v) => $query.bind(*v),
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("table {table} has no column {column}")]
    UnknownColumn { table: &'static str, column: String },
    #[error("a row of {table} must give every key column")]
    MissingKey { table: &'static str },
}

#[derive(Debug)]
enum Pending {
    /// The whole row.
    Upsert(Vec<Value>),
    /// Some columns (by index), always including `position`.
    Update(Vec<(usize, Value)>),
    Delete(i64),
    /// Inserted earlier in the batch, then removed by a bulk delete: nothing to write.
    Dropped,
}

/// One row touched by the batch: its key values and what happens to it.
#[derive(Debug)]
struct Entry {
    key: Vec<Value>,
    pending: Pending,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A bulk delete: the rows whose columns (by index) hold the values, but those whose `except`
/// column holds its value, and only rows written before `position`.
#[derive(Debug)]
struct DeleteWhere {
    conditions: Vec<(usize, Value)>,
    except: Option<(usize, Value)>,
    position: i64,
}

#[derive(Debug, Default)]
struct TableChanges {
    /// Bulk deletes, in order.
    deletes_where: Vec<DeleteWhere>,
    /// Rows in first-touched order, for deterministic writes.
    entries: Vec<Entry>,
    /// Where each key's entry is.
    index: FastMap<Vec<KeyPart>, usize>,
}

/// Hashable form of a key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart {
    Text(String),
    Int(i64),
}

fn key_part(value: &Value) -> Option<KeyPart> {
    match value {
        Value::Text(v) => Some(KeyPart::Text(v.clone())),
        Value::Int(v) => Some(KeyPart::Int(*v)),
        _ => None,
    }
}

/// A batch of row changes, written in one transaction with the projection's checkpoint.
#[derive(Debug, Default)]
pub struct Changes {
    tables: Vec<(&'static Table, TableChanges)>,
}

impl Changes {
    fn table(&mut self, table: &'static Table) -> &mut TableChanges {
        let found = self
            .tables
            .iter()
            .position(|(t, _)| std::ptr::eq(*t, table));
        let index = found.unwrap_or_else(|| {
            self.tables.push((table, TableChanges::default()));
            self.tables.len() - 1
        });
        &mut self.tables[index].1
    }

    /// The cells as a row of `table` (columns not given are `None`), stamped with `position`.
    fn row<'a>(
        table: &'static Table,
        cells: impl IntoIterator<Item = (&'a str, Value)>,
        position: i64,
    ) -> Result<Vec<Option<Value>>, ChangeError> {
        let mut row: Vec<Option<Value>> = std::iter::repeat_with(|| None)
            .take(table.columns.len())
            .collect();
        for (column, value) in cells {
            row[table.column(column)?] = Some(value);
        }
        if let Some(index) = table.index("position") {
            row[index] = Some(Value::Int(position));
        }
        Ok(row)
    }

    fn key(
        table: &'static Table,
        row: &[Option<Value>],
    ) -> Result<(Vec<KeyPart>, Vec<Value>), ChangeError> {
        let cells = &row[..table.key_len];
        let parts = cells
            .iter()
            .map(|cell| cell.as_ref().and_then(key_part))
            .collect::<Option<Vec<_>>>()
            .ok_or(ChangeError::MissingKey { table: table.name })?;
        let values = cells.iter().flatten().cloned().collect();
        Ok((parts, values))
    }

    fn record(
        &mut self,
        table: &'static Table,
        (parts, key): (Vec<KeyPart>, Vec<Value>),
        change: Pending,
    ) {
        let changes = self.table(table);
        let Some(&at) = changes.index.get(&parts) else {
            changes.index.insert(parts, changes.entries.len());
            changes.entries.push(Entry {
                key,
                pending: change,
            });
            return;
        };
        let entry = &mut changes.entries[at];
        let previous = std::mem::replace(&mut entry.pending, Pending::Dropped);
        entry.pending = match (previous, change) {
            (Pending::Upsert(mut row), Pending::Update(cells)) => {
                for (index, value) in cells {
                    row[index] = value;
                }
                Pending::Upsert(row)
            }
            (Pending::Update(mut old), Pending::Update(cells)) => {
                for (index, value) in cells {
                    match old.iter_mut().find(|(i, _)| *i == index) {
                        Some(slot) => slot.1 = value,
                        None => old.push((index, value)),
                    }
                }
                Pending::Update(old)
            }
            // An update of a row deleted in this batch has nothing to change.
            (Pending::Delete(position), Pending::Update(_)) => Pending::Delete(position),
            (Pending::Dropped, Pending::Update(_)) => Pending::Dropped,
            (_, change) => change,
        };
    }

    /// Inserts or replaces a whole row; columns not given are NULL.
    pub fn upsert<'a>(
        &mut self,
        table: &'static Table,
        position: u64,
        cells: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<(), ChangeError> {
        let row = Self::row(table, cells, to_i64(position))?;
        let key = Self::key(table, &row)?;
        let row = row
            .into_iter()
            .map(|cell| cell.unwrap_or(Value::Null))
            .collect();
        self.record(table, key, Pending::Upsert(row));
        Ok(())
    }

    /// Changes the given columns of an existing row (`cells` must include the key columns).
    pub fn update<'a>(
        &mut self,
        table: &'static Table,
        position: u64,
        cells: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<(), ChangeError> {
        let row = Self::row(table, cells, to_i64(position))?;
        let key = Self::key(table, &row)?;
        let set = row
            .into_iter()
            .enumerate()
            .skip(table.key_len)
            .filter_map(|(index, cell)| cell.map(|value| (index, value)))
            .collect();
        self.record(table, key, Pending::Update(set));
        Ok(())
    }

    /// Deletes the row with the key given in `cells`.
    pub fn delete<'a>(
        &mut self,
        table: &'static Table,
        position: u64,
        key: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<(), ChangeError> {
        let position = to_i64(position);
        let row = Self::row(table, key, position)?;
        let key = Self::key(table, &row)?;
        self.record(table, key, Pending::Delete(position));
        Ok(())
    }

    /// Deletes every row whose columns equal the given values (e.g. all tokens of a user).
    pub fn delete_where<'a>(
        &mut self,
        table: &'static Table,
        position: u64,
        conditions: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<(), ChangeError> {
        self.delete_where_except(table, position, conditions, None)
    }

    /// Like [`Changes::delete_where`], but for the rows whose column `except.0` holds `except.1`
    /// (e.g. all tokens of a user but one session's).
    pub fn delete_where_except<'a>(
        &mut self,
        table: &'static Table,
        position: u64,
        conditions: impl IntoIterator<Item = (&'a str, Value)>,
        except: Option<(&str, Value)>,
    ) -> Result<(), ChangeError> {
        let conditions = conditions
            .into_iter()
            .map(|(column, value)| Ok((table.column(column)?, value)))
            .collect::<Result<Vec<_>, ChangeError>>()?;
        let except = except
            .map(|(column, value)| Ok::<_, ChangeError>((table.column(column)?, value)))
            .transpose()?;
        let changes = self.table(table);
        // Rows inserted earlier in this batch never reach the database.
        for entry in &mut changes.entries {
            if matches!(&entry.pending, Pending::Upsert(row)
                if conditions.iter().all(|(index, value)| row[*index] == *value)
                    && except.as_ref().is_none_or(|(index, value)| row[*index] != *value))
            {
                entry.pending = Pending::Dropped;
            }
        }
        changes.deletes_where.push(DeleteWhere {
            conditions,
            except,
            position: to_i64(position),
        });
        Ok(())
    }

    /// Whether the batch changes rows of `table`.
    pub fn touches(&self, table: &Table) -> bool {
        self.tables.iter().any(|(t, _)| std::ptr::eq(*t, table))
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The statements that write this batch, in order.
    fn plan(self) -> Vec<Step> {
        let mut steps = Vec::new();
        for (table, changes) in self.tables {
            let statements = table.statements();
            for DeleteWhere {
                conditions,
                except,
                position,
            } in changes.deletes_where
            {
                let mut matches: Vec<String> = conditions
                    .iter()
                    .enumerate()
                    .map(|(n, (index, _))| format!("{} = ${}", table.columns[*index].0, n + 1))
                    .collect();
                if let Some((index, _)) = &except {
                    let n = matches.len() + 1;
                    matches.push(format!("{} <> ${n}", table.columns[*index].0));
                }
                let sql = format!(
                    "DELETE FROM {} WHERE {} AND position < ${}",
                    table.name,
                    matches.join(" AND "),
                    matches.len() + 1
                );
                let binds = conditions
                    .into_iter()
                    .chain(except)
                    .map(|(_, value)| value)
                    .chain([Value::Int(position)])
                    .collect();
                steps.push(Step::Sql(sql, binds));
            }
            let mut upserts = Vec::new();
            let mut updates = Vec::new();
            for Entry { key, pending } in changes.entries {
                match pending {
                    Pending::Delete(position) => {
                        let binds = key.into_iter().chain([Value::Int(position)]).collect();
                        steps.push(Step::Sql(statements.delete.clone(), binds));
                    }
                    Pending::Upsert(row) => upserts.push(row),
                    Pending::Update(cells) => {
                        let (sql, position) = update_sql(table, &cells);
                        let binds = cells
                            .into_iter()
                            .map(|(_, value)| value)
                            .filter(|value| *value != Value::Null)
                            .chain(key)
                            .chain([Value::Int(position)])
                            .collect();
                        updates.push(Step::Sql(sql, binds));
                    }
                    Pending::Dropped => {}
                }
            }
            if !upserts.is_empty() {
                steps.push(Step::Upsert(table, upserts));
            }
            steps.extend(updates);
        }
        steps
    }

    /// Writes the batch to Postgres: each table's upserts in one statement.
    pub async fn flush_postgres(
        self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), sqlx::Error> {
        for step in self.plan() {
            match step {
                Step::Sql(sql, binds) => {
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for value in &binds {
                        query = bind_value!(query, value);
                    }
                    query.execute(&mut **tx).await?;
                }
                Step::Upsert(table, rows) => {
                    // Most upserted rows are new: a large batch is first tried as one COPY, the
                    // cheapest way into Postgres. If any of its keys exists already, the COPY fails
                    // as a whole, is rolled back to the savepoint, and the rows are upserted.
                    if rows.len() >= COPY_THRESHOLD {
                        sqlx::query("SAVEPOINT vigil_copy")
                            .execute(&mut **tx)
                            .await?;
                        match copy_rows(tx, table, &rows).await {
                            Ok(()) => {
                                sqlx::query("RELEASE SAVEPOINT vigil_copy")
                                    .execute(&mut **tx)
                                    .await?;
                                continue;
                            }
                            Err(sqlx::Error::Database(error))
                                if error.code().as_deref() == Some(UNIQUE_VIOLATION) =>
                            {
                                sqlx::query("ROLLBACK TO SAVEPOINT vigil_copy")
                                    .execute(&mut **tx)
                                    .await?;
                            }
                            Err(error) => return Err(error),
                        }
                    }
                    upsert_rows(tx, table, rows).await?;
                }
            }
        }
        Ok(())
    }

    /// Writes the batch to SQLite: one statement per row, all in the caller's transaction.
    pub async fn flush_sqlite(self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        for step in self.plan() {
            let (sql, rows) = match step {
                Step::Sql(sql, binds) => (sql, vec![binds]),
                Step::Upsert(table, rows) => (table.statements().sqlite_upsert.clone(), rows),
            };
            for binds in &rows {
                let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
                for value in binds {
                    query = bind_value!(query, value);
                }
                query.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }
}

/// Upserted rows in one batch from which a COPY is tried first.
const COPY_THRESHOLD: usize = 64;
/// Postgres's `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";

/// Upserts rows with one `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO UPDATE`.
async fn upsert_rows(
    tx: &mut Transaction<'_, Postgres>,
    table: &Table,
    mut rows: Vec<Vec<Value>>,
) -> Result<(), sqlx::Error> {
    let mut query = sqlx::query(AssertSqlSafe(table.statements().postgres_upsert.as_str()));
    for (index, (_, column_type)) in table.columns.iter().enumerate() {
        let column = rows
            .iter_mut()
            .map(|row| std::mem::replace(&mut row[index], Value::Null));
        query = bind_column(query, *column_type, column);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Inserts rows with one `COPY ... FROM STDIN` (text format); fails if any key exists.
async fn copy_rows(
    tx: &mut Transaction<'_, Postgres>,
    table: &Table,
    rows: &[Vec<Value>],
) -> Result<(), sqlx::Error> {
    let mut data = Vec::with_capacity(rows.len() * 128);
    for row in rows {
        for (index, value) in row.iter().enumerate() {
            if index > 0 {
                data.push(b'\t');
            }
            copy_text(value, &mut data);
        }
        data.push(b'\n');
    }
    let mut copy = tx.copy_in_raw(&table.statements().copy).await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// A value in COPY's text format: `\N` for NULL, with backslash, tab, newline and carriage return
/// escaped.
fn copy_text(value: &Value, out: &mut Vec<u8>) {
    let text = match value {
        Value::Null => {
            out.extend_from_slice(b"\\N");
            return;
        }
        Value::Text(text) => std::borrow::Cow::Borrowed(text.as_str()),
        Value::Int(number) => {
            // Digits never need escaping; writing to a Vec cannot fail.
            let _ = std::io::Write::write_fmt(out, format_args!("{number}"));
            return;
        }
        Value::Bool(flag) => std::borrow::Cow::Borrowed(if *flag { "t" } else { "f" }),
        Value::Json(json) => std::borrow::Cow::Owned(json.to_string()),
        Value::Float(number) => std::borrow::Cow::Owned(number.to_string()),
    };
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

/// One write of a batch.
enum Step {
    Sql(String, Vec<Value>),
    Upsert(&'static Table, Vec<Vec<Value>>),
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `UPDATE t SET a = $1, ... WHERE k = $n ... AND position < $m`, and the guard position.
/// The `UPDATE` of `cells` and the position guarding it. A cell set to `NULL` says so in the
/// statement rather than through a parameter: Postgres cannot tell an untyped `NULL` parameter
/// from text, and would refuse it for a column of another type. The parameters are the other
/// cells' values in order, then the key, then the position.
fn update_sql(table: &Table, cells: &[(usize, Value)]) -> (String, i64) {
    let mut bound = 0;
    let set = cells
        .iter()
        .map(|(index, value)| {
            let column = table.columns[*index].0;
            if *value == Value::Null {
                format!("{column} = NULL")
            } else {
                bound += 1;
                format!("{column} = ${bound}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let keys = (0..table.key_len)
        .map(|k| format!("{} = ${}", table.columns[k].0, bound + k + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let position = cells
        .iter()
        .find(|(index, _)| table.columns[*index].0 == "position")
        .and_then(|(_, value)| match value {
            Value::Int(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(i64::MAX);
    let sql = format!(
        "UPDATE {} SET {set} WHERE {keys} AND position < ${}",
        table.name,
        bound + table.key_len + 1
    );
    (sql, position)
}

/// Binds one column of every upserted row as a Postgres array.
fn bind_column<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    column_type: ColumnType,
    values: impl Iterator<Item = Value>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    match column_type {
        ColumnType::Text => query.bind(
            values
                .map(|v| match v {
                    Value::Text(t) => Some(t),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColumnType::Json => query.bind(
            values
                .map(|v| match v {
                    Value::Json(j) => Some(j.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColumnType::BigInt => query.bind(
            values
                .map(|v| match v {
                    Value::Int(i) => Some(i),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        ColumnType::Bool => query.bind(
            values
                .map(|v| match v {
                    Value::Bool(b) => Some(b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROWS: Table = Table::new(
        "rows_v1",
        &[
            ("id", ColumnType::Text),
            ("name", ColumnType::Text),
            ("n", ColumnType::BigInt),
            ("position", ColumnType::BigInt),
        ],
        1,
    );

    fn pending<'c>(changes: &'c Changes, id: &str) -> Option<&'c Pending> {
        let table = &changes.tables[0].1;
        let at = table.index.get(&vec![KeyPart::Text(id.into())])?;
        Some(&table.entries[*at].pending)
    }

    #[test]
    fn an_update_to_null_is_written_without_a_parameter() {
        let mut changes = Changes::default();
        changes
            .update(
                &ROWS,
                7,
                [("id", "a".into()), ("n", Value::Null), ("name", "x".into())],
            )
            .unwrap();
        let steps = changes.plan();
        let [Step::Sql(sql, binds)] = steps.as_slice() else {
            panic!()
        };
        assert_eq!(
            sql,
            "UPDATE rows_v1 SET name = $1, n = NULL, position = $2 WHERE id = $3 AND position < $4"
        );
        assert_eq!(
            *binds,
            [
                Value::Text("x".into()),
                Value::Int(7),
                Value::Text("a".into()),
                Value::Int(7)
            ]
        );
    }

    #[test]
    fn an_update_merges_into_a_row_inserted_in_the_same_batch() {
        let mut changes = Changes::default();
        changes
            .upsert(&ROWS, 1, [("id", "a".into()), ("name", "x".into())])
            .unwrap();
        changes
            .update(&ROWS, 2, [("id", "a".into()), ("n", 5i64.into())])
            .unwrap();
        let Some(Pending::Upsert(row)) = pending(&changes, "a") else {
            panic!()
        };
        assert_eq!(
            row,
            &vec!["a".into(), "x".into(), Value::Int(5), Value::Int(2)]
        );
    }

    #[test]
    fn a_delete_wins_over_earlier_changes_and_later_updates() {
        let mut changes = Changes::default();
        changes.upsert(&ROWS, 1, [("id", "a".into())]).unwrap();
        changes.delete(&ROWS, 2, [("id", "a".into())]).unwrap();
        changes
            .update(&ROWS, 3, [("id", "a".into()), ("n", 1i64.into())])
            .unwrap();
        assert!(matches!(pending(&changes, "a"), Some(Pending::Delete(2))));
    }

    #[test]
    fn a_bulk_delete_drops_matching_rows_inserted_earlier_in_the_batch() {
        let mut changes = Changes::default();
        changes
            .upsert(&ROWS, 1, [("id", "a".into()), ("name", "x".into())])
            .unwrap();
        changes
            .upsert(&ROWS, 1, [("id", "b".into()), ("name", "y".into())])
            .unwrap();
        changes
            .delete_where(&ROWS, 2, [("name", "x".into())])
            .unwrap();
        assert!(matches!(pending(&changes, "a"), Some(Pending::Dropped)));
        assert!(matches!(pending(&changes, "b"), Some(Pending::Upsert(_))));
    }

    #[test]
    fn a_bulk_delete_can_spare_the_rows_holding_one_value() {
        let mut changes = Changes::default();
        for (id, name) in [("a", "x"), ("b", "x")] {
            changes
                .upsert(&ROWS, 1, [("id", id.into()), ("name", name.into())])
                .unwrap();
        }
        changes
            .delete_where_except(&ROWS, 2, [("name", "x".into())], Some(("id", "b".into())))
            .unwrap();
        assert!(matches!(pending(&changes, "a"), Some(Pending::Dropped)));
        assert!(matches!(pending(&changes, "b"), Some(Pending::Upsert(_))));
        let steps = changes.plan();
        let Some(Step::Sql(sql, binds)) = steps.first() else {
            panic!()
        };
        assert_eq!(
            sql,
            "DELETE FROM rows_v1 WHERE name = $1 AND id <> $2 AND position < $3"
        );
        assert_eq!(
            *binds,
            [
                Value::Text("x".into()),
                Value::Text("b".into()),
                Value::Int(2)
            ]
        );
    }

    #[test]
    fn unknown_columns_are_refused() {
        let mut changes = Changes::default();
        assert!(
            changes
                .upsert(&ROWS, 1, [("id", "a".into()), ("nope", "x".into())])
                .is_err()
        );
        assert!(changes.upsert(&ROWS, 1, [("name", "x".into())]).is_err());
    }

    #[test]
    fn postgres_upserts_read_whole_columns_from_arrays() {
        let sql = &ROWS.statements().postgres_upsert;
        assert!(
            sql.contains("UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])"),
            "{sql}"
        );
        assert!(
            sql.contains("WHERE rows_v1.position < EXCLUDED.position"),
            "{sql}"
        );
    }
}
