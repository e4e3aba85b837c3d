use serde_json::json;

use super::*;
use crate::{
    principal::{Principal, TokenClaims},
    process::ProcessIdentity,
};

mod files;

fn process(user: &str, uid: u32, comm: &str) -> Principal {
    Principal::from_process(ProcessIdentity {
        pid: 42,
        tid: 42,
        uid,
        gid: uid + 1,
        comm: comm.into(),
        cgroup_id: 7,
        user: Some(user.into()),
        exe: Some(format!("/usr/bin/{comm}").into()),
        cgroup: Some(format!("/system.slice/{user}.service")),
        unit: Some(format!("{user}.service")),
        container: None,
    })
}

fn alice() -> Principal {
    process("alice", 1000, "python3")
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

fn policy(text: &str) -> PolicySet {
    PolicySet::parse(text, "test.toml").unwrap_or_else(|err| panic!("{err}"))
}

/// One allow rule with `conditions` under a default deny: does `request` match them?
fn matches(conditions: &str, request: &RequestFacts<'_>) -> bool {
    let set = policy(&format!(
        "[defaults]\naction = \"deny\"\nreason = \"no\"\n[[rule]]\nid = \"r\"\naction = \"allow\"\n[rule.match]\n{conditions}\n"
    ));
    set.evaluate(request).rule() == Some("r")
}

#[test]
fn first_match_wins_within_a_file() {
    let set = policy(
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
[[rule]]
id = "allow-all"
action = "allow"
"#,
    );
    let p = alice();
    assert_eq!(
        set.evaluate(&call(&p, "exec", None)).rule(),
        Some("deny-exec")
    );
    assert_eq!(
        set.evaluate(&call(&p, "echo", None)).rule(),
        Some("allow-all")
    );
}

#[test]
fn server_by_address_port_and_name() {
    let p = alice();
    let to = |addr: &str, name: Option<&'static str>| RequestFacts {
        server: ServerRef {
            addr: addr.parse().unwrap(),
            name,
        },
        ..call(&p, "t", None)
    };
    let by_addr = r#"server = ["127.0.0.1:8000"]"#;
    assert!(matches(by_addr, &to("127.0.0.1:8000", None)));
    assert!(!matches(by_addr, &to("127.0.0.1:8001", None)));
    // The same socket dialled as a v4-mapped IPv6 address.
    assert!(matches(by_addr, &to("[::ffff:127.0.0.1]:8000", None)));
    assert!(matches(
        r#"server = ["[::ffff:127.0.0.1]:8000"]"#,
        &to("127.0.0.1:8000", None)
    ));
    assert!(matches(
        r#"server = ["[::1]:8000"]"#,
        &to("[::1]:8000", None)
    ));
    assert!(matches(
        r#"server = ["10.0.0.5:*"]"#,
        &to("10.0.0.5:9", None)
    ));
    assert!(matches(r#"server = ["[::1]:*"]"#, &to("[::1]:9", None)));
    assert!(!matches(
        r#"server = ["10.0.0.5:*"]"#,
        &to("10.0.0.6:9", None)
    ));
    assert!(matches(
        r#"server = ["*:3001"]"#,
        &to("10.9.9.9:3001", None)
    ));
    let by_name = r#"server = ["github-*"]"#;
    assert!(matches(by_name, &to("10.0.0.1:443", Some("github-mcp"))));
    assert!(!matches(by_name, &to("10.0.0.1:443", Some("gitlab-mcp"))));
    assert!(!matches(by_name, &to("10.0.0.1:443", None)));
    assert!(matches(
        r#"server = ["gitlab", "127.0.0.1:8000"]"#,
        &to("127.0.0.1:8000", None)
    ));
}

#[test]
fn method_and_tool_globs() {
    let p = alice();
    let list = RequestFacts {
        method: "tools/list",
        tool: None,
        ..call(&p, "x", None)
    };
    assert!(matches(r#"method = ["tools/*"]"#, &list));
    assert!(!matches(r#"method = ["resources/*"]"#, &list));
    assert!(matches(r#"method = ["initialize", "tools/list"]"#, &list));
    // A tool condition never matches a request without a tool.
    assert!(!matches(r#"tool = ["*"]"#, &list));
    let tools = r#"tool = ["shell_*", "exec", "{read,write}_file", "db_[a-c]*"]"#;
    for yes in [
        "shell_exec",
        "shell_",
        "exec",
        "read_file",
        "write_file",
        "db_alpha",
    ] {
        assert!(matches(tools, &call(&p, yes, None)), "{yes}");
    }
    for no in ["myshell_exec", "Exec", "exec2", "list_file", "db_delta", ""] {
        assert!(!matches(tools, &call(&p, no, None)), "{no}");
    }
    // `*` crosses any character, so a name cannot hide behind a newline or a slash.
    assert!(matches(tools, &call(&p, "shell_\nrm -rf /", None)));
    assert!(matches(tools, &call(&p, "shell_a/b", None)));
}

#[test]
fn process_conditions() {
    let p = alice(); // uid 1000, gid 1001, python3, /usr/bin/python3, /system.slice/alice.service
    let cases = [
        (r#"user = ["alice", "bob"]"#, true),
        (r#"user = ["bob"]"#, false),
        ("uid = [0, 1000]", true),
        ("uid = [0]", false),
        ("gid = [1001]", true),
        ("gid = [1000]", false),
        (r#"comm = ["python*"]"#, true),
        (r#"comm = ["node"]"#, false),
        (r#"exe = ["/usr/bin/*"]"#, true),
        (r#"exe = ["/opt/*"]"#, false),
        (r#"cgroup = ["/system.slice/*.service"]"#, true),
        (r#"cgroup = ["/user.slice/*"]"#, false),
        (r#"unit = ["alice.service"]"#, true),
        (r#"unit = ["bob.service"]"#, false),
        (r#"container = ["*"]"#, false),
        (
            "user = [\"alice\"]\nuid = [1000]\ncomm = [\"python3\"]",
            true,
        ),
        ("user = [\"alice\"]\nuid = [0]", false),
    ];
    for (conditions, expected) in cases {
        assert_eq!(
            matches(conditions, &call(&p, "t", None)),
            expected,
            "{conditions}"
        );
    }
}

#[test]
fn unknown_process_fails_closed() {
    let anonymous = Principal::default();
    for conditions in [
        "uid = [1000]",
        "gid = [1000]",
        r#"user = ["*"]"#,
        r#"comm = ["*"]"#,
        r#"exe = ["*"]"#,
        r#"cgroup = ["*"]"#,
    ] {
        assert!(
            !matches(conditions, &call(&anonymous, "t", None)),
            "{conditions}"
        );
    }
    // Known process, unresolved details: still no match.
    let mut p = alice();
    let process = std::sync::Arc::make_mut(p.process.as_mut().unwrap());
    (process.user, process.exe, process.cgroup) = (None, None, None);
    for conditions in [r#"user = ["*"]"#, r#"exe = ["*"]"#, r#"cgroup = ["*"]"#] {
        assert!(!matches(conditions, &call(&p, "t", None)), "{conditions}");
    }
    assert!(matches("uid = [1000]", &call(&p, "t", None)));
}

#[test]
fn groups_and_claims_need_a_token() {
    let mut p = alice();
    let conditions = r#"group = ["admins", "sre-*"]
claim = { email = "*@example.com", scope = ["mcp:write"], tenant = "acme" }"#;
    assert!(!matches(conditions, &call(&p, "t", None)));
    p.token = Some(TokenClaims {
        issuer: "https://idp.example.com".into(),
        subject: "u-1".into(),
        email: Some("ana@example.com".into()),
        groups: vec!["staff".into(), "sre-oncall".into()],
        scopes: vec!["openid".into(), "mcp:write".into()],
        extra: json!({"tenant": "acme"}).as_object().unwrap().clone(),
        ..Default::default()
    });
    assert!(matches(conditions, &call(&p, "t", None)));
    p.token.as_mut().unwrap().email = Some("ana@elsewhere.org".into());
    assert!(!matches(conditions, &call(&p, "t", None)));
    let token = p.token.as_mut().unwrap();
    token.email = Some("ana@example.com".into());
    token.groups = vec!["staff".into()];
    assert!(!matches(conditions, &call(&p, "t", None)));
    assert!(matches(
        r#"claim = { iss = "https://idp.example.com" }"#,
        &call(&p, "t", None)
    ));
}

#[test]
fn argument_conditions() {
    let p = alice();
    let path = "[[rule.match.argument]]\npointer = \"/path\"\nregex = \"^/srv/\"";
    let decide = |conditions: &str, args: Value| matches(conditions, &call(&p, "t", Some(&args)));
    assert!(decide(path, json!({"path": "/srv/data"})));
    assert!(!decide(path, json!({"path": "/etc/passwd"})));
    // A pointer that does not resolve, or no arguments at all, does not match.
    assert!(!decide(path, json!({"file": "/srv/data"})));
    assert!(!matches(path, &call(&p, "t", None)));
    // Numbers, booleans and structures are matched as their JSON text.
    let limit = "[[rule.match.argument]]\npointer = \"/opts/limit\"\nregex = \"^[0-9]{1,2}$\"";
    assert!(decide(limit, json!({"opts": {"limit": 10}})));
    assert!(!decide(limit, json!({"opts": {"limit": 1000}})));
    assert!(!decide(limit, json!({"opts": {"limit": "10 "}})));
    let flag = "[[rule.match.argument]]\npointer = \"/force\"\nregex = \"^true$\"";
    assert!(decide(flag, json!({"force": true})));
    assert!(!decide(flag, json!({"force": false})));
    let list = "[[rule.match.argument]]\npointer = \"/tags\"\nregex = \"prod\"";
    assert!(decide(list, json!({"tags": ["dev", "prod"]})));
    // Array indexes and RFC 6901 escapes (~1 is '/').
    let escaped = "[[rule.match.argument]]\npointer = \"/a~1b/1\"\nregex = \"^x$\"";
    assert!(decide(escaped, json!({"a/b": ["w", "x"]})));
    // The empty pointer is the whole arguments object.
    let whole = "[[rule.match.argument]]\npointer = \"\"\nregex = \"secret\"";
    assert!(decide(whole, json!({"deep": {"name": "top-secret"}})));
    // Several argument conditions are ANDed.
    let both = format!("{path}\n{flag}");
    assert!(decide(&both, json!({"path": "/srv/x", "force": true})));
    assert!(!decide(&both, json!({"path": "/srv/x", "force": false})));
}

#[test]
fn default_action() {
    let p = alice();
    let denied = policy("[defaults]\naction = \"deny\"\nreason = \"not on the list\"\n");
    assert_eq!(
        denied.evaluate(&call(&p, "t", None)),
        Decision::Deny {
            rule: "[defaults]".into(),
            reason: "not on the list".into()
        }
    );
    let held = policy("[defaults]\naction = \"approve\"\nreason = \"ask first\"\n");
    assert!(matches!(
        held.evaluate(&call(&p, "t", None)),
        Decision::Approve { .. }
    ));
    let unmasked = policy("[defaults]\naction = \"allow\"\nmask = \"none\"\n");
    assert_eq!(
        unmasked.evaluate(&call(&p, "t", None)),
        Decision::Allow {
            rule: None,
            mask: MaskProfile::None
        }
    );
    // No [defaults] anywhere: allow, masked.
    let rules_only = policy(
        "[[rule]]\nid = \"x\"\naction = \"deny\"\nreason = \"r\"\n[rule.match]\ntool = [\"x\"]\n",
    );
    assert_eq!(rules_only.default_decision().rule(), None);
    assert_eq!(
        rules_only.evaluate(&call(&p, "t", None)),
        Decision::Allow {
            rule: None,
            mask: MaskProfile::Default
        }
    );
}

#[test]
fn allow_rules_carry_their_mask_profile() {
    let set = policy("[[rule]]\nid = \"trusted\"\naction = \"allow\"\nmask = \"none\"\n");
    assert_eq!(
        set.evaluate(&call(&alice(), "t", None)),
        Decision::Allow {
            rule: Some("trusted".into()),
            mask: MaskProfile::None
        }
    );
}

#[test]
fn tool_visibility() {
    let set = policy(
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
[[rule]]
id = "small-queries"
action = "allow"
[rule.match]
tool = ["query"]
[[rule.match.argument]]
pointer = "/limit"
regex = "^[0-9]$"
[[rule]]
id = "no-queries"
action = "deny"
reason = "x"
[rule.match]
tool = ["query", "read_file"]
[[rule]]
id = "no-prompts"
action = "deny"
reason = "x"
[rule.match]
method = ["prompts/*"]
"#,
    );
    let a = alice();
    let bob = process("bob", 1001, "sh");
    assert!(set.tool_hidden(&server(), "shell_exec", &a));
    // Denied only for some arguments, then by a later rule: hidden only if every path denies.
    assert!(set.tool_hidden(&server(), "read_file", &a));
    assert!(!set.tool_hidden(&server(), "delete", &a));
    assert!(!set.tool_hidden(&server(), "echo", &a));
    assert!(set.tool_hidden(&server(), "echo", &bob));
    // An allow for some arguments comes first: callable, so visible.
    assert!(!set.tool_hidden(&server(), "query", &a));
    // A rule on another method does not hide tools.
    assert!(!set.tool_hidden(&server(), "anything", &a));

    let only_arguments = policy(
        "[[rule]]\nid = \"d\"\naction = \"deny\"\nreason = \"x\"\n[rule.match]\ntool = [\"read_file\"]\n[[rule.match.argument]]\npointer = \"/path\"\nregex = \"^/etc\"\n",
    );
    assert!(!only_arguments.tool_hidden(&server(), "read_file", &a));
    let default_deny = policy("[defaults]\naction = \"deny\"\nreason = \"x\"\n");
    assert!(default_deny.tool_hidden(&server(), "anything", &a));
}

#[test]
fn decisions_serialize_for_audit() {
    let deny = Decision::Deny {
        rule: "r".into(),
        reason: "why".into(),
    };
    assert_eq!(
        serde_json::to_value(&deny).unwrap(),
        json!({"action": "deny", "rule": "r", "reason": "why"})
    );
    let allow = Decision::Allow {
        rule: None,
        mask: MaskProfile::Default,
    };
    assert_eq!(
        serde_json::to_value(&allow).unwrap(),
        json!({"action": "allow", "rule": null, "mask": "default"})
    );
}

#[test]
fn policy_set_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicySet>();
}
