//! Secrets Terraform marks itself. A `random_password`'s `result`, a generated private
//! key's `private_key_pem` or a database's `password` argument is secret by no name a key
//! list could hold (`result`), but Terraform says which attributes are sensitive:
//! - a state file (format 4) lists them in each resource instance's
//!   `sensitive_attributes`, as paths into the instance's `attributes`
//!   (`[[{"type": "get_attr", "value": "result"}]]`);
//! - `terraform show -json` and plan JSON mirror each resource's `values` with
//!   `sensitive_values`, `true` where a value is sensitive.
//!
//! The attribute a mark points into is masked whole: a superset of a deeper mark, so a
//! path format this does not follow step by step still masks what it names.

use std::borrow::Cow;

use super::doc::{Doc, Kind, NodeId};

/// The keys that carry Terraform's marks.
pub(super) fn is_marker(key: &str) -> bool {
    matches!(key, "sensitive_attributes" | "sensitive_values")
}

/// The members of an object's `attributes` and of its `values` that its own
/// `sensitive_attributes` and `sensitive_values` mark as sensitive.
#[derive(Default)]
pub(super) struct Marks<'a> {
    attributes: Vec<Cow<'a, str>>,
    values: Vec<Cow<'a, str>>,
}

impl<'a> Marks<'a> {
    pub fn of(doc: &Doc<'a>, object: NodeId) -> Self {
        let mut marks = Marks::default();
        // Every copy of a repeated mark counts: marks only add masking.
        for paths in doc.members(object, "sensitive_attributes") {
            marks.attributes.extend(
                doc.children(paths)
                    .filter_map(|path| first_attribute(doc, path)),
            );
        }
        for flags in doc.members(object, "sensitive_values") {
            if doc.kind(flags) == Kind::Object {
                marks.values.extend(
                    doc.children(flags)
                        .filter(|&flag| marks_anything(doc, flag, 0))
                        .filter_map(|flag| doc.key(flag)),
                );
            }
        }
        marks
    }

    /// The marked members of the sibling under `key`, if it is one Terraform marks into.
    pub fn names_under(&self, key: &str) -> Option<&[Cow<'a, str>]> {
        let names = match key {
            "attributes" => &self.attributes,
            "values" => &self.values,
            _ => return None,
        };
        (!names.is_empty()).then_some(names.as_slice())
    }
}

/// The attribute a `sensitive_attributes` path starts at: its first step's `value` (a
/// `get_attr` step), or the step itself when it is a bare name.
fn first_attribute<'a>(doc: &Doc<'a>, path: NodeId) -> Option<Cow<'a, str>> {
    let step = match doc.kind(path) {
        Kind::Array => doc.children(path).next()?,
        _ => path,
    };
    match doc.kind(step) {
        Kind::Object => doc.member(step, "value").and_then(|name| doc.str(name)),
        Kind::String { .. } => doc.str(step),
        _ => None,
    }
}

/// Is there a `true` in this `sensitive_values` entry (a flag, or nested flags mirroring a
/// block or list)? Bounded in depth: deeper marks count as marks.
fn marks_anything(doc: &Doc<'_>, node: NodeId, depth: usize) -> bool {
    match doc.kind(node) {
        Kind::Bool(flag) => flag,
        Kind::Object | Kind::Array if depth >= MAX_NESTING => true,
        Kind::Object | Kind::Array => doc
            .children(node)
            .any(|child| marks_anything(doc, child, depth + 1)),
        _ => false,
    }
}

const MAX_NESTING: usize = 16;
