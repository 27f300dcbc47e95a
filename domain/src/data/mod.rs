//! The data service (`/data/v1`): schemas and their documents, and what a document holds under
//! a schema's unique indexes.

pub mod document;
pub mod schema;
pub mod unique_index;
