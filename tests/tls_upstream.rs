//! Upstream TLS through the agent's termination, loopback only: a server whose
//! certificate is expired, misnamed or untrusted, or that speaks only TLS 1.0, is never
//! sent a request (the client gets a 502 naming why, and it is audited), and mTLS with a
//! client certificate the agent holds. Needs root and `cargo xtask setup`.

mod support;

use serde_json::Value;
use support::{
    Scenario, audit_rows, require_root,
    tls::{
        H2_SECRET, curl_call, h2_server, h2_server_with, install_ca, make_pki, probe, start_agent,
        terminated_h2,
    },
};

#[test]
fn upstream_tls_failures_are_502_and_never_forwarded() {
    if !require_root("upstream_tls_failures_are_502_and_never_forwarded") {
        return;
    }
    let scenario = Scenario::new();
    let pki = make_pki(scenario.dir.path());
    let bundle = install_ca(&scenario);
    let cases = [
        ("expired", "upstream certificate has expired"),
        (
            "wrongname",
            "upstream certificate is not valid for localhost",
        ),
        ("selfsigned", "unknown issuer"),
        ("tls10", "does not speak TLS 1.2 or 1.3"),
    ];
    let mut servers = Vec::new();
    let mut config = String::new();
    for (stem, _) in cases {
        let log = scenario.dir.path().join(format!("{stem}.log"));
        let (proc, port) = match stem {
            // A server nobody upgraded: TLS 1.0 only, with the test CA's valid certificate.
            "tls10" => h2_server_with(&pki, "good", &log, &["tls1.0"]),
            _ => h2_server(&pki, stem, &log),
        };
        config.push_str(&format!(
            "\n[[server]]\nname = \"{stem}\"\naddr = \"127.0.0.1:{port}\"\ntls = \"terminate\"\nupstream_ca = [\"{}\"]\n",
            pki.join("test-ca.pem").display()
        ));
        servers.push((proc, port, log));
    }
    let ports: Vec<u16> = servers.iter().map(|s| s.1).collect();
    let agent = start_agent(&scenario, &ports, &config);
    for ((stem, reason), (_, port, log)) in cases.iter().zip(&servers) {
        let (code, _, body) = curl_call(
            &scenario,
            &bundle,
            &format!("https://localhost:{port}/mcp"),
            &[],
        );
        assert_eq!(code, 502, "{stem}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("a JSON-RPC error body");
        assert_eq!(answer["error"]["code"], -32012, "{stem}: {answer}");
        assert_eq!(answer["id"], 9, "{stem}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{stem}: {message}");
        assert!(
            !log.exists(),
            "{stem}: the request reached the unverified server"
        );
        agent.wait_for(
            "upstream TLS verification or handshake failed; refusing the client's requests (502)",
            |l| l["server"] == *stem,
        );
    }
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    for (stem, reason) in cases {
        assert!(
            rows.iter().any(|r| r["server_name"] == stem
                && r["status"] == 502
                && r["decision"] == "deny"
                && r["payload"].as_str().unwrap_or("").contains(reason)),
            "{stem}: no 502 audit row"
        );
    }
}

/// mTLS to the upstream: the agent presents the client certificate it holds for a server
/// that requires one; a server configured without one is a 502 naming why.
#[test]
fn upstream_mtls_with_a_held_client_certificate() {
    if !require_root("upstream_mtls_with_a_held_client_certificate") {
        return;
    }
    let scenario = Scenario::new();
    let pki = make_pki(scenario.dir.path());
    let bundle = install_ca(&scenario);
    let mtls = format!("mtls:{}", pki.join("test-ca.pem").display());
    let with_log = scenario.dir.path().join("with.log");
    let without_log = scenario.dir.path().join("without.log");
    let (_with, with_port) = h2_server_with(&pki, "good", &with_log, &[&mtls]);
    let (_without, without_port) = h2_server_with(&pki, "good", &without_log, &[&mtls]);
    let ca = pki.join("test-ca.pem");
    let servers = format!(
        "\n[[server]]\nname = \"with-cert\"\naddr = \"127.0.0.1:{with_port}\"\ntls = \"terminate\"\n\
         upstream_ca = [\"{ca}\"]\nupstream_client_cert = \"{cert}\"\nupstream_client_key = \"{key}\"\n\
         \n[[server]]\nname = \"without-cert\"\naddr = \"127.0.0.1:{without_port}\"\ntls = \"terminate\"\n\
         upstream_ca = [\"{ca}\"]\n",
        ca = ca.display(),
        cert = pki.join("client.pem").display(),
        key = pki.join("client.key").display(),
    );
    let _agent = start_agent(&scenario, &[with_port, without_port], &servers);
    let (code, _, body) = curl_call(
        &scenario,
        &bundle,
        &format!("https://localhost:{with_port}/mcp"),
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(H2_SECRET), "{body}");
    assert_eq!(
        std::fs::read_to_string(&with_log).unwrap().lines().count(),
        1
    );
    let (code, _, body) = curl_call(
        &scenario,
        &bundle,
        &format!("https://localhost:{without_port}/mcp"),
        &[],
    );
    assert_eq!(code, 502, "{body}");
    // TLS 1.3 servers judge the client certificate after the client's handshake is done,
    // so the refusal surfaces at the first request (the upstream closes the connection).
    assert!(body.contains("-32012"), "{body}");
    assert!(
        !without_log.exists(),
        "nothing reached the server that refused us"
    );
}

/// A caller that opens a TLS connection per call (an HTTP/1.1 client without keep-alive
/// across calls) reuses the agent's verified upstream TLS connection instead of paying an
/// upstream handshake each time; an h2 client still gets its own h2 connection.
#[test]
fn one_callers_tls_connections_share_a_verified_upstream_connection() {
    if !require_root("one_callers_tls_connections_share_a_verified_upstream_connection") {
        return;
    }
    let scenario = Scenario::new();
    // Bound whole: the agent and the server live as long as it does.
    let bed = terminated_h2(&scenario, "pooled", "");
    let (bundle, log, port) = (bed.bundle.clone(), bed.log.clone(), bed.port);
    const CALLS: usize = 6;
    let seen = probe(
        &scenario,
        &[
            "sequential",
            &port.to_string(),
            "localhost",
            bundle.to_str().unwrap(),
            &CALLS.to_string(),
        ],
    );
    let answers = seen["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), CALLS, "{seen}");
    for answer in answers {
        assert_eq!(answer["status"], 200, "{answer}");
        let body = answer["body"].as_str().unwrap();
        assert!(
            body.contains("http 1.1") && !body.contains(H2_SECRET),
            "{body}"
        );
    }
    // One line per request: method, path, HTTP version, the agent's source port.
    let lines = std::fs::read_to_string(&log).unwrap();
    let ports: std::collections::BTreeSet<&str> = lines
        .lines()
        .filter_map(|line| line.split(' ').nth(3))
        .collect();
    assert_eq!(lines.lines().count(), CALLS, "{lines}");
    // Each client connection is closed before the next opens, so the kept connection is
    // normally back in the pool in time; the bound leaves room for one that was not.
    // Connections are pooled per data-path thread: each thread a client connection lands
    // on may open one.
    let threads = bed.agent.wait_for("data path serving", |_| true)["threads"]
        .as_u64()
        .expect("the agent logs its data-path threads") as usize;
    assert!(
        ports.len() <= threads + 1 && ports.len() < CALLS,
        "{CALLS} client connections needed {} upstream connections ({threads} data-path threads): {lines}",
        ports.len()
    );

    // An h2 client is not pooled: its connection negotiates h2 with the server.
    let (code, version, body) = curl_call(
        &scenario,
        &bundle,
        &format!("https://localhost:{port}/mcp"),
        &[],
    );
    assert_eq!((code, version.as_str()), (200, "2"), "{body}");
    assert!(body.contains("http 2.0"), "{body}");
}
