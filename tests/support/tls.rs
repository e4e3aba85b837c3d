//! Fixtures for tests/tls.rs: the test PKI, HTTPS test servers, the agent's CA installed
//! into a scratch store, an agent with TLS servers configured, and the TLS clients.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{AGENT, Agent, DENY_SHELL_POLICY, Scenario, WAIT, free_port, python, workspace};

/// The secret tests/tls/h2_server.mjs plants in every answer.
pub const H2_SECRET: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";

/// A process killed (by PID) on drop.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (bounded) until it listens on `port`.
pub fn spawn_listening(mut cmd: Command, port: u16) -> Proc {
    let mut proc = Proc(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn test server"),
    );
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = proc.0.try_wait().expect("poll test server") {
            panic!("test server exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "test server never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    proc
}

/// The test PKI (tests/tls/pki.py) in `dir`.
pub fn make_pki(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let status = Command::new(python())
        .arg(workspace().join("tests/tls/pki.py"))
        .arg(&pki)
        .status()
        .expect("run pki.py");
    assert!(status.success(), "pki.py failed");
    pki
}

/// tests/mcp/server.py over HTTPS with `pki/<stem>.pem`.
pub fn https_mcp_server(pki: &Path, state: &str, response: &str) -> (Proc, u16) {
    let port = free_port("127.0.0.1");
    let mut cmd = Command::new(python());
    cmd.arg(workspace().join("tests/mcp/server.py"))
        .args([&port.to_string(), state, response])
        .arg(pki.join("good.pem"))
        .arg(pki.join("good.key"));
    (spawn_listening(cmd, port), port)
}

/// tests/tls/h2_server.mjs with `pki/<stem>.pem`; its request log is `log`.
pub fn h2_server(pki: &Path, stem: &str, log: &Path) -> (Proc, u16) {
    h2_server_with(pki, stem, log, &[])
}

pub fn h2_server_with(pki: &Path, stem: &str, log: &Path, extra: &[&str]) -> (Proc, u16) {
    let port = free_port("127.0.0.1");
    let mut cmd = Command::new("node");
    cmd.arg(workspace().join("tests/tls/h2_server.mjs"))
        .arg(port.to_string())
        .arg(pki.join(format!("{stem}.pem")))
        .arg(pki.join(format!("{stem}.key")))
        .arg(log)
        .args(extra);
    (spawn_listening(cmd, port), port)
}

/// `gateway-agent ca …` with the scenario's CA directory.
pub fn ca_command(scenario: &Scenario, args: &[&str]) -> Output {
    let out = Command::new(AGENT)
        .arg("ca")
        .args(args)
        .arg("--dir")
        .arg(scenario.dir.path().join("ca"))
        .output()
        .expect("run gateway-agent ca");
    assert!(
        out.status.success(),
        "gateway-agent ca {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The agent's CA made and installed into a scratch system store; returns the bundle
/// (system roots + the agent's CA) that `ca install` says to use.
pub fn install_ca(scenario: &Scenario) -> PathBuf {
    ca_command(scenario, &["init"]);
    let store = scenario.dir.path().join("store");
    let etc = scenario.dir.path().join("etc-certs");
    let out = ca_command(
        scenario,
        &[
            "install",
            "--store",
            store.to_str().unwrap(),
            "--etc-certs",
            etc.to_str().unwrap(),
        ],
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let bundle = etc.join("ca-certificates.crt");
    assert!(
        printed.contains(&format!("export SSL_CERT_FILE={}", bundle.display()))
            && printed.contains("NODE_EXTRA_CA_CERTS=")
            && printed.contains("keytool -importcert"),
        "{printed}"
    );
    bundle
}

/// An agent intercepting `ports` with `servers` (TOML) and the deny-shell policy.
pub fn start_agent(scenario: &Scenario, ports: &[u16], servers: &str) -> Agent {
    start_agent_with_policy(scenario, ports, servers, DENY_SHELL_POLICY)
}

pub fn start_agent_with_policy(
    scenario: &Scenario,
    ports: &[u16],
    servers: &str,
    policy: &str,
) -> Agent {
    let policies = scenario.dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("10-test.toml"), policy).unwrap();
    let extra = format!(
        "\n[policy]\ndir = \"{}\"\n\n[tls]\nca_dir = \"{}\"\nhandshake_timeout_ms = 1500\n{servers}",
        policies.display(),
        scenario.dir.path().join("ca").display()
    );
    let config = scenario.config_with(ports, &extra);
    scenario.start_agent(&config)
}

/// tests/tls/h2_server.mjs with the `good` certificate, behind an agent that terminates
/// TLS for it as server `name` (trusting the test CA upstream): where most TLS tests
/// start.
pub struct TerminatedH2 {
    pub pki: PathBuf,
    /// The system roots plus the agent's CA, for clients.
    pub bundle: PathBuf,
    /// The server's request log.
    pub log: PathBuf,
    pub port: u16,
    pub agent: Agent,
    _server: Proc,
}

/// [`TerminatedH2`]; `server_extra` is more TOML for its `[[server]]`.
pub fn terminated_h2(scenario: &Scenario, name: &str, server_extra: &str) -> TerminatedH2 {
    let pki = make_pki(scenario.dir.path());
    let bundle = install_ca(scenario);
    let log = scenario.dir.path().join(format!("{name}-requests.log"));
    let (server, port) = h2_server(&pki, "good", &log);
    let servers = format!(
        "\n[[server]]\nname = \"{name}\"\naddr = \"127.0.0.1:{port}\"\ntls = \"terminate\"\nupstream_ca = [\"{}\"]\n{server_extra}",
        pki.join("test-ca.pem").display()
    );
    let agent = start_agent(scenario, &[port], &servers);
    TerminatedH2 {
        pki,
        bundle,
        log,
        port,
        agent,
        _server: server,
    }
}

/// curl in the test cgroup trusting `cafile`, POSTing a `tools/call`; returns (status,
/// http version, body).
pub fn curl_call(
    scenario: &Scenario,
    cafile: &Path,
    url: &str,
    extra: &[&str],
) -> (u16, String, String) {
    let body = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"lookup","arguments":{}}}"#;
    let mut args = vec![
        "--cacert",
        cafile.to_str().unwrap(),
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "-d",
        body,
        "-w",
        "\n%{http_code} %{http_version}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = scenario.curl_output(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split(' ');
    let code = tail.next().unwrap_or("0").parse().unwrap_or(0);
    let version = tail.next().unwrap_or("").to_owned();
    (code, version, body.to_owned())
}

pub fn python_client(
    argv_prefix: Vec<String>,
    url: &str,
    mode: &str,
    run: impl FnOnce(&[&str]) -> Output,
) -> Value {
    let mut argv = argv_prefix;
    argv.extend([
        python().display().to_string(),
        workspace()
            .join("tests/mcp/client.py")
            .display()
            .to_string(),
        url.to_owned(),
        mode.to_owned(),
    ]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(&argv);
    assert!(
        out.status.success(),
        "MCP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

pub fn probe(scenario: &Scenario, args: &[&str]) -> Value {
    let mut argv = vec![
        python().display().to_string(),
        workspace().join("tests/tls/probe.py").display().to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = scenario.output_in_cgroup(&argv);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "probe {args:?} printed no JSON ({err}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The connection rows whose payload names `tls` mode and `sni`.
pub fn tls_rows<'a>(rows: &'a [Value], mode: &str, sni: Option<&str>) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["kind"] == "connection")
        .filter(|r| {
            let payload: Value =
                serde_json::from_str(r["payload"].as_str().unwrap_or("null")).unwrap_or_default();
            payload["tls"] == mode && payload["sni"] == sni.map_or(Value::Null, Value::from)
        })
        .collect()
}

/// SHA-256 of a PEM certificate's DER, lower-case hex (what probe.py prints).
pub fn cert_fingerprint(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .expect("run openssl x509");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, hex) = text
        .trim()
        .split_once('=')
        .expect("openssl prints a fingerprint");
    hex.replace(':', "").to_ascii_lowercase()
}
