//! The data service's read models: schemas, documents (with their comments and per-schema
//! indexes), and the values documents hold under unique indexes.

pub mod document;
pub mod document_unique;
pub mod schema;
