//! JSON values inside events: configurations and document data, which Vigil keeps as given.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A value in an event kept as JSON. Postcard cannot encode a self-describing value, so in the log
/// it is its JSON text; in renderings of the log (JSON) it is the value itself. A stored text that
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
impl proptest::arbitrary::Arbitrary for JsonOf<serde_json::Map<String, Value>> {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;

    /// Objects, as a document's data always is, of any JSON values.
    fn arbitrary_with((): ()) -> Self::Strategy {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        });
        proptest::collection::btree_map(".{0,6}", value, 0..4)
            .prop_map(|map| JsonOf(map.into_iter().collect()))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn postcard_and_json_round_trip(json: JsonOf<serde_json::Map<String, Value>>) {
            let bytes = postcard::to_stdvec(&json).unwrap();
            prop_assert_eq!(postcard::from_bytes::<JsonOf<serde_json::Map<String, Value>>>(&bytes).unwrap(), json.clone());
            let text = serde_json::to_string(&json).unwrap();
            prop_assert_eq!(serde_json::from_str::<JsonOf<serde_json::Map<String, Value>>>(&text).unwrap(), json);
        }
    }
}
