//! Who may create, read, update and delete a schema's documents (besides holders of the
//! permissions, who always may), and how a document's groups follow enlistments.
//!
//! Modes arrive as Extra Horizon spells them, legacy names included, and are kept translated
//! (data service 1.4.0): `"default"` for reads becomes `["linkedUsers", "linkedGroupStaff"]`, and
//! so on.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::ConfigurationError;

/// A relation between the caller and a document that grants access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// The caller created the document.
    Creator,
    /// The caller is one of the document's `userIds`.
    LinkedUsers,
    /// The caller is staff in a group of the document's `groupIds`.
    LinkedGroupStaff,
    /// The caller is a patient in a group of the document's `groupIds`.
    LinkedGroupPatients,
}

impl Relation {
    const ALL: [Self; 4] = [
        Self::Creator,
        Self::LinkedUsers,
        Self::LinkedGroupStaff,
        Self::LinkedGroupPatients,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Creator => "creator",
            Self::LinkedUsers => "linkedUsers",
            Self::LinkedGroupStaff => "linkedGroupStaff",
            Self::LinkedGroupPatients => "linkedGroupPatients",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Who may create documents without the `CREATE_DOCUMENTS` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreateMode {
    PermissionRequired,
    #[default]
    AllUsers,
}

/// Who may read, update or delete a document without the permission for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessMode {
    PermissionRequired,
    /// Every authenticated user (reads only).
    AllUsers,
    /// Callers in any of these relations to the document.
    Relational(Vec<Relation>),
}

impl AccessMode {
    fn linked() -> Self {
        Self::Relational(vec![Relation::LinkedUsers, Relation::LinkedGroupStaff])
    }

    pub fn default_read() -> Self {
        Self::linked()
    }

    pub fn default_update() -> Self {
        Self::linked()
    }

    pub const fn default_delete() -> Self {
        Self::PermissionRequired
    }

    /// Whether `relation` grants access under this mode.
    pub fn grants(&self, relation: Relation) -> bool {
        matches!(self, Self::Relational(relations) if relations.contains(&relation))
    }
}

/// Which operation a mode is for: each accepts its own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Update,
    Delete,
}

impl Operation {
    const fn field(self) -> &'static str {
        match self {
            Self::Read => "readMode",
            Self::Update => "updateMode",
            Self::Delete => "deleteMode",
        }
    }
}

impl CreateMode {
    /// The mode from a request, legacy `"default"` included.
    pub fn parse(value: &Value) -> Result<Self, ConfigurationError> {
        match value.as_str() {
            Some("permissionRequired") => Ok(Self::PermissionRequired),
            Some("allUsers" | "default") => Ok(Self::AllUsers),
            _ => Err(ConfigurationError::invalid(
                "createMode",
                "one of `permissionRequired`, `allUsers`",
            )),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::PermissionRequired => "permissionRequired",
            Self::AllUsers => "allUsers",
        }
    }
}

impl AccessMode {
    /// The mode of `operation` from a request, legacy names translated.
    pub fn parse(operation: Operation, value: &Value) -> Result<Self, ConfigurationError> {
        use Relation::*;
        let invalid = || {
            ConfigurationError::invalid(
                operation.field(),
                "a mode name or an array of `creator`, `linkedUsers`, `linkedGroupStaff`, \
                 `linkedGroupPatients`",
            )
        };
        if let Some(names) = value.as_array() {
            let mut relations = Vec::new();
            for name in names {
                let relation = name
                    .as_str()
                    .and_then(Relation::parse)
                    .ok_or_else(invalid)?;
                if !relations.contains(&relation) {
                    relations.push(relation);
                }
            }
            return Ok(Self::Relational(relations));
        }
        let name = value.as_str().ok_or_else(invalid)?;
        Ok(match (operation, name) {
            (_, "permissionRequired") => Self::PermissionRequired,
            (Operation::Read, "allUsers") => Self::AllUsers,
            (Operation::Read | Operation::Update, "default") => Self::linked(),
            (Operation::Read, "enlistedInLinkedGroups") => {
                Self::Relational(vec![LinkedGroupPatients, LinkedGroupStaff])
            }
            (Operation::Update, "creatorOnly") => Self::Relational(vec![Creator]),
            (Operation::Update, "disabled") => Self::PermissionRequired,
            (Operation::Update, "linkedGroupsStaffOnly") => {
                Self::Relational(vec![LinkedGroupStaff])
            }
            (Operation::Delete, "linkedUsersOnly") => Self::linked(),
            _ => return Err(invalid()),
        })
    }

    fn to_json(&self) -> Value {
        match self {
            Self::PermissionRequired => json!("permissionRequired"),
            Self::AllUsers => json!("allUsers"),
            Self::Relational(relations) => {
                Value::Array(relations.iter().map(|r| json!(r.name())).collect())
            }
        }
    }

    /// The stored form (always the current names).
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(name) if name == "permissionRequired" => Some(Self::PermissionRequired),
            Value::String(name) if name == "allUsers" => Some(Self::AllUsers),
            Value::Array(names) => names
                .iter()
                .map(|n| n.as_str().and_then(Relation::parse))
                .collect::<Option<Vec<_>>>()
                .map(Self::Relational),
            _ => None,
        }
    }
}

impl Serialize for AccessMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AccessMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).ok_or_else(|| D::Error::custom("not an access mode"))
    }
}

impl Serialize for CreateMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for CreateMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::parse(&value).map_err(D::Error::custom)
    }
}

/// How a document's `groupIds` follow the patient enlistments of its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupSyncMode {
    #[default]
    Disabled,
    /// `groupIds` = the groups where the creator is a patient.
    CreatorPatientEnlistments,
    /// `groupIds` = the groups where any of `userIds` is a patient.
    LinkedUsersPatientEnlistments,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_are_translated() {
        use Relation::*;
        let cases = [
            (
                Operation::Read,
                "default",
                vec![LinkedUsers, LinkedGroupStaff],
            ),
            (
                Operation::Read,
                "enlistedInLinkedGroups",
                vec![LinkedGroupPatients, LinkedGroupStaff],
            ),
            (Operation::Update, "creatorOnly", vec![Creator]),
            (
                Operation::Update,
                "linkedGroupsStaffOnly",
                vec![LinkedGroupStaff],
            ),
            (
                Operation::Delete,
                "linkedUsersOnly",
                vec![LinkedUsers, LinkedGroupStaff],
            ),
        ];
        for (operation, name, relations) in cases {
            assert_eq!(
                AccessMode::parse(operation, &json!(name)),
                Ok(AccessMode::Relational(relations)),
                "{name}"
            );
        }
        assert_eq!(
            AccessMode::parse(Operation::Update, &json!("disabled")),
            Ok(AccessMode::PermissionRequired)
        );
        assert_eq!(
            CreateMode::parse(&json!("default")),
            Ok(CreateMode::AllUsers)
        );
    }

    #[test]
    fn each_operation_takes_only_its_own_names() {
        assert!(AccessMode::parse(Operation::Update, &json!("allUsers")).is_err());
        assert!(AccessMode::parse(Operation::Delete, &json!("default")).is_err());
        assert!(AccessMode::parse(Operation::Read, &json!("creatorOnly")).is_err());
        assert!(AccessMode::parse(Operation::Read, &json!(["owner"])).is_err());
        assert!(AccessMode::parse(Operation::Read, &json!(3)).is_err());
    }

    #[test]
    fn stored_modes_round_trip() {
        for mode in [
            AccessMode::PermissionRequired,
            AccessMode::AllUsers,
            AccessMode::Relational(vec![Relation::Creator, Relation::LinkedGroupPatients]),
        ] {
            let json = serde_json::to_value(&mode).unwrap();
            assert_eq!(serde_json::from_value::<AccessMode>(json).unwrap(), mode);
        }
    }
}
