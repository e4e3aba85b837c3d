//! What the gateway does to each server→client message before the caller sees it:
//! hide tools the caller may not use from `tools/list`, and mask secrets everywhere the
//! message carries data (results, errors, server→client requests and notifications).
//!
//! `jsonrpc`, `id` and `method` are never touched, and neither is a 2026-07-28
//! `requestState`: it is opaque to everyone but the server that minted it, and the client
//! must echo it back unaltered for the multi-round-trip flow to work.

use serde_json::Value;

use super::jsonrpc::{self, Kind};
use crate::mask::{MaskReport, Masker};

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

/// Filters a server→client body (one message or a batch) in place.
///
/// `request_method` is the method of the request this body answers, when the exchange
/// tells us (a POST's own response); on standalone streams it is `None` and a tools/list
/// result is recognised by its shape.
pub fn filter_server_body(
    body: &mut Value,
    request_method: Option<&str>,
    masker: &Masker,
    tool_hidden: &dyn Fn(&str) -> bool,
) -> Filtered {
    let mut filtered = Filtered::default();
    for one in filter_server_messages(body, request_method, masker, tool_hidden) {
        filtered.merge(one);
    }
    filtered
}

/// [`filter_server_body`], reporting per message (in body order), for audit rows.
pub fn filter_server_messages(
    body: &mut Value,
    request_method: Option<&str>,
    masker: &Masker,
    tool_hidden: &dyn Fn(&str) -> bool,
) -> Vec<Filtered> {
    jsonrpc::messages_mut(body)
        .into_iter()
        .map(|message| filter_message(message, request_method, masker, tool_hidden))
        .collect()
}

fn filter_message(
    message: &mut Value,
    request_method: Option<&str>,
    masker: &Masker,
    tool_hidden: &dyn Fn(&str) -> bool,
) -> Filtered {
    let mut filtered = Filtered::default();
    let kind = jsonrpc::kind(message);
    let Some(object) = message.as_object_mut() else {
        // Not JSON-RPC at all: still no secret may pass.
        filtered.mask = masker.mask_value(message);
        return filtered;
    };
    if kind == Kind::Response
        && let Some(result) = object.get_mut("result")
        && (request_method == Some("tools/list")
            || (request_method.is_none() && looks_like_tools_list(result)))
    {
        filtered.hidden_tools = hide_tools(result, tool_hidden);
    }
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "jsonrpc" | "id" | "method" => {}
            "result" => filtered
                .mask
                .merge(&mask_preserving_request_state(value, masker)),
            _ => filtered.mask.merge(&masker.mask_value(value)),
        }
    }
    filtered
}

fn mask_preserving_request_state(result: &mut Value, masker: &Masker) -> MaskReport {
    let state = result
        .as_object_mut()
        .and_then(|r| r.remove("requestState"));
    let report = masker.mask_value(result);
    if let (Some(state), Some(result)) = (state, result.as_object_mut()) {
        result.insert("requestState".to_owned(), state);
    }
    report
}

fn looks_like_tools_list(result: &Value) -> bool {
    result
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools.iter().all(|tool| {
                tool.get("name").is_some_and(Value::is_string) && tool.get("inputSchema").is_some()
            })
        })
}

fn hide_tools(result: &mut Value, tool_hidden: &dyn Fn(&str) -> bool) -> Vec<String> {
    let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    let mut hidden = Vec::new();
    tools.retain(|tool| {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if tool_hidden(name) {
            hidden.push(name.to_owned());
            false
        } else {
            true
        }
    });
    hidden
}

#[cfg(test)]
mod tests;
