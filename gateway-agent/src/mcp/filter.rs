//! What the gateway does to each server→client message before the caller sees it:
//! hide tools the caller may not use from `tools/list`, and mask secrets everywhere the
//! message carries data (results, errors, server→client requests and notifications).
//!
//! `jsonrpc`, `id` and `method` are never touched, and neither are the opaque tokens a
//! client must hand back to the server unaltered: a 2026-07-28 `requestState` (the
//! multi-round-trip flow) and a list's `nextCursor` (pagination; cursors are often
//! base64 of the server's own state, which decoding detectors could take for a secret).

use serde_json::Value;

use super::jsonrpc;
use crate::mask::{
    DEPTH_PLACEHOLDER, Doc, Edits, JsonKind, MAX_DEPTH, MaskReport, Masker, NodeId, apply_sorted,
};

/// What filtering one message did.
#[derive(Debug, Default)]
pub struct Filtered {
    pub mask: MaskReport,
    /// Tools removed from a tools/list result.
    pub hidden_tools: Vec<String>,
}

impl Filtered {
    pub fn changed(&self) -> bool {
        self.mask.masked > 0 || !self.hidden_tools.is_empty()
    }

    pub fn merge(&mut self, other: Filtered) {
        self.mask.merge(&other.mask);
        self.hidden_tools.extend(other.hidden_tools);
    }
}

/// A filtered server→client body.
#[derive(Debug)]
pub struct FilteredBody {
    /// Per message, in body order (one for a single message), for audit rows.
    pub messages: Vec<Filtered>,
    /// The body's new text, or `None` when nothing had to change (the original bytes
    /// are then forwarded untouched). Only masked values and hidden tools differ from
    /// the original: everything else keeps the server's bytes.
    pub rewritten: Option<String>,
}

impl FilteredBody {
    pub fn total(&self) -> Filtered {
        let mut total = Filtered::default();
        for one in &self.messages {
            total.mask.merge(&one.mask);
            total.hidden_tools.extend(one.hidden_tools.iter().cloned());
        }
        total
    }
}

/// Filters a server→client body (one message or a batch) given as `text`, which parsed
/// as `value`.
///
/// `request_method` is the method of the request this body answers, when the exchange
/// tells us (a POST's own response); on standalone streams it is `None` and a tools/list
/// result is recognised by its shape.
pub fn filter_server_body(
    text: &str,
    value: &Value,
    request_method: Option<&str>,
    masker: &Masker,
    tool_hidden: &dyn Fn(&str) -> bool,
) -> FilteredBody {
    match Doc::parse(text, MAX_DEPTH) {
        Ok(doc) => filter_server_doc(&doc, request_method, masker, tool_hidden),
        // serde_json took it but the span parser did not (it never should): filter the
        // canonical form instead, losing the server's layout but nothing else; if even
        // that fails, nothing of it is released.
        Err(_) => {
            let canonical = value.to_string();
            let Ok(doc) = Doc::parse(&canonical, MAX_DEPTH) else {
                return withheld(value);
            };
            let mut body = filter_server_doc(&doc, request_method, masker, tool_hidden);
            body.rewritten.get_or_insert(canonical);
            body
        }
    }
}

/// A body the masker could not inspect, replaced whole by the depth placeholder.
fn withheld(value: &Value) -> FilteredBody {
    let mask = MaskReport {
        masked: 1,
        rules: [("too_deep", 1)].into(),
    };
    let mut messages = vec![Filtered {
        mask,
        hidden_tools: Vec::new(),
    }];
    messages.resize_with(jsonrpc::messages(value).len().max(1), Filtered::default);
    FilteredBody {
        messages,
        rewritten: Some(Value::from(DEPTH_PLACEHOLDER).to_string()),
    }
}

/// [`filter_server_body`] on the span tree alone: what a caller that has no
/// `serde_json::Value` of the body (and needs none) calls.
pub fn filter_server_doc(
    doc: &Doc<'_>,
    request_method: Option<&str>,
    masker: &Masker,
    tool_hidden: &dyn Fn(&str) -> bool,
) -> FilteredBody {
    let nodes: Vec<NodeId> = match doc.kind(doc.root()) {
        JsonKind::Array => doc.children(doc.root()).collect(),
        _ => vec![doc.root()],
    };
    let mut edits = Edits::default();
    let messages = nodes
        .into_iter()
        .map(|node| filter_message(doc, node, request_method, masker, tool_hidden, &mut edits))
        .collect();
    FilteredBody {
        messages,
        rewritten: (!edits.is_empty()).then(|| edits.apply(doc.text())),
    }
}

fn filter_message(
    doc: &Doc<'_>,
    node: NodeId,
    request_method: Option<&str>,
    masker: &Masker,
    tool_hidden: &dyn Fn(&str) -> bool,
    edits: &mut Edits,
) -> Filtered {
    let mut filtered = Filtered::default();
    if doc.kind(node) != JsonKind::Object {
        // Not JSON-RPC at all: still no secret may pass.
        filtered.mask = masker.mask_node(doc, node, edits);
        return filtered;
    }
    filtered.mask = masker.mask_members(doc, node, &["jsonrpc", "id", "method", "result"], edits);
    // Every copy of a repeated `result` or `tools`: clients differ on which they keep.
    for result in doc.members(node, "result") {
        filtered.mask.merge(&masker.mask_members(
            doc,
            result,
            &["requestState", "nextCursor"],
            edits,
        ));
        if is_response(doc, node)
            && (request_method == Some("tools/list")
                || (request_method.is_none() && looks_like_tools_list(doc, result)))
        {
            for tools in doc.members(result, "tools") {
                filtered
                    .hidden_tools
                    .extend(hide_tools(doc, tools, tool_hidden, edits));
            }
        }
    }
    filtered
}

/// Whether message `node` is a JSON-RPC response, as [`jsonrpc::kind`] reads the parsed
/// value (of a repeated member, the last copy counts, as serde_json keeps it).
fn is_response(doc: &Doc<'_>, node: NodeId) -> bool {
    doc.kind(node) == JsonKind::Object
        && doc
            .member(node, "jsonrpc")
            .and_then(|version| doc.str(version))
            .is_some_and(|version| version == "2.0")
        && doc.member(node, "method").is_none()
        && doc.member(node, "id").is_some()
        && (doc.member(node, "result").is_some() || doc.member(node, "error").is_some())
}

/// A tool's names: one, unless the server repeated `name`.
fn tool_names<'a>(doc: &Doc<'a>, tool: NodeId) -> Vec<std::borrow::Cow<'a, str>> {
    doc.members(tool, "name")
        .filter_map(|name| doc.str(name))
        .collect()
}

fn looks_like_tools_list(doc: &Doc<'_>, result: NodeId) -> bool {
    doc.members(result, "tools")
        .filter(|&tools| doc.kind(tools) == JsonKind::Array)
        .any(|tools| {
            doc.children(tools).all(|tool| {
                !tool_names(doc, tool).is_empty() && doc.member(tool, "inputSchema").is_some()
            })
        })
}

/// Removes the tools `tool_hidden` names from a tools/list array, keeping the other
/// tools' bytes (and their masking) and the server's separators.
fn hide_tools(
    doc: &Doc<'_>,
    tools: NodeId,
    tool_hidden: &dyn Fn(&str) -> bool,
    edits: &mut Edits,
) -> Vec<String> {
    if doc.kind(tools) != JsonKind::Array {
        return Vec::new();
    }
    let items: Vec<NodeId> = doc.children(tools).collect();
    let mut hidden = Vec::new();
    let kept: Vec<NodeId> = items
        .iter()
        .copied()
        .filter(|&tool| {
            // Hidden if any of its names is: a client may read any copy.
            let mut names = tool_names(doc, tool);
            if names.is_empty() {
                names.push(Default::default());
            }
            match names.into_iter().find(|name| tool_hidden(name)) {
                Some(name) => {
                    hidden.push(name.into_owned());
                    false
                }
                None => true,
            }
        })
        .collect();
    if hidden.is_empty() {
        return hidden;
    }
    let text = doc.text();
    let (start, end) = doc.span(tools);
    let inner = edits.take_within(start, end);
    let (first, last) = (doc.span(items[0]), doc.span(items[items.len() - 1]));
    let separator = match items.get(1) {
        Some(&second) => &text[first.1..doc.span(second).0],
        None => ",",
    };
    let mut out = String::from("[");
    if !kept.is_empty() {
        out.push_str(&text[start + 1..first.0]);
        for (i, &tool) in kept.iter().enumerate() {
            if i > 0 {
                out.push_str(separator);
            }
            let (from, to) = doc.span(tool);
            out.push_str(&apply_sorted(text, from, to, &inner));
        }
        out.push_str(&text[last.1..end - 1]);
    }
    out.push(']');
    edits.push(start, end, out);
    hidden
}

#[cfg(test)]
mod tests;
