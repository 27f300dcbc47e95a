//! A whole schema configuration, and every change the data service makes to one. Each change is
//! checked against the configuration it applies to; a refused change leaves it as it was.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ConfigurationError;
use crate::access::{AccessMode, CreateMode, GroupSyncMode, Operation};
use crate::index::Index;
use crate::property::to_json_schema;
use crate::workflow::{CreationTransition, Statuses, Transition};

/// The root attributes of a schema besides its name and description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub create_mode: CreateMode,
    pub read_mode: AccessMode,
    pub update_mode: AccessMode,
    pub delete_mode: AccessMode,
    pub group_sync_mode: GroupSyncMode,
    pub default_limit: u64,
    pub maximum_limit: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            create_mode: CreateMode::default(),
            read_mode: AccessMode::default_read(),
            update_mode: AccessMode::default_update(),
            delete_mode: AccessMode::default_delete(),
            group_sync_mode: GroupSyncMode::default(),
            default_limit: 20,
            maximum_limit: 100,
        }
    }
}

/// The settings a request may change, by their wire names.
pub const SETTINGS: &[&str] = &[
    "createMode",
    "readMode",
    "updateMode",
    "deleteMode",
    "groupSyncMode",
    "defaultLimit",
    "maximumLimit",
];

impl Settings {
    /// The settings `input` changes (wire names, values normalised: legacy modes translated),
    /// leaving out those it sets to what they are.
    pub fn changes(
        &self,
        input: &Map<String, Value>,
    ) -> Result<Map<String, Value>, ConfigurationError> {
        let current = serde_json::to_value(self)
            .map_err(|e| ConfigurationError::invalid("", e.to_string()))?;
        let mut changes = Map::new();
        for (key, value) in input {
            let normalised = match key.as_str() {
                "createMode" => json!(CreateMode::parse(value)?.name()),
                "readMode" => mode(Operation::Read, value)?,
                "updateMode" => mode(Operation::Update, value)?,
                "deleteMode" => mode(Operation::Delete, value)?,
                "groupSyncMode" => {
                    serde_json::from_value::<GroupSyncMode>(value.clone()).map_err(|_| {
                        ConfigurationError::invalid(
                            key,
                            "one of `disabled`, `creatorPatientEnlistments`, `linkedUsersPatientEnlistments`",
                        )
                    })?;
                    value.clone()
                }
                "defaultLimit" | "maximumLimit" => match value.as_u64() {
                    Some(n) if (1..=LARGEST_LIMIT).contains(&n) => json!(n),
                    _ => {
                        return Err(ConfigurationError::invalid(
                            key,
                            format!("a whole number from 1 to {LARGEST_LIMIT}"),
                        ));
                    }
                },
                _ => return Err(ConfigurationError::invalid(key, "not a schema setting")),
            };
            if current.get(key) != Some(&normalised) {
                changes.insert(key.clone(), normalised);
            }
        }
        let mut next = self.clone();
        next.apply(&changes);
        if next.default_limit > next.maximum_limit {
            return Err(ConfigurationError::invalid(
                "defaultLimit",
                "at most the maximum limit",
            ));
        }
        Ok(changes)
    }

    /// Applies changes made by [`Settings::changes`].
    pub fn apply(&mut self, changes: &Map<String, Value>) {
        let Ok(Value::Object(mut current)) = serde_json::to_value(&*self) else {
            return;
        };
        current.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Ok(next) = serde_json::from_value(Value::Object(current)) {
            *self = next;
        }
    }
}

fn mode(operation: Operation, value: &Value) -> Result<Value, ConfigurationError> {
    serde_json::to_value(AccessMode::parse(operation, value)?)
        .map_err(|e| ConfigurationError::invalid("", e.to_string()))
}

/// A schema's configuration, as the data service returns it (without id, name, description and
/// timestamps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub properties: Map<String, Value>,
    pub statuses: Statuses,
    pub creation_transition: CreationTransition,
    pub transitions: Vec<Transition>,
    pub indexes: Vec<Index>,
    #[serde(flatten)]
    pub settings: Settings,
}

impl Default for Definition {
    /// A new schema's: no properties, a status `new` reached by a manual creation transition.
    fn default() -> Self {
        Self {
            properties: Map::new(),
            statuses: [("new".to_owned(), Default::default())].into(),
            creation_transition: CreationTransition::initial(),
            transitions: Vec::new(),
            indexes: Vec::new(),
            settings: Settings::default(),
        }
    }
}

/// Whether properties are added or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Add,
    Replace,
}

/// The most entries of a status's data.
pub const STATUS_DATA_ENTRIES: usize = 100;

/// The largest page a schema may allow (`defaultLimit`, `maximumLimit`).
pub const LARGEST_LIMIT: u64 = 10_000;

fn property_path(path: &str) -> Result<Vec<&str>, ConfigurationError> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() > crate::workflow::LONGEST_PATH || parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigurationError::invalid(
            "name",
            "a property path is names joined by dots",
        ));
    }
    Ok(parts)
}

/// The properties of the object configuration at `parents` (arrays are passed through to their
/// items).
fn children<'a>(
    properties: &'a mut Map<String, Value>,
    parents: &[&str],
    path: &str,
) -> Result<&'a mut Map<String, Value>, ConfigurationError> {
    let Some((first, rest)) = parents.split_first() else {
        return Ok(properties);
    };
    let mut configuration = properties
        .get_mut(*first)
        .ok_or_else(|| ConfigurationError::Unknown(format!("property `{path}`")))?;
    if configuration.get("type").and_then(Value::as_str) == Some("array") {
        configuration = configuration
            .get_mut("items")
            .ok_or_else(|| ConfigurationError::Unknown(format!("property `{path}`")))?;
    }
    if configuration.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ConfigurationError::invalid(
            path,
            format!("`{first}` holds no properties"),
        ));
    }
    let nested = configuration
        .as_object_mut()
        .ok_or_else(|| ConfigurationError::invalid(path, "not an object"))?
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ConfigurationError::invalid(path, "`properties` is not an object"))?;
    children(nested, rest, path)
}

impl Definition {
    /// Adds or replaces the property at a dotted path.
    pub fn write_property(
        &mut self,
        path: &str,
        configuration: &Value,
        write: Write,
    ) -> Result<(), ConfigurationError> {
        let parts = property_path(path)?;
        for (depth, part) in parts.iter().enumerate() {
            crate::property::check_property_name("name", part, depth == 0)?;
        }
        crate::property::check_nested_names(configuration, path)?;
        to_json_schema(configuration, path)?;
        let (name, parents) = parts
            .split_last()
            .ok_or_else(|| ConfigurationError::invalid("name", "a property path"))?;
        let siblings = children(&mut self.properties, parents, path)?;
        match (write, siblings.contains_key(*name)) {
            (Write::Add, true) => {
                return Err(ConfigurationError::Exists(format!("property `{path}`")));
            }
            (Write::Replace, false) => {
                return Err(ConfigurationError::Unknown(format!("property `{path}`")));
            }
            _ => {}
        }
        siblings.insert((*name).to_owned(), configuration.clone());
        Ok(())
    }

    pub fn remove_property(&mut self, path: &str) -> Result<(), ConfigurationError> {
        let parts = property_path(path)?;
        let (name, parents) = parts
            .split_last()
            .ok_or_else(|| ConfigurationError::invalid("name", "a property path"))?;
        children(&mut self.properties, parents, path)?
            .remove(*name)
            .map(|_| ())
            .ok_or_else(|| ConfigurationError::Unknown(format!("property `{path}`")))
    }

    /// Adds a status, or replaces the data of one.
    pub fn write_status(
        &mut self,
        name: &str,
        data: Map<String, Value>,
        write: Write,
    ) -> Result<(), ConfigurationError> {
        if name.trim().is_empty() || name.len() > 50 || name.chars().any(char::is_control) {
            return Err(ConfigurationError::invalid(
                "name",
                "1 to 50 characters, without control characters",
            ));
        }
        if data.len() > STATUS_DATA_ENTRIES {
            return Err(ConfigurationError::invalid(
                "data",
                format!("at most {STATUS_DATA_ENTRIES} entries"),
            ));
        }
        let data = data
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text)
                    if key.chars().count() <= 100 && text.chars().count() <= 1000 =>
                {
                    Ok((key, text))
                }
                _ => Err(ConfigurationError::invalid(
                    "data",
                    "status data are strings of at most 1,000 characters under keys of at most 100",
                )),
            })
            .collect::<Result<_, _>>()?;
        match (write, self.statuses.contains_key(name)) {
            (Write::Add, true) => {
                return Err(ConfigurationError::Exists(format!("status `{name}`")));
            }
            (Write::Replace, false) => {
                return Err(ConfigurationError::Unknown(format!("status `{name}`")));
            }
            _ => {}
        }
        self.statuses.insert(name.to_owned(), data);
        Ok(())
    }

    /// Removes a status no transition uses.
    pub fn remove_status(&mut self, name: &str) -> Result<(), ConfigurationError> {
        if !self.statuses.contains_key(name) {
            return Err(ConfigurationError::Unknown(format!("status `{name}`")));
        }
        if self.creation_transition.to_status == name
            || self.transitions.iter().any(|t| t.uses(name))
        {
            return Err(ConfigurationError::StatusInUse(name.to_owned()));
        }
        self.statuses.remove(name);
        Ok(())
    }

    pub fn set_creation_transition(&mut self, value: &Value) -> Result<(), ConfigurationError> {
        let transition = CreationTransition::parse(value)?;
        transition.check(&self.statuses)?;
        self.creation_transition = transition;
        Ok(())
    }

    /// Adds the transition in `value` under `id`, or replaces the one with that id.
    pub fn write_transition(
        &mut self,
        id: &str,
        value: &Value,
        write: Write,
    ) -> Result<(), ConfigurationError> {
        let transition = Transition::parse(id, value)?;
        transition.check(&self.statuses)?;
        let existing = self.transitions.iter().position(|t| t.id == id);
        match (write, existing) {
            (Write::Add, None) => self.transitions.push(transition),
            (Write::Replace, Some(at)) => self.transitions[at] = transition,
            (Write::Add, Some(_)) => {
                return Err(ConfigurationError::Exists(format!("transition `{id}`")));
            }
            (Write::Replace, None) => {
                return Err(ConfigurationError::Unknown(format!("transition `{id}`")));
            }
        }
        Ok(())
    }

    pub fn remove_transition(&mut self, id: &str) -> Result<(), ConfigurationError> {
        let at = self
            .transitions
            .iter()
            .position(|t| t.id == id)
            .ok_or_else(|| ConfigurationError::Unknown(format!("transition `{id}`")))?;
        self.transitions.remove(at);
        Ok(())
    }

    /// Adds the index in `value` under `id`: not one with the same fields, and one text index
    /// at most.
    pub fn add_index(&mut self, id: &str, value: &Value) -> Result<(), ConfigurationError> {
        let index = Index::parse(id, value)?;
        if self.indexes.iter().any(|i| i.fields == index.fields) {
            return Err(ConfigurationError::Exists(format!(
                "index `{}`",
                index.name
            )));
        }
        if index.is_text() && self.indexes.iter().any(Index::is_text) {
            return Err(ConfigurationError::invalid(
                "fields",
                "a schema has one text index at most",
            ));
        }
        self.indexes.push(index);
        Ok(())
    }

    pub fn remove_index(&mut self, id: &str) -> Result<(), ConfigurationError> {
        let at = self
            .indexes
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| ConfigurationError::Unknown(format!("index `{id}`")))?;
        self.indexes.remove(at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5e9f00000000000000000001";

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_new_schema_has_a_status_new_and_the_default_modes() {
        let json = serde_json::to_value(Definition::default()).unwrap();
        assert_eq!(json["statuses"], json!({"new": {}}));
        assert_eq!(
            json["creationTransition"],
            json!({"type": "manual", "toStatus": "new"})
        );
        assert_eq!(json["createMode"], json!("allUsers"));
        assert_eq!(json["readMode"], json!(["linkedUsers", "linkedGroupStaff"]));
        assert_eq!(
            json["updateMode"],
            json!(["linkedUsers", "linkedGroupStaff"])
        );
        assert_eq!(json["deleteMode"], json!("permissionRequired"));
        assert_eq!(json["groupSyncMode"], json!("disabled"));
        assert_eq!(
            (json["defaultLimit"].clone(), json["maximumLimit"].clone()),
            (json!(20), json!(100))
        );
        let back: Definition = serde_json::from_value(json).unwrap();
        assert_eq!(back, Definition::default());
    }

    #[test]
    fn settings_changes_are_normalised_and_only_real_changes_count() {
        let settings = Settings::default();
        let changes = settings
            .changes(&object(
                json!({"readMode": "default", "updateMode": "creatorOnly", "maximumLimit": 100}),
            ))
            .unwrap();
        assert_eq!(Value::Object(changes), json!({"updateMode": ["creator"]}));
        assert!(
            settings
                .changes(&object(json!({"defaultLimit": 500})))
                .is_err()
        );
        assert!(
            settings
                .changes(&object(json!({"defaultLimit": 0})))
                .is_err()
        );
        assert!(
            settings
                .changes(&object(json!({"groupSyncMode": "always"})))
                .is_err()
        );
        assert!(settings.changes(&object(json!({"colour": "red"}))).is_err());
    }

    #[test]
    fn reserved_and_unfit_property_names_are_refused() {
        let mut definition = Definition::default();
        let number = json!({"type": "number"});
        for path in [
            "__proto__",
            "$where",
            "id",
            "_id",
            "a.constructor",
            "bad\u{0}name",
            &"n".repeat(101),
        ] {
            assert!(
                definition
                    .write_property(path, &number, Write::Add)
                    .is_err(),
                "{path}"
            );
        }
        let nested = json!({"type": "object", "properties": {"__proto__": {"type": "number"}}});
        assert!(
            definition
                .write_property("location", &nested, Write::Add)
                .is_err()
        );
        // Below the root, `id` is an ordinary name.
        definition
            .write_property(
                "device",
                &json!({"type": "object", "properties": {"id": {"type": "string"}}}),
                Write::Add,
            )
            .unwrap();
        definition
            .write_property("device.serial", &number, Write::Add)
            .unwrap();
    }

    #[test]
    fn limits_and_status_data_are_bounded() {
        let settings = Settings::default();
        assert!(
            settings
                .changes(&object(json!({"maximumLimit": LARGEST_LIMIT + 1})))
                .is_err()
        );
        assert!(
            settings
                .changes(&object(json!({"maximumLimit": LARGEST_LIMIT})))
                .is_ok()
        );
        let mut definition = Definition::default();
        let big = object(json!({"note": "x".repeat(1001)}));
        assert!(
            definition
                .write_status("reviewed", big, Write::Add)
                .is_err()
        );
        let many: Map<String, Value> = (0..=STATUS_DATA_ENTRIES)
            .map(|n| (format!("k{n}"), json!("v")))
            .collect();
        assert!(
            definition
                .write_status("reviewed", many, Write::Add)
                .is_err()
        );
        assert!(
            definition
                .write_status("review\u{7}", Map::new(), Write::Add)
                .is_err()
        );
        definition
            .write_status("reviewed", object(json!({"label": "Reviewed"})), Write::Add)
            .unwrap();
    }

    #[test]
    fn properties_are_written_by_dotted_paths() {
        let mut definition = Definition::default();
        definition
            .write_property(
                "location",
                &json!({"type": "object", "properties": {}}),
                Write::Add,
            )
            .unwrap();
        definition
            .write_property("location.lat", &json!({"type": "number"}), Write::Add)
            .unwrap();
        definition
            .write_property(
                "readings",
                &json!({"type": "array", "items": {"type": "object"}}),
                Write::Add,
            )
            .unwrap();
        definition
            .write_property("readings.value", &json!({"type": "number"}), Write::Add)
            .unwrap();
        assert_eq!(
            definition.properties["location"]["properties"]["lat"],
            json!({"type": "number"})
        );
        assert_eq!(
            definition.properties["readings"]["items"]["properties"]["value"],
            json!({"type": "number"})
        );
        assert_eq!(
            definition.write_property("location.lat", &json!({"type": "number"}), Write::Add),
            Err(ConfigurationError::Exists("property `location.lat`".into()))
        );
        assert_eq!(
            definition.write_property("location.lon", &json!({"type": "number"}), Write::Replace),
            Err(ConfigurationError::Unknown(
                "property `location.lon`".into()
            ))
        );
        assert!(
            definition
                .write_property("location.lat.x", &json!({"type": "number"}), Write::Add)
                .is_err()
        );
        assert!(
            definition
                .write_property("nowhere.x", &json!({"type": "number"}), Write::Add)
                .is_err()
        );
        assert!(
            definition
                .write_property("a..b", &json!({"type": "number"}), Write::Add)
                .is_err()
        );
        assert!(
            definition
                .write_property("bad", &json!({"type": "integer"}), Write::Add)
                .is_err()
        );
        definition
            .write_property(
                "location.lat",
                &json!({"type": "number", "minimum": -90}),
                Write::Replace,
            )
            .unwrap();
        definition.remove_property("location.lat").unwrap();
        assert_eq!(definition.properties["location"]["properties"], json!({}));
        assert!(definition.remove_property("location.lat").is_err());
    }

    #[test]
    fn a_status_in_use_stays() {
        let mut definition = Definition::default();
        definition
            .write_status("analyzed", Map::new(), Write::Add)
            .unwrap();
        definition
            .write_transition(
                ID,
                &json!({"type": "manual", "fromStatuses": ["new"], "toStatus": "analyzed"}),
                Write::Add,
            )
            .unwrap();
        assert_eq!(
            definition.remove_status("analyzed"),
            Err(ConfigurationError::StatusInUse("analyzed".into()))
        );
        assert_eq!(
            definition.remove_status("new"),
            Err(ConfigurationError::StatusInUse("new".into()))
        );
        definition.remove_transition(ID).unwrap();
        definition.remove_status("analyzed").unwrap();
        assert!(
            definition
                .write_status("new", Map::new(), Write::Add)
                .is_err()
        );
        assert!(
            definition
                .write_status("gone", Map::new(), Write::Replace)
                .is_err()
        );
        assert!(
            definition
                .write_status("bad", object(json!({"k": 1})), Write::Add)
                .is_err()
        );
    }

    #[test]
    fn transitions_and_indexes_are_kept_by_id() {
        let mut definition = Definition::default();
        let transition =
            json!({"name": "again", "type": "manual", "fromStatuses": ["new"], "toStatus": "new"});
        definition
            .write_transition(ID, &transition, Write::Add)
            .unwrap();
        assert!(
            definition
                .write_transition(ID, &transition, Write::Add)
                .is_err()
        );
        let renamed = json!({"name": "once more", "type": "manual", "fromStatuses": ["new"], "toStatus": "new"});
        definition
            .write_transition(ID, &renamed, Write::Replace)
            .unwrap();
        assert_eq!(definition.transitions[0].name.as_deref(), Some("once more"));
        assert!(
            definition
                .write_transition("5e9f00000000000000000002", &renamed, Write::Replace)
                .is_err()
        );

        let index = json!({"fields": [{"name": "data.a", "type": "asc"}]});
        definition.add_index(ID, &index).unwrap();
        assert!(matches!(
            definition.add_index("5e9f00000000000000000002", &index),
            Err(ConfigurationError::Exists(_))
        ));
        definition
            .add_index(
                "5e9f00000000000000000003",
                &json!({"fields": [{"name": "data.b", "type": "text"}]}),
            )
            .unwrap();
        assert!(
            definition
                .add_index(
                    "5e9f00000000000000000004",
                    &json!({"fields": [{"name": "data.c", "type": "text"}]})
                )
                .is_err()
        );
        definition.remove_index(ID).unwrap();
        assert!(definition.remove_index(ID).is_err());
    }

    #[test]
    fn the_creation_transition_must_reach_a_status() {
        let mut definition = Definition::default();
        assert!(
            definition
                .set_creation_transition(&json!({"type": "manual", "toStatus": "elsewhere"}))
                .is_err()
        );
        definition
            .set_creation_transition(
                &json!({"type": "manual", "toStatus": "new", "actions": [{"type": "linkCreator"}]}),
            )
            .unwrap();
    }
}
