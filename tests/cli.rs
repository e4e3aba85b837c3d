//! The CLI contract operators script against: `check` validates exactly what `run` would
//! and names the bad key. No privileges needed.

use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_gateway-agent");

fn check(config_text: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(AGENT);
    cmd.arg("check");
    if let Some(text) = config_text {
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    cmd.output().expect("run gateway-agent check")
}

#[test]
fn embedded_default_config_checks_ok() {
    let out = check(None);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("embedded default config: ok"));
}

#[test]
fn check_names_the_bad_key_and_fails() {
    let cases = [
        (
            "[intercept]\nports = []\nlisten = \"127.0.0.1:15001\"\n",
            "intercept.ports",
        ),
        (
            "[intercept]\nports = [80]\nlisten = \"localhost\"\n",
            "listen",
        ),
        (
            "[intercept]\nports = [80]\nlisten = \"127.0.0.1:15001\"\nbogus = 1\n",
            "bogus",
        ),
        (
            "[intercept]\nports = [80]\nlisten = \"127.0.0.1:15001\"\ncgroup = \"/proc\"\n",
            "intercept.cgroup",
        ),
    ];
    for (text, key) in cases {
        let out = check(Some(text));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text} passed check");
        assert!(
            stderr.contains(key),
            "{text}: error does not name {key}: {stderr}"
        );
        assert!(
            stderr.contains("agent.toml"),
            "error does not name the file: {stderr}"
        );
    }
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = Command::new(AGENT)
        .args(["check", "--config", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/agent.toml"), "{stderr}");
}
