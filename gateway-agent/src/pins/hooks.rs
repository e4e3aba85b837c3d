//! Where pinning meets the data path: which server a tools/list belongs to, which tools
//! a server→client body lists, and how a finding overrules policy's decision on a call.

use serde_json::Value;

use super::{Action, Finding};

/// The key a server's tools are pinned under: its configured name, else `ip:port`.
pub fn server_key(name: Option<&str>, addr: std::net::SocketAddr) -> String {
    match name {
        Some(name) => name.to_owned(),
        None => std::net::SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string(),
    }
}

/// The tools of every tools/list result in a server→client body (one message or a
/// batch): a response to a `tools/list` request, or, where the request is unknown (a
/// standalone stream), a result shaped like one (every tool a name and an inputSchema).
/// Also whether a result has a `nextCursor` (more pages follow).
pub fn listed_tools(body: &Value, request_method: Option<&str>) -> (Vec<Value>, bool) {
    let messages: Vec<&Value> = match body {
        Value::Array(batch) => batch.iter().collect(),
        single => vec![single],
    };
    let mut out = Vec::new();
    let mut more = false;
    for message in messages {
        if message.get("method").is_some() {
            continue;
        }
        let Some(tools) = message
            .get("result")
            .and_then(|r| r.get("tools"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let shaped = tools
            .iter()
            .all(|t| t.get("name").is_some_and(Value::is_string) && t.get("inputSchema").is_some());
        if request_method == Some("tools/list") || (request_method.is_none() && shaped) {
            out.extend(tools.iter().cloned());
            more |= message
                .pointer("/result/nextCursor")
                .is_some_and(|c| !c.is_null());
        }
    }
    (out, more)
}

/// Policy's `decision` on a call, overruled by what pinning found about its tool: `hide`
/// and `deny` refuse, `approve` asks for approval (adding the reason to a policy's own
/// approval); `warn` and a policy denial stand.
pub fn overrule(
    decision: crate::policy::Decision,
    finding: Option<Finding>,
) -> crate::policy::Decision {
    use crate::policy::Decision;
    let Some(finding) = finding else {
        return decision;
    };
    match (finding.action, decision) {
        (Action::Warn, decision) | (_, decision @ Decision::Deny { .. }) => decision,
        (Action::Hide | Action::Deny, _) => Decision::Deny {
            rule: finding.rule.to_owned(),
            reason: finding.reason,
        },
        (Action::Approve, Decision::Approve { rule, reason }) => Decision::Approve {
            rule,
            reason: format!("{reason}; {}", finding.reason),
        },
        (Action::Approve, Decision::Allow { .. }) => Decision::Approve {
            rule: finding.rule.to_owned(),
            reason: finding.reason,
        },
    }
}
