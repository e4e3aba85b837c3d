//! Which connections are opened: the decision table of [`TlsSetup::decide`].

use super::*;

fn setup(extra_servers: &str) -> (tempfile::TempDir, TlsSetup) {
    let dir = tempfile::tempdir().unwrap();
    ca::init(dir.path()).unwrap();
    let text = format!(
        "[intercept]\nports = [443]\nlisten = \"127.0.0.1:15001\"\n\
         [tls]\nca_dir = \"{}\"\n\
         [[server]]\nname = \"github\"\naddr = \"10.0.0.5:443\"\nsni = [\"mcp.github.example\"]\ntls = \"terminate\"\n\
         [[server]]\nname = \"corp\"\naddr = \"10.0.0.6:443\"\nsni = [\"*.corp.example\"]\ntls = \"terminate\"\n\
         [[server]]\nname = \"bank\"\naddr = \"10.0.0.7:443\"\nsni = [\"bank.example\"]\n\
         [[server]]\nname = \"by-addr\"\naddr = \"10.0.0.8:443\"\ntls = \"terminate\"\n{extra_servers}",
        dir.path().display()
    );
    let config = Config::parse(&text, "test").unwrap();
    (dir, TlsSetup::load(&config).unwrap())
}

fn name(decision: Decision<'_>) -> String {
    match decision {
        Decision::Terminate(s) => format!("terminate {}", s.name),
        Decision::Passthrough(Some(s)) => format!("passthrough {}", s.name),
        Decision::Passthrough(None) => "passthrough".into(),
        Decision::Refuse(s) => format!("refuse {}", s.name),
    }
}

#[test]
fn terminates_only_what_is_configured() {
    let (_dir, setup) = setup("");
    let elsewhere: SocketAddr = "93.184.216.34:443".parse().unwrap();
    let cases = [
        // The SNI names an inspected server: opened wherever it goes.
        (Some("mcp.github.example"), elsewhere, "terminate github"),
        (Some("MCP.GitHub.Example"), elsewhere, "terminate github"),
        (Some("a.corp.example"), elsewhere, "terminate corp"),
        // A server left in passthrough is attributed, not opened.
        (Some("bank.example"), elsewhere, "passthrough bank"),
        // Nobody asked for this one: untouched.
        (Some("www.example"), elsewhere, "passthrough"),
        (None, elsewhere, "passthrough"),
        // No SNI: the destination decides.
        (None, "10.0.0.5:443".parse().unwrap(), "terminate github"),
        (
            None,
            "[::ffff:10.0.0.5]:443".parse().unwrap(),
            "terminate github",
        ),
        // A foreign SNI at an inspected server's address would dodge inspection.
        (
            Some("www.example"),
            "10.0.0.5:443".parse().unwrap(),
            "refuse github",
        ),
        // A server known by address only takes any SNI.
        (
            Some("anything.example"),
            "10.0.0.8:443".parse().unwrap(),
            "terminate by-addr",
        ),
    ];
    for (sni, dst, want) in cases {
        assert_eq!(name(setup.decide(sni, dst)), want, "{sni:?} → {dst}");
    }
    assert_eq!(setup.terminating(), 3);
    assert!(setup.inspects("10.0.0.5:443".parse().unwrap()));
    assert!(!setup.inspects("10.0.0.7:443".parse().unwrap()));
}

#[test]
fn a_terminating_server_without_a_certificate_needs_the_ca() {
    let text = "[intercept]\nports = [443]\nlisten = \"127.0.0.1:15001\"\n\
        [tls]\nca_dir = \"/nonexistent/gateway-agent-ca\"\n\
        [[server]]\nname = \"github\"\naddr = \"10.0.0.5:443\"\ntls = \"terminate\"\n";
    let config = Config::parse(text, "test").unwrap();
    let err = TlsSetup::load(&config).unwrap_err().to_string();
    assert!(err.contains("github") && err.contains("ca init"), "{err}");
}

#[test]
fn config_errors_name_the_key() {
    let base = "[intercept]\nports = [443]\nlisten = \"127.0.0.1:15001\"\n";
    for (extra, key) in [
        (
            "[tls]\nleaf_validity_hours = 200\n",
            "tls.leaf_validity_hours",
        ),
        ("[tls]\nca_dir = \"relative\"\n", "tls.ca_dir"),
        (
            "[[server]]\nname = \"a\"\naddr = \"10.0.0.5:443\"\nsni = [\"Bad Name\"]\n",
            "server.sni",
        ),
        (
            "[[server]]\nname = \"a\"\naddr = \"10.0.0.5:443\"\ncert = \"/x.pem\"\n",
            "server.cert",
        ),
        (
            "[[server]]\nname = \"a\"\naddr = \"10.0.0.5:443\"\nsni = [\"x.example\"]\n\
             [[server]]\nname = \"b\"\naddr = \"10.0.0.6:443\"\nsni = [\"x.example\"]\n",
            "server.sni",
        ),
    ] {
        let err = Config::parse(&format!("{base}{extra}"), "f.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("f.toml: {key}:")), "{err}");
    }
}
