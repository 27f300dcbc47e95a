//! JSON values inside events: configurations and document data, which Vigil keeps as given.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON value in an event. Postcard cannot encode a self-describing value, so in the log it is
/// its JSON text; in renderings of the log (JSON) it is the value itself.
#[derive(Clone, PartialEq, Default)]
pub struct Json(pub Value);

impl Json {
    pub fn get(&self) -> &Value {
        &self.0
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            serializer.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Value::deserialize(deserializer).map(Self)
        } else {
            let text = String::deserialize(deserializer)?;
            serde_json::from_str(&text)
                .map(Self)
                .map_err(D::Error::custom)
        }
    }
}

/// A typed value in an event, kept in the log as its JSON text like [`Json`]. A stored text that
/// does not read as a `T` fails the decoding of its commit (the log is corrupt at that position,
/// which stops whatever reads it), so a fold never makes do with a default in its place.
#[derive(Clone, PartialEq, Default)]
pub struct JsonOf<T>(pub T);

impl<T: Serialize> JsonOf<T> {
    /// The value as JSON, as renderings show it.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(&self.0)
    }
}

impl<T: fmt::Debug> fmt::Debug for JsonOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize> Serialize for JsonOf<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            let text = serde_json::to_string(&self.0).map_err(S::Error::custom)?;
            serializer.serialize_str(&text)
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for JsonOf<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            T::deserialize(deserializer).map(Self)
        } else {
            let text = String::deserialize(deserializer)?;
            serde_json::from_str(&text)
                .map(Self)
                .map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for Json {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;

    fn arbitrary_with((): ()) -> Self::Strategy {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
        .prop_map(Json)
        .boxed()
    }
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for JsonOf<serde_json::Map<String, Value>> {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;

    /// Objects, as a document's data always is.
    fn arbitrary_with((): ()) -> Self::Strategy {
        use proptest::prelude::*;
        any::<Json>()
            .prop_map(|json| match json.0 {
                Value::Object(object) => JsonOf(object),
                other => JsonOf([("value".to_owned(), other)].into_iter().collect()),
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn postcard_and_json_round_trip(json: Json) {
            let bytes = postcard::to_stdvec(&json).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Json>(&bytes).unwrap(), json.clone());
            let text = serde_json::to_string(&json).unwrap();
            prop_assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), json);
        }
    }
}
