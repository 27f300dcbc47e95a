//! `templates_v2`: the templates of the template service v2, one row each while they exist.

use serde_json::{Value as JsonValue, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, TemplateEvent};
use vigil_domain::log::Filter;
use vigil_domain::templates::{Template, TemplateAttributes};

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static TEMPLATES: Table = Table::new(
    "templates_v2",
    &[
        ("id", Text),
        ("name", Text),
        ("description", Text),
        ("inputs", Json),
        ("outputs", Json),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&TEMPLATES];

pub struct Templates;

fn attribute_cells(attributes: &TemplateAttributes) -> [(&'static str, Value); 4] {
    [
        ("name", attributes.name.clone().into()),
        (
            "description",
            attributes
                .description
                .clone()
                .map_or(Value::Null, Value::Text),
        ),
        (
            "inputs",
            attributes.inputs.as_ref().map_or(Value::Null, |inputs| {
                Value::Json(JsonValue::Object(inputs.0.clone()))
            }),
        ),
        ("outputs", Value::Json(json!(attributes.outputs))),
    ]
}

impl Projection for Templates {
    fn name(&self) -> &'static str {
        "templates_v2"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Template::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Template(event) = event else {
                continue;
            };
            let mut cells: Vec<(&str, Value)> =
                vec![("id", id.into()), ("update_timestamp", at.into())];
            match event {
                TemplateEvent::Created(attributes) => {
                    cells.extend(attribute_cells(attributes));
                    cells.push(("creation_timestamp", at.into()));
                    changes.upsert(&TEMPLATES, position, cells)?;
                }
                TemplateEvent::Updated(attributes) => {
                    cells.extend(attribute_cells(attributes));
                    changes.update(&TEMPLATES, position, cells)?;
                }
                TemplateEvent::Deleted(_) => {
                    changes.delete(&TEMPLATES, position, [("id", id.into())])?;
                }
            }
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A template as `GET /templates/v2/` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub inputs: Option<Json>,
    pub outputs: Json,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("name", "name", FieldType::Text),
    Field::new("description", "description", FieldType::Text),
    Field::new(
        "creationTimestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("updateTimestamp", "update_timestamp", FieldType::Timestamp),
];

const JSON: &[JsonField] = &[
    JsonField {
        path: "inputs",
        column: "inputs",
        nested: true,
        contained: false,
    },
    JsonField {
        path: "outputs",
        column: "outputs",
        nested: true,
        contained: false,
    },
];

/// A page of the templates.
pub async fn templates(store: &ReadStore, query: &Query) -> Result<Page<TemplateRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, name, description, inputs, outputs, creation_timestamp, \
                 update_timestamp FROM templates_v2",
        from: "FROM templates_v2",
        fields: FIELDS,
        relations: &[],
        json: JSON,
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, TemplateRow)
}
