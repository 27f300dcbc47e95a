//! The data service's procedures: schemas and documents.

pub mod document;
pub mod schema;
