use super::*;

#[test]
fn client_chosen_methods_do_not_become_labels() {
    assert_eq!(method_label("tools/call"), "tools/call");
    assert_eq!(method_label("tools/call\u{0}x"), "other");
    assert_eq!(method_label(&"a".repeat(10_000)), "other");
}

#[test]
fn recorded_values_are_rendered() {
    let metrics = Metrics::new();
    metrics.connection(Some("billing"), "plaintext");
    metrics.request("tools/call", "deny");
    metrics.request("made/up", "allow");
    let report = crate::mask::MaskReport {
        masked: 3,
        rules: [("aws_access_key", 2), ("json_key", 1)].into(),
    };
    metrics.masked(&report);
    metrics.identity_refused(Some(&crate::identity::TokenError::Expired));
    metrics.identity_refused(None);
    metrics.audit_progress(&AtomicU64::new(10), &AtomicU64::new(4));
    metrics.timed_fsync(|| ());
    metrics.ship_backlog(3);
    metrics.ship_uploaded();
    metrics.ship_failed();
    let text = metrics.render();
    for expected in [
        "gateway_connections_intercepted_total{server=\"billing\",mode=\"plaintext\"} 1",
        "gateway_requests_total{method=\"tools/call\",decision=\"deny\"} 1",
        "gateway_requests_total{method=\"other\",decision=\"allow\"} 1",
        "gateway_masked_secrets_total{rule=\"aws_access_key\"} 2",
        "gateway_identity_refusals_total{reason=\"expired\"} 1",
        "gateway_identity_refusals_total{reason=\"issuer_unreachable\"} 1",
        "gateway_audit_wal_lag_rows 6",
        "gateway_audit_fsync_seconds_count 1",
        "gateway_approvals_pending 0",
        "gateway_audit_ship_backlog_files 3",
        "gateway_audit_ship_uploads_total 1",
        "gateway_audit_ship_failures_total 1",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
