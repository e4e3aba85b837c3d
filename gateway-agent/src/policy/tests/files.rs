//! Loading: the shipped policies, and policy directories (file order, what is read).

use serde_json::json;

use super::*;

#[test]
fn shipped_default_policy_allows_and_masks() {
    let set = PolicySet::parse(DEFAULT_POLICY, "default policy").unwrap();
    assert!(set.is_empty());
    let anyone = Principal::default();
    assert_eq!(
        set.evaluate(&call(&anyone, "shell_exec", None)),
        Decision::Allow {
            rule: None,
            mask: MaskProfile::Default
        }
    );
}

#[test]
fn examples_load_and_behave() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/examples");
    let set = PolicySet::load_dir(&dir).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(set.len(), 14);
    let p = alice();
    let decide = |tool, args: Option<&Value>| set.evaluate(&call(&p, tool, args));
    assert!(matches!(decide("shell_exec", None), Decision::Deny { .. }));
    assert!(matches!(
        decide("repo_delete_branch", None),
        Decision::Approve { .. }
    ));
    assert!(set.tool_hidden(&server(), "run_command", &p));
    assert!(!set.tool_hidden(&server(), "repo_delete_branch", &p));
    // The read-only analytics server: data team may read, nobody may write.
    let analytics = ServerRef {
        addr: "10.0.4.20:8000".parse().unwrap(),
        name: None,
    };
    let mut analyst = alice();
    analyst.token = Some(TokenClaims {
        groups: vec!["data-team".into()],
        ..Default::default()
    });
    assert!(!set.tool_hidden(&analytics, "query_sql", &analyst));
    // The host-wide approval rule comes first (10- before 20-).
    assert!(!set.tool_hidden(&analytics, "drop_table_rows", &analyst));
    assert!(set.tool_hidden(&analytics, "insert_rows", &analyst));
    assert!(set.tool_hidden(&analytics, "query_sql", &p));
    // File tools: only under /srv/shared, no dot segments.
    for (path, rule) in [
        ("/srv/shared/report.csv", "files-under-srv-shared"),
        ("/srv/shared/", "files-under-srv-shared"),
        ("/etc/passwd", "files-elsewhere"),
        ("//srv/shared/x", "files-elsewhere"),
        ("/srv/shared/../../etc/passwd", "files-elsewhere"),
        ("/srv/shared/.ssh/id_ed25519", "files-elsewhere"),
        ("/srv/sharedx/a", "files-elsewhere"),
    ] {
        let args = json!({ "path": path });
        assert_eq!(
            decide("read_file", Some(&args)).rule(),
            Some(rule),
            "{path}"
        );
    }
    assert!(!set.tool_hidden(&server(), "read_file", &p));
    // The deploy server: only the CI runner's service.
    let deploy = ServerRef {
        addr: "127.0.0.1:9100".parse().unwrap(),
        name: Some("deploy-mcp"),
    };
    let mut runner = process("ci", 998, "runner");
    std::sync::Arc::make_mut(runner.process.as_mut().unwrap()).cgroup =
        Some("/system.slice/ci-runner.service".into());
    assert!(set.tool_hidden(&deploy, "deploy", &p));
    assert!(!set.tool_hidden(&deploy, "deploy", &runner));
    let request = RequestFacts {
        server: deploy,
        ..call(&runner, "deploy", None)
    };
    assert_eq!(
        set.evaluate(&request),
        Decision::Allow {
            rule: Some("deploy-from-ci-runner".into()),
            mask: MaskProfile::None
        }
    );
    // Token-to-process binding: the deploy bot's token from its own service only.
    let token = TokenClaims {
        client_id: Some("deploy-bot".into()),
        ..Default::default()
    };
    let mut bot = process("deploy", 990, "deploy-bot");
    bot.token = Some(token.clone());
    let bot_process = std::sync::Arc::make_mut(bot.process.as_mut().unwrap());
    bot_process.unit = Some("deploy-bot.service".into());
    bot_process.exe = Some("/usr/local/bin/deploy-bot".into());
    assert_eq!(
        set.evaluate(&call(&bot, "echo", None)).rule(),
        Some("deploy-bot-from-its-unit")
    );
    let mut thief = alice();
    thief.token = Some(token);
    assert!(matches!(
        set.evaluate(&call(&thief, "echo", None)),
        Decision::Deny { rule, .. } if rule == "deploy-bot-elsewhere"
    ));
}

#[test]
fn first_match_wins_across_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: &str, action: &str| {
        let reason = if action == "allow" {
            ""
        } else {
            "reason = \"r\"\n"
        };
        format!(
            "[[rule]]\nid = \"{id}\"\naction = \"{action}\"\n{reason}[rule.match]\ntool = [\"exec\"]\n"
        )
    };
    // Written in the opposite order to their names: the name decides, not creation.
    std::fs::write(dir.path().join("20-later.toml"), rule("later", "allow")).unwrap();
    std::fs::write(dir.path().join("10-first.toml"), rule("first", "deny")).unwrap();
    // Lexical, not numeric: "9-" sorts after "20-".
    std::fs::write(dir.path().join("9-last.toml"), rule("last", "approve")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    std::fs::write(dir.path().join(".#10-first.toml"), "not toml at all [").unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    assert_eq!(set.len(), 3);
    let p = alice();
    assert_eq!(set.evaluate(&call(&p, "exec", None)).rule(), Some("first"));
    std::fs::remove_file(dir.path().join("10-first.toml")).unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    assert_eq!(set.evaluate(&call(&p, "exec", None)).rule(), Some("later"));
}

#[test]
fn unusable_directories_are_errors() {
    let err = PolicySet::load_dir(Path::new("/nonexistent/policies")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/policies"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no *.toml files"), "{err}");
    std::fs::create_dir(dir.path().join("10-dir.toml")).unwrap();
    let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("10-dir.toml"), "{err}");
}
