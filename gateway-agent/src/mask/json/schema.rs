//! Where JSON Schemas sit in MCP messages, and what their keywords hold.
//!
//! MCP carries schemas in `tools/list` (`inputSchema`, `outputSchema`) and in
//! `elicitation/create` (`requestedSchema`); any of them may nest subschemas under
//! `properties`, `$defs`, `items`, `anyOf`… A property *named* `password` is structure:
//! masking its subschema into a string breaks every client that validates tool
//! definitions (the Python SDK aborts the session). So inside a schema the masker reads
//! keys as JSON Schema does (2020-12 and draft-07 vocabularies), and only the keywords
//! that hold instance values (`default`, `const`, `enum`, `examples`) carry data.

use super::doc::{Doc, Kind, NodeId};
use super::key::NormKey;

/// What a keyword of a schema object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// A map from names (property names, definition names) to subschemas.
    SchemaMap {
        /// The names are instance property names (`properties`, `patternProperties`), so
        /// a sensitive one makes its subschema's example values secret.
        property_names: bool,
    },
    /// One subschema (or, for `items` in draft-07, possibly an array of them).
    Subschema,
    /// An array of subschemas.
    SchemaList,
    /// Instance values: data as the described property would hold it.
    Instance,
    /// Anything else: annotations, assertions, extensions; read as ordinary data.
    Other,
}

pub fn keyword(key: &str) -> Keyword {
    match key {
        "properties" | "patternProperties" => Keyword::SchemaMap {
            property_names: true,
        },
        "$defs" | "definitions" | "dependentSchemas" => Keyword::SchemaMap {
            property_names: false,
        },
        "items"
        | "additionalItems"
        | "additionalProperties"
        | "unevaluatedItems"
        | "unevaluatedProperties"
        | "contains"
        | "propertyNames"
        | "not"
        | "if"
        | "then"
        | "else"
        | "contentSchema" => Keyword::Subschema,
        "allOf" | "anyOf" | "oneOf" | "prefixItems" => Keyword::SchemaList,
        "default" | "const" | "enum" | "examples" | "example" => Keyword::Instance,
        _ => Keyword::Other,
    }
}

/// Does a member named `key` hold a schema (`inputSchema`, `outputSchema`,
/// `requestedSchema`, `schema`, `jsonSchema`…)? Only when its value is an object or a
/// boolean: `"schema": "public"` in a database tool's output is data.
pub fn is_schema_key(key: &NormKey) -> bool {
    key.ends_with("schema")
}

/// Can `node` be a schema (an object, or `true`/`false`)?
pub fn can_be_schema(doc: &Doc<'_>, node: NodeId) -> bool {
    matches!(doc.kind(node), Kind::Object | Kind::Bool(_))
}

/// Is an object found where data was expected a schema all the same? It is when it says
/// so (`$schema`), or when it has a JSON Schema `type` and `properties` (a GeoJSON
/// feature's `"type": "Feature"` does not count).
pub fn looks_like_schema(doc: &Doc<'_>, object: NodeId) -> bool {
    let mut typed = false;
    let mut properties = false;
    for child in doc.children(object) {
        let Some(key) = doc.key(child) else { continue };
        match key.as_ref() {
            "$schema" => return doc.str(child).is_some(),
            "type" => typed = is_type_name(doc, child),
            "properties" => properties = doc.kind(child) == Kind::Object,
            _ => {}
        }
    }
    typed && properties
}

pub fn is_type_name(doc: &Doc<'_>, node: NodeId) -> bool {
    const TYPES: [&str; 7] = [
        "object", "array", "string", "number", "integer", "boolean", "null",
    ];
    match doc.kind(node) {
        Kind::String { .. } => doc.str(node).is_some_and(|t| TYPES.contains(&t.as_ref())),
        Kind::Array => doc
            .children(node)
            .all(|item| doc.str(item).is_some_and(|t| TYPES.contains(&t.as_ref()))),
        _ => false,
    }
}
