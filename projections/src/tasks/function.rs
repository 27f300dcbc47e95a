//! `functions_v1`: the task service's functions, one row each while they exist.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, FunctionEvent};
use vigil_domain::log::Filter;
use vigil_domain::tasks::function::{Function, FunctionSettings};

use crate::page::QueryError;
use crate::runner::{Projection, ProjectionError};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static FUNCTIONS: Table = Table::new(
    "functions_v1",
    &[
        ("name", Text),
        ("description", Text),
        ("enabled", Bool),
        ("runtime", Text),
        ("entry_point", Text),
        ("time_limit", BigInt),
        ("memory_limit", BigInt),
        ("code_digest", Text),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&FUNCTIONS];

pub struct Functions;

fn settings_cells(settings: &FunctionSettings) -> [(&'static str, Value); 5] {
    [
        ("description", settings.description.clone().into()),
        ("runtime", settings.runtime.clone().into()),
        ("entry_point", settings.entry_point.clone().into()),
        ("time_limit", i64::from(settings.time_limit).into()),
        ("memory_limit", i64::from(settings.memory_limit).into()),
    ]
}

impl Projection for Functions {
    fn name(&self) -> &'static str {
        "functions_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Function::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let name = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Function(event) = event else {
                continue;
            };
            let mut cells: Vec<(&str, Value)> =
                vec![("name", name.into()), ("update_timestamp", at.into())];
            match event {
                FunctionEvent::Created(e) => {
                    cells.extend(settings_cells(&e.settings));
                    cells.extend([
                        ("enabled", true.into()),
                        ("code_digest", e.code.digest.to_string().into()),
                        ("creation_timestamp", at.into()),
                    ]);
                    changes.upsert(&FUNCTIONS, position, cells)?;
                    continue;
                }
                FunctionEvent::Updated(e) => {
                    cells.extend(settings_cells(&e.settings));
                    if let Some(code) = e.code {
                        cells.push(("code_digest", code.digest.to_string().into()));
                    }
                }
                FunctionEvent::Enabled(_) => cells.push(("enabled", true.into())),
                FunctionEvent::Disabled(_) => cells.push(("enabled", false.into())),
                FunctionEvent::ExecutionSet(_) => {}
                FunctionEvent::Deleted(_) => {
                    changes.delete(&FUNCTIONS, position, [("name", name.into())])?;
                    continue;
                }
            }
            changes.update(&FUNCTIONS, position, cells)?;
        }
        Ok(())
    }
}

/// A function as `GET /tasks/v1/functions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FunctionRow {
    pub name: String,
    pub description: String,
    pub update_timestamp: i64,
}

/// Every function, by name (the list is one page: Extra Horizon ignores RQL here).
pub async fn functions(store: &ReadStore) -> Result<Vec<FunctionRow>, QueryError> {
    let rows = crate::with_pool!(store, pool => {
        sqlx::query_as::<_, FunctionRow>(
            "SELECT name, description, update_timestamp FROM functions_v1 ORDER BY name",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// When the function `name` last changed, if it exists.
pub async fn updated_at(store: &ReadStore, name: &str) -> Result<Option<i64>, QueryError> {
    let at = crate::with_pool!(store, pool => {
        sqlx::query_scalar::<_, i64>("SELECT update_timestamp FROM functions_v1 WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?
    });
    Ok(at)
}
