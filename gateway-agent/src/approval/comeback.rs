//! The 2026-07-28 way to make a held caller come back: instead of a final "approval
//! pending" tool error, a `tools/call`, `prompts/get` or `resources/read` whose hold ended
//! undecided is answered `{"resultType": "input_required", "requestState": …}` with no
//! input requests. Every 2026-07-28 client handles that result: the SDKs retry the same
//! request at once, carrying the state back (up to 10 rounds by default in the Python and
//! TypeScript SDKs), and each retry is held again. So the caller simply waits, through
//! several holds, with no model round-trip; after `input_required_rounds` the answer is
//! the pending tool error, well before the SDKs give up.
//!
//! The state is the gateway's, never the server's: `gateway-approval.v1.<round>.<base64url
//! of the server's own requestState, if the request carried one>`. It is not trusted for
//! anything but the round count (binding is by the call itself), and before a released
//! request goes upstream it is replaced by the server's state it wrapped, or removed: the
//! server never sees a state it did not mint. That one rewrite re-serialises the request.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// Methods whose 2026-07-28 results may be `input_required`.
const METHODS: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];
const PREFIX: &str = "gateway-approval.v1.";

fn state(message: &Value) -> Option<&str> {
    crate::mcp::jsonrpc::params(message, "requestState")?.as_str()
}

/// May `message` be answered with a come-back (a 2026-07-28 interactive request)?
pub fn applies(message: &Value, modern: bool) -> bool {
    modern
        && message
            .get("method")
            .and_then(Value::as_str)
            .is_some_and(|m| METHODS.contains(&m))
}

/// The gateway's come-back state in `message`: its round and the server state it wraps.
fn parse(message: &Value) -> Option<(u32, Option<String>)> {
    let rest = state(message)?.strip_prefix(PREFIX)?;
    let (round, wrapped) = rest.split_once('.').unwrap_or((rest, ""));
    let round = round.parse().ok()?;
    let wrapped = (!wrapped.is_empty())
        .then(|| URL_SAFE_NO_PAD.decode(wrapped).ok())
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some((round, wrapped))
}

/// How many times this request has come back already (0 for a first request).
pub fn round(message: &Value) -> u32 {
    parse(message).map_or(0, |(round, _)| round)
}

/// The answer asking the client to send `message` again, one round later.
pub fn answer(message: &Value) -> Value {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let wrapped = match parse(message) {
        Some((_, wrapped)) => wrapped,
        None => state(message).map(str::to_owned),
    };
    let encoded = wrapped.map_or_else(String::new, |s| URL_SAFE_NO_PAD.encode(s));
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "resultType": "input_required",
            "requestState": format!("{PREFIX}{}.{encoded}", round(message) + 1),
        },
    })
}

/// `message` as the server must get it when it carries the gateway's state: the server's
/// own state restored, or none. `None` when the request is to be forwarded as it came.
pub fn unwrap(message: &Value) -> Option<Vec<u8>> {
    let (_, wrapped) = parse(message)?;
    let mut message = message.clone();
    let params = message.get_mut("params")?.as_object_mut()?;
    match wrapped {
        Some(original) => params.insert("requestState".into(), original.into()),
        None => params.remove("requestState"),
    };
    serde_json::to_vec(&message).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(state: Option<&str>) -> Value {
        let mut call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
            "params":{"name":"x","arguments":{"a":1}}});
        if let Some(state) = state {
            call["params"]["requestState"] = state.into();
        }
        call
    }

    #[test]
    fn rounds_count_up_and_the_servers_state_survives_them() {
        let first = call(Some("server-minted-state"));
        assert_eq!(round(&first), 0);
        let back = answer(&first);
        assert_eq!(back["result"]["resultType"], "input_required");
        let state = back["result"]["requestState"].as_str().unwrap();
        assert!(state.starts_with(PREFIX), "{state}");
        let retry = call(Some(state));
        assert_eq!(round(&retry), 1);
        let again = call(answer(&retry)["result"]["requestState"].as_str());
        assert_eq!(round(&again), 2);
        let upstream: Value = serde_json::from_slice(&unwrap(&again).unwrap()).unwrap();
        assert_eq!(upstream["params"]["requestState"], "server-minted-state");
        assert_eq!(upstream["params"]["arguments"], json!({"a":1}));
    }

    #[test]
    fn the_gateways_own_state_never_reaches_the_server() {
        let retry = call(answer(&call(None))["result"]["requestState"].as_str());
        let upstream: Value = serde_json::from_slice(&unwrap(&retry).unwrap()).unwrap();
        assert!(
            upstream["params"].get("requestState").is_none(),
            "{upstream}"
        );
        assert!(unwrap(&call(Some("server-minted-state"))).is_none());
        assert!(unwrap(&call(None)).is_none());
    }

    #[test]
    fn only_2026_interactive_requests() {
        assert!(applies(&call(None), true));
        assert!(!applies(&call(None), false));
        let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
        assert!(!applies(&list, true));
    }
}
