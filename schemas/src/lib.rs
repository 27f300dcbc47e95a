//! The data service's schema model, without I/O.
//!
//! Extra Horizon schemas describe document properties with a subset of JSON Schema (a
//! "type configuration"). This crate checks such configurations and compiles them into validators
//! with the `jsonschema` crate — with remote `$ref` resolution compiled out, so a user-defined
//! schema can never make Vigil fetch a URL.
//!
//! Layout:
//! - [`property`]: type configurations, their checks, and compiled validators whose errors name the
//!   failing paths.

pub mod property;
