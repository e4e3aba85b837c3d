use serde_json::json;

use super::*;
use crate::process::ProcessIdentity;

fn principal(user: &str, uid: u32, comm: &str) -> Principal {
    Principal {
        process: Some(ProcessIdentity {
            pid: 42,
            tid: 42,
            uid,
            gid: uid,
            comm: comm.into(),
            cgroup_id: 7,
            user: Some(user.into()),
            exe: Some(format!("/usr/bin/{comm}").into()),
            cgroup: Some("/system.slice/agent.service".into()),
        }),
        token: None,
    }
}

fn server() -> ServerRef<'static> {
    ServerRef {
        addr: "127.0.0.1:8000".parse().unwrap(),
        name: Some("github-mcp"),
    }
}

fn call<'a>(p: &'a Principal, tool: &'a str, args: Option<&'a Value>) -> RequestFacts<'a> {
    RequestFacts {
        server: server(),
        method: "tools/call",
        tool: Some(tool),
        arguments: args,
        principal: p,
    }
}

fn rule_id(decision: &Decision) -> Option<&str> {
    match decision {
        Decision::Allow { rule, .. } => rule.as_deref(),
        Decision::Deny { rule, .. } | Decision::Approve { rule, .. } => Some(rule),
    }
}

#[test]
fn shipped_policies_load() {
    let default = PolicySet::parse(DEFAULT_POLICY, "default").unwrap();
    assert!(default.is_empty());
    let examples =
        PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/examples"))
            .unwrap();
    assert_eq!(examples.len(), 4);
}

#[test]
fn first_match_wins_within_and_across_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("20-later.toml"),
        "[[rule]]\nid = \"allow-all\"\naction = \"allow\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("10-first.toml"),
        r#"
[[rule]]
id = "deny-exec"
action = "deny"
reason = "no"
[rule.match]
tool = ["exec"]
[[rule]]
id = "approve-exec"
action = "approve"
reason = "never reached"
[rule.match]
tool = ["exec"]
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    let p = principal("alice", 1000, "python3");
    assert_eq!(
        rule_id(&set.evaluate(&call(&p, "exec", None))),
        Some("deny-exec")
    );
    assert_eq!(
        rule_id(&set.evaluate(&call(&p, "echo", None))),
        Some("allow-all")
    );
}

#[test]
fn each_condition_type_matches() {
    let set = PolicySet::parse(
        r#"
[defaults]
action = "deny"
reason = "default deny"
[[rule]]
id = "by-server-name"
action = "allow"
[rule.match]
server = ["github-mcp"]
method = ["resources/*"]
[[rule]]
id = "by-addr-and-user"
action = "allow"
[rule.match]
server = ["127.0.0.1:*"]
user = ["alice"]
uid = [1000]
comm = ["python*"]
exe = ["/usr/bin/*"]
cgroup = ["/system.slice/*"]
[[rule]]
id = "by-argument"
action = "allow"
[rule.match]
tool = ["read_file"]
[[rule.match.argument]]
pointer = "/limit"
regex = "^[0-9]{1,2}$"
"#,
        "t.toml",
    )
    .unwrap();
    let alice = principal("alice", 1000, "python3");
    let bob = principal("bob", 1001, "python3");
    let list = |p| RequestFacts {
        server: server(),
        method: "resources/list",
        tool: None,
        arguments: None,
        principal: p,
    };
    assert_eq!(rule_id(&set.evaluate(&list(&bob))), Some("by-server-name"));
    assert_eq!(
        rule_id(&set.evaluate(&call(&alice, "anything", None))),
        Some("by-addr-and-user")
    );
    assert!(matches!(
        set.evaluate(&call(&bob, "anything", None)),
        Decision::Deny { .. }
    ));
    let small = json!({"limit": 10});
    let large = json!({"limit": 1000});
    assert_eq!(
        rule_id(&set.evaluate(&call(&bob, "read_file", Some(&small)))),
        Some("by-argument")
    );
    assert!(matches!(
        set.evaluate(&call(&bob, "read_file", Some(&large))),
        Decision::Deny { .. }
    ));
    // A missing pointer does not match.
    assert!(matches!(
        set.evaluate(&call(&bob, "read_file", Some(&json!({})))),
        Decision::Deny { .. }
    ));
}

#[test]
fn unknown_process_never_matches_identity_conditions() {
    let set = PolicySet::parse("[defaults]\naction = \"deny\"\n[[rule]]\nid = \"root-only\"\naction = \"allow\"\n[rule.match]\nuid = [0]\n", "t").unwrap();
    let anonymous = Principal::default();
    assert!(matches!(
        set.evaluate(&call(&anonymous, "x", None)),
        Decision::Deny { .. }
    ));
    assert!(matches!(
        set.evaluate(&call(&principal("root", 0, "sh"), "x", None)),
        Decision::Allow { .. }
    ));
}

#[test]
fn claims_and_groups_match_token_principals() {
    let set = PolicySet::parse(
        r#"
[[rule]]
id = "admins"
action = "deny"
reason = "x"
[rule.match]
group = ["admins"]
claim = { email = "*@example.com" }
"#,
        "t",
    )
    .unwrap();
    let mut p = Principal {
        process: None,
        token: Some(crate::principal::TokenClaims {
            email: Some("ana@example.com".into()),
            groups: vec!["admins".into()],
            ..Default::default()
        }),
    };
    assert!(matches!(
        set.evaluate(&call(&p, "x", None)),
        Decision::Deny { .. }
    ));
    p.token.as_mut().unwrap().email = Some("ana@elsewhere.org".into());
    assert!(matches!(
        set.evaluate(&call(&p, "x", None)),
        Decision::Allow { .. }
    ));
}

#[test]
fn tool_visibility() {
    let set = PolicySet::parse(
        r#"
[[rule]]
id = "deny-shell"
action = "deny"
reason = "x"
[rule.match]
tool = ["shell*"]
[[rule]]
id = "deny-etc"
action = "deny"
reason = "x"
[rule.match]
tool = ["read_file"]
[[rule.match.argument]]
pointer = "/path"
regex = "^/etc"
[[rule]]
id = "approve-delete"
action = "approve"
reason = "x"
[rule.match]
tool = ["delete"]
[[rule]]
id = "bob-no-echo"
action = "deny"
reason = "x"
[rule.match]
tool = ["echo"]
user = ["bob"]
"#,
        "t",
    )
    .unwrap();
    let alice = principal("alice", 1000, "python3");
    assert!(set.tool_hidden(&server(), "shell_exec", &alice));
    assert!(!set.tool_hidden(&server(), "read_file", &alice));
    assert!(!set.tool_hidden(&server(), "delete", &alice));
    assert!(!set.tool_hidden(&server(), "echo", &alice));
    assert!(set.tool_hidden(&server(), "echo", &principal("bob", 1001, "sh")));
}

#[test]
fn validation_errors_name_file_rule_and_key() {
    let cases = [
        (
            "[[rule]]\nid = \"a\"\naction = \"deny\"\n",
            "rule \"a\": reason",
        ),
        ("[[rule]]\nid = \"a\"\naction = \"explode\"\n", "explode"),
        (
            "[[rule]]\nid = \"a\"\naction = \"allow\"\nbogus = 1\n",
            "bogus",
        ),
        (
            "[[rule]]\nid = \"a\"\naction = \"allow\"\n[rule.match]\ntool = []\n",
            "match.tool",
        ),
        (
            "[[rule]]\nid = \"a\"\naction = \"allow\"\n[[rule.match.argument]]\npointer = \"x\"\nregex = \".\"\n",
            "match.argument[0].pointer",
        ),
        (
            "[[rule]]\nid = \"a\"\naction = \"allow\"\n[[rule.match.argument]]\npointer = \"/x\"\nregex = \"(\"\n",
            "match.argument[0].regex",
        ),
        (
            "[[rule]]\nid = \"a\"\naction = \"allow\"\nmask = \"loud\"\n",
            "mask",
        ),
        (
            "[[rule]]\nid = \"a\"\naction = \"allow\"\n[[rule]]\nid = \"a\"\naction = \"allow\"\n",
            "already used",
        ),
        ("[[rule]]\nid = \"\"\naction = \"allow\"\n", "rule #1: id"),
    ];
    for (text, expected) in cases {
        let err = PolicySet::parse(text, "pol.toml")
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"))
            .to_string();
        assert!(
            err.contains("pol.toml") && err.contains(expected),
            "{text}\n→ {err}"
        );
    }
}

#[test]
fn defaults_only_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "[defaults]\naction = \"allow\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.toml"), "[defaults]\naction = \"deny\"\n").unwrap();
    let err = PolicySet::load_dir(dir.path()).err().unwrap().to_string();
    assert!(err.contains("b.toml") && err.contains("a.toml"), "{err}");
    let err = PolicySet::load_dir(Path::new("/nonexistent/policies"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/nonexistent/policies"), "{err}");
}
