use serde_json::json;

use super::*;
use crate::mask::MaskConfig;

fn ctx() -> RowContext {
    RowContext {
        session: "s-1".into(),
        transport: "streamable_http",
        protocol_version: Some("2025-06-18".into()),
        server_name: Some("vault".into()),
        server_addr: "127.0.0.1:3001".into(),
        principal: PrincipalColumns {
            user: Some("alice".into()),
            ..PrincipalColumns::default()
        }
        .into(),
        started: Instant::now(),
    }
}

fn masker() -> Masker {
    Masker::new(&MaskConfig::default()).unwrap()
}

#[test]
fn client_rows_mask_arguments_and_carry_verdicts() {
    let body = json!([
        {"jsonrpc":"2.0","id":7,"method":"tools/call",
         "params":{"name":"store","arguments":{"api_key":"sk-live-1234567890abcdef"}}},
        {"jsonrpc":"2.0","method":"notifications/initialized"}
    ]);
    let verdicts = [
        Verdict {
            decision: Some("deny"),
            rule: Some("no-store".into()),
        },
        Verdict {
            decision: None,
            rule: None,
        },
    ];
    let rows = client_rows(&ctx(), &body, &verdicts, &masker());
    assert_eq!(rows.len(), 2);
    let call = &rows[0];
    assert_eq!(
        (call.kind, call.direction),
        (Kind::Request, Direction::ClientToServer)
    );
    assert_eq!(call.request_id.as_deref(), Some("7"));
    assert_eq!(call.method.as_deref(), Some("tools/call"));
    assert_eq!(call.tool.as_deref(), Some("store"));
    assert_eq!(call.decision.as_deref(), Some("deny"));
    assert_eq!(call.rules, ["no-store"]);
    let payload = call.payload.as_deref().unwrap();
    assert!(!payload.contains("sk-live"), "{payload}");
    assert!(call.masked_count >= 1 && !call.mask_rules.is_empty());
    assert_eq!(call.principal.user.as_deref(), Some("alice"));
    assert_eq!(call.session, "s-1");
    assert_eq!(rows[1].kind, Kind::Notification);
    assert_eq!(rows[1].payload, None);
    assert_eq!(rows[1].decision, None);
}

#[test]
fn server_rows_name_the_answered_method() {
    let value = json!({"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"no"}});
    let report = MaskReport::default();
    let rows = server_rows(
        &ctx(),
        &value,
        &[report],
        (Some("tools/list"), None),
        200,
        80,
    );
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.kind, row.direction),
        (Kind::Response, Direction::ServerToClient)
    );
    assert_eq!(row.method.as_deref(), Some("tools/list"));
    assert_eq!(row.request_id.as_deref(), Some("\"a\""));
    assert_eq!(row.error_code, Some(-32601));
    assert_eq!(row.status, Some(200));
    assert_eq!(row.bytes, 80);
    assert!(row.payload.as_deref().unwrap().contains("-32601"));
}

#[test]
fn gateway_and_refusal_rows() {
    let answer = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"denied"}});
    let request = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm"}});
    let rows = gateway_rows(&ctx(), &answer, &request, 200);
    assert_eq!(rows[0].direction, Direction::Gateway);
    assert_eq!(rows[0].error_code, Some(-32010));
    assert_eq!(rows[0].method.as_deref(), Some("tools/call"));
    assert_eq!(rows[0].tool.as_deref(), Some("rm"));
    let row = refusal_row(&ctx(), 401, Some(-32014), "token expired");
    assert_eq!(row.kind, Kind::Decision);
    assert_eq!(row.decision.as_deref(), Some("deny"));
    assert_eq!(row.status, Some(401));
    assert!(row.payload.as_deref().unwrap().contains("token expired"));
}

#[test]
fn connection_ids_are_unique() {
    assert_ne!(connection_id(), connection_id());
}
