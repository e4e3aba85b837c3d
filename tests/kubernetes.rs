//! The Kubernetes node form (packaging/kubernetes/): the manifest validates against the
//! Kubernetes OpenAPI schema (kubernetes-validate, strict: unknown fields are errors), has
//! what a node agent needs, and its ConfigMap's config and policies pass `check`.
//! Needs the test virtualenv (`cargo xtask setup` installs kubernetes-validate there).

mod support;

use std::{path::PathBuf, process::Command};

use serde_json::Value;

/// The Kubernetes release whose schema the manifest must satisfy.
const KUBERNETES_VERSION: &str = "1.37.0";

fn manifest() -> PathBuf {
    support::workspace().join("packaging/kubernetes/gateway-agent.yaml")
}

fn venv_tool(name: &str) -> PathBuf {
    let tool = support::python().with_file_name(name);
    assert!(
        tool.exists(),
        "{} is missing: run `cargo xtask setup`",
        tool.display()
    );
    tool
}

/// kubernetes-validate on `file`: success and what it printed.
fn validate(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(venv_tool("kubernetes-validate"))
        .args(["--strict", "--no-warn", "-k", KUBERNETES_VERSION])
        .arg(file)
        .output()
        .expect("run kubernetes-validate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The manifest's documents as JSON (PyYAML from the same virtualenv).
fn documents() -> Vec<Value> {
    let out = Command::new(support::python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(manifest())
        .output()
        .expect("run python");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

#[test]
fn the_manifest_validates_against_the_kubernetes_schema() {
    let (ok, report) = validate(&manifest());
    assert!(ok, "{report}");
    for resource in [
        "namespace/gateway-agent",
        "configmap/gateway-agent-config",
        "daemonset/gateway-agent",
    ] {
        assert!(
            report.contains(&format!("passed for resource {resource}")),
            "{report}"
        );
    }
}

#[test]
fn a_misspelt_or_mistyped_field_fails_validation() {
    let text = std::fs::read_to_string(manifest()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("hostPID: true", "hostPid: true"),
        ("maxUnavailable: 1", "maxUnavailable: [1]"),
    ] {
        assert!(text.contains(from), "{from}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let (ok, report) = validate(&bad);
        assert!(!ok, "{to} passed: {report}");
        assert!(report.contains("daemonset/gateway-agent"), "{report}");
    }
}

#[test]
fn the_daemonset_has_what_a_node_agent_needs() {
    let docs = documents();
    let pod = &kind(&docs, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "callers are reported by host pid");
    assert_eq!(pod["hostNetwork"], true);
    let container = &pod["containers"][0];
    let caps = &container["securityContext"]["capabilities"];
    assert_eq!(caps["drop"], serde_json::json!(["ALL"]));
    for cap in ["BPF", "NET_ADMIN", "PERFMON", "SYS_PTRACE"] {
        assert!(
            caps["add"].as_array().unwrap().contains(&cap.into()),
            "{cap}"
        );
    }
    assert!(
        !caps["add"]
            .as_array()
            .unwrap()
            .contains(&"SYS_ADMIN".into()),
        "the agent never mounts: no SYS_ADMIN"
    );
    assert_eq!(container["securityContext"]["privileged"], false);
    let host_path = |name: &str| -> String {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["hostPath"]["path"].as_str())
            .unwrap_or_else(|| panic!("no hostPath volume {name}"))
            .to_owned()
    };
    assert_eq!(host_path("bpffs"), "/sys/fs/bpf");
    assert_eq!(host_path("cgroup"), "/sys/fs/cgroup");
    assert_eq!(host_path("audit"), "/var/lib/gateway-agent");
    let mounts = container["volumeMounts"].as_array().unwrap();
    let mounted = |path: &str| mounts.iter().any(|m| m["mountPath"] == path);
    for path in [
        "/sys/fs/bpf",
        "/sys/fs/cgroup",
        "/var/lib/gateway-agent",
        "/etc/gateway-agent/agent.toml",
    ] {
        assert!(mounted(path), "{path} not mounted");
    }
    // The liveness probe is `status`, which is 0 only while interception is active.
    assert_eq!(container["livenessProbe"]["exec"]["command"][1], "status");
}

#[test]
fn the_configmap_config_and_policies_pass_check() {
    let docs = documents();
    let data = kind(&docs, "ConfigMap")["data"].as_object().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (name, text) in data {
        if name != "agent.toml" {
            std::fs::write(policies.join(name), text.as_str().unwrap()).unwrap();
        }
    }
    // Only the node-specific paths are moved (this host need not have a system.slice),
    // everything else is checked as shipped.
    let mut config = data["agent.toml"].as_str().unwrap().to_owned();
    for (from, to) in [
        (
            "cgroup = \"/sys/fs/cgroup/system.slice\"".to_owned(),
            format!("cgroup = \"{}\"", support::cgroup2_root().display()),
        ),
        (
            "dir = \"/etc/gateway-agent/policies\"".to_owned(),
            format!("dir = \"{}\"", policies.display()),
        ),
    ] {
        assert!(
            config.contains(&from),
            "{from} not in the ConfigMap's agent.toml"
        );
        config = config.replace(&from, &to);
    }
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(support::AGENT)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run gateway-agent check");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("on exit keep"), "{stdout}");
    assert!(stdout.contains("1 policy rules"), "{stdout}");
}
