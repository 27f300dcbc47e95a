//! A schema ready to check documents against: its definition with the validators of its
//! properties and of every transition condition compiled once (per schema version, by the caller).

use serde_json::Value;

use crate::ConfigurationError;
use crate::definition::Definition;
use crate::property::{Validator, Violation};
use crate::workflow::Condition;

/// The compiled validators of one transition's conditions, by position (`None`: not a type
/// configuration condition).
type ConditionValidators = Vec<Option<Validator>>;

#[derive(Debug)]
pub struct CompiledSchema {
    pub definition: Definition,
    data: Validator,
    creation: ConditionValidators,
    /// Aligned with `definition.transitions`.
    transitions: Vec<ConditionValidators>,
}

fn compile_conditions(conditions: &[Condition]) -> Result<ConditionValidators, ConfigurationError> {
    conditions
        .iter()
        .map(|condition| match condition {
            Condition::Input { configuration } | Condition::Document { configuration } => {
                Validator::for_configuration(configuration).map(Some)
            }
            _ => Ok(None),
        })
        .collect()
}

impl CompiledSchema {
    pub fn compile(definition: Definition) -> Result<Self, ConfigurationError> {
        let data = Validator::for_properties(&definition.properties)?;
        let creation = compile_conditions(&definition.creation_transition.conditions)?;
        let transitions = definition
            .transitions
            .iter()
            .map(|t| compile_conditions(&t.conditions))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            definition,
            data,
            creation,
            transitions,
        })
    }

    /// Checks a document's `data` against the schema's properties.
    pub fn validate_data(&self, data: &Value) -> Result<(), Vec<Violation>> {
        self.data.validate(data)
    }

    /// The validator of condition `index` of the creation transition (`None`) or of transition
    /// `transition` (its position).
    pub fn condition(&self, transition: Option<usize>, index: usize) -> Option<&Validator> {
        let conditions = match transition {
            None => &self.creation,
            Some(at) => self.transitions.get(at)?,
        };
        conditions.get(index)?.as_ref()
    }
}
