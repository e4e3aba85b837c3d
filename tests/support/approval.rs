//! The approval tests' fixture: the test server, an agent config whose policy holds
//! `shell_*` calls for approval, the SDK client in the intercepted cgroup, and the
//! `gateway-agent approvals` CLI run as other uids (setpriv).
#![allow(dead_code)] // each test binary uses a different subset

use std::{
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
};

use serde_json::Value;

use crate::support::{AGENT, Agent, McpServer, Scenario, python, workspace};

pub const APPROVE_SHELL: &str = r#"
[[rule]]
id = "approve-shell"
action = "approve"
reason = "shell commands need a second pair of eyes"
[rule.match]
method = ["tools/call"]
tool = ["shell_*"]
"#;

/// The approvers' group (gid 50 on Debian): uids connect with it as their gid.
pub const APPROVERS: (&str, u32) = ("staff", 50);
/// `daemon` and `sys`: approvers by group; `bin`: can open the socket but is no approver.
pub const DAEMON: u32 = 1;
pub const BIN: u32 = 2;
pub const SYS: u32 = 3;

pub struct Gate {
    pub server: McpServer,
    pub scenario: Scenario,
    pub config: PathBuf,
    pub socket: PathBuf,
}

impl Gate {
    /// The test server (stateless, JSON) and an agent config holding `shell_*` calls;
    /// `approval` is added to `[approval]`, `more` appended after it.
    pub fn new(approval: &str, more: &str) -> Self {
        Self::with_server("json", approval, more)
    }

    /// [`Gate::new`] with the test server answering as `response` (`json` or `sse`).
    pub fn with_server(response: &str, approval: &str, more: &str) -> Self {
        let server = McpServer::start("stateless", response);
        let scenario = Scenario::new();
        // Other uids must reach the socket below the scenario's private temp dir.
        std::fs::set_permissions(scenario.dir.path(), std::fs::Permissions::from_mode(0o711))
            .unwrap();
        let policies = scenario.dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join("10-approve.toml"), APPROVE_SHELL).unwrap();
        let socket = scenario.dir.path().join("admin/approvals.sock");
        let config = scenario.config_with(
            &[server.port],
            &format!(
                "\n[policy]\ndir = \"{}\"\n\n[approval]\nsocket = \"{}\"\nsocket_group = \"{}\"\n{approval}\n\
                 [approval.approvers]\nusers = [\"root\"]\ngroups = [\"{}\"]\n{more}\n",
                policies.display(),
                socket.display(),
                APPROVERS.0,
                APPROVERS.0,
            ),
        );
        Self {
            server,
            scenario,
            config,
            socket,
        }
    }

    pub fn start(&self) -> Agent {
        self.scenario.start_agent(&self.config)
    }

    /// The SDK client calling `tool` with `arguments` in the intercepted cgroup (running).
    pub fn spawn_call(&self, mode: &str, tool: &str, arguments: &str) -> Child {
        let client = workspace().join("tests/mcp/approval_client.py");
        let (python, client, url) = (
            python().display().to_string(),
            client.display().to_string(),
            self.server.url(),
        );
        self.scenario
            .spawn_in_cgroup(&[&python, &client, &url, mode, tool, arguments])
    }

    /// The TypeScript SDK's client (tests/mcp/node/approval_client.mjs), running.
    pub fn spawn_node_call(&self, tool: &str, arguments: &str) -> Child {
        let client = workspace().join("tests/mcp/node/approval_client.mjs");
        let (node, client, url) = (
            crate::support::oidc::node().display().to_string(),
            client.display().to_string(),
            self.server.url(),
        );
        self.scenario
            .spawn_in_cgroup(&[&node, &client, &url, tool, arguments])
    }

    pub fn call(&self, mode: &str, tool: &str, arguments: &str) -> Value {
        result(self.spawn_call(mode, tool, arguments))
    }

    /// `gateway-agent approvals ARGS` as root (`as_uid` None) or as `uid` with gid `gid`
    /// and the supplementary `groups`.
    pub fn cli(&self, as_uid: Option<(u32, u32, &str)>, args: &[&str]) -> Output {
        let mut cmd = match as_uid {
            Some((uid, gid, groups)) => {
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    if groups.is_empty() {
                        "--clear-groups".to_owned()
                    } else {
                        format!("--groups={groups}")
                    },
                ])
                .arg(AGENT);
                cmd
            }
            None => Command::new(AGENT),
        };
        cmd.arg("approvals")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run gateway-agent approvals")
    }

    pub fn approve_as(&self, uid: u32, id: &str) -> Output {
        self.cli(Some((uid, APPROVERS.1, "")), &["approve", id])
    }

    pub fn list(&self) -> Vec<Value> {
        let out = self.cli(None, &["list", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn state(&self, id: &str) -> String {
        let out = self.cli(None, &["show", id]);
        assert!(out.status.success(), "{}", stderr(&out));
        let approval: Value = serde_json::from_slice(&out.stdout).unwrap();
        approval["state"].as_str().unwrap().to_owned()
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
pub fn refused(out: &Output, why: &str) {
    assert!(!out.status.success(), "expected a refusal ({why})");
    assert!(stderr(out).contains(why), "{}", stderr(out));
}

#[track_caller]
pub fn accepted(out: &Output) {
    assert!(out.status.success(), "{}", stderr(out));
}

/// The client's one JSON line (it exits when its call is answered).
pub fn result(child: Child) -> Value {
    let out = child.wait_with_output().expect("wait for the MCP client");
    assert!(out.status.success(), "MCP client failed");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "client printed no JSON ({err}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The id of the next "approval requested" log line not in `seen`.
pub fn requested(agent: &Agent, seen: &[&str]) -> String {
    let line = agent.wait_for("approval requested", |l| {
        !seen.contains(&l["id"].as_str().unwrap_or(""))
    });
    line["id"].as_str().unwrap().to_owned()
}

pub fn text(result: &Value) -> String {
    result["text"][0].as_str().unwrap_or("").to_owned()
}

/// The pending answer's approval id.
pub fn pending_id(result: &Value) -> String {
    let text = text(result);
    assert_eq!(result["isError"], true, "{result}");
    let id = text
        .strip_prefix("approval pending: ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("not a pending answer: {text}"));
    assert!(text.contains("retry the same call"), "{text}");
    id.to_owned()
}
