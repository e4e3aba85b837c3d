//! Validation: every mistake is refused at load, and the message names file, rule and key.

use std::path::Path;

use crate::policy::PolicySet;

fn error(text: &str) -> String {
    match PolicySet::parse(text, "policies/10-tools.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(err) => err.to_string(),
    }
}

const RULE: &str = "[[rule]]\nid = \"r\"\naction = \"deny\"\nreason = \"no\"\n";

#[test]
fn errors_name_file_rule_and_key() {
    let with_match = |conditions: &str| format!("{RULE}[rule.match]\n{conditions}\n");
    let cases = [
        (
            with_match(r#"tool = ["shell_*", "["]"#),
            r#"rule "r": match.tool[1]: invalid glob "[": "#,
        ),
        (
            with_match(r#"method = ["{a,b"]"#),
            r#"rule "r": match.method[0]: invalid glob"#,
        ),
        (
            with_match(r#"user = [""]"#),
            r#"rule "r": match.user[0]: empty pattern"#,
        ),
        (with_match("tool = []"), r#"rule "r": match.tool: is empty"#),
        (with_match("uid = []"), r#"rule "r": match.uid: is empty"#),
        (
            with_match("claim = {}"),
            r#"rule "r": match.claim: is empty"#,
        ),
        (
            with_match("claim = { email = [] }"),
            r#"rule "r": match.claim.email: is empty"#,
        ),
        (
            with_match(r#"claim = { email = "[" }"#),
            r#"rule "r": match.claim.email[0]: invalid glob"#,
        ),
        (
            with_match("argument = []"),
            r#"rule "r": match.argument: is empty"#,
        ),
        (
            with_match(r#"server = ["127.0.0.1:8000", "10.0.0.*:80"]"#),
            r#"rule "r": match.server[1]: "10.0.0.*:80" is neither an address"#,
        ),
        (
            with_match(r#"server = ["127.0.0.1:99999"]"#),
            r#"rule "r": match.server[0]"#,
        ),
        (
            with_match(r#"server = ["git[hub"]"#),
            r#"rule "r": match.server[0]: invalid glob"#,
        ),
        (
            format!("{RULE}[[rule.match.argument]]\npointer = \"path\"\nregex = \".\"\n"),
            r#"rule "r": match.argument[0].pointer: "path" is not a JSON pointer"#,
        ),
        (
            format!("{RULE}[[rule.match.argument]]\npointer = \"/a~2\"\nregex = \".\"\n"),
            r#"rule "r": match.argument[0].pointer: "/a~2""#,
        ),
        (
            format!(
                "{RULE}[[rule.match.argument]]\npointer = \"/a\"\nregex = \".\"\n[[rule.match.argument]]\npointer = \"/b\"\nregex = \"(\"\n"
            ),
            r#"rule "r": match.argument[1].regex: invalid regex "(""#,
        ),
        (
            "[[rule]]\nid = \"r\"\naction = \"explode\"\n".into(),
            r#"rule "r": action: unknown action "explode""#,
        ),
        (
            "[[rule]]\nid = \"r\"\naction = \"deny\"\n".into(),
            r#"rule "r": reason: is required for deny and approve"#,
        ),
        (
            "[[rule]]\nid = \"r\"\naction = \"approve\"\nreason = \" \"\n".into(),
            r#"rule "r": reason: is required"#,
        ),
        (
            "[[rule]]\nid = \"r\"\naction = \"allow\"\nreason = \"because\"\n".into(),
            r#"rule "r": reason: is only returned for deny and approve"#,
        ),
        (
            "[[rule]]\nid = \"r\"\naction = \"allow\"\nmask = \"loud\"\n".into(),
            r#"rule "r": mask: unknown masking profile "loud""#,
        ),
        (
            format!("{RULE}mask = \"none\"\n"),
            r#"rule "r": mask: only applies to allow"#,
        ),
        (
            format!("{RULE}[[rule]]\nid = \"\"\naction = \"allow\"\n"),
            "rule #2: id: \"\": a rule id is required",
        ),
        (
            "[[rule]]\nid = \"no spaces\"\naction = \"allow\"\n".into(),
            "rule #1: id: \"no spaces\"",
        ),
        (
            format!("{RULE}{RULE}"),
            r#"rule "r": id: already used in policies/10-tools.toml"#,
        ),
        (
            "[defaults]\naction = \"deny\"\n".into(),
            "[defaults]: reason: is required",
        ),
        (
            "[defaults]\naction = \"maybe\"\n".into(),
            "[defaults]: action: unknown action",
        ),
        (
            "[defaults]\naction = \"deny\"\nreason = \"r\"\nmask = \"none\"\n".into(),
            "[defaults]: mask: only applies to allow",
        ),
    ];
    for (text, expected) in cases {
        let err = error(&text);
        assert!(
            err.starts_with("policies/10-tools.toml: ") && err.contains(expected),
            "{text}\nexpected: {expected}\n     got: {err}"
        );
    }
}

/// Shape errors come from the TOML parser: they name the file, the key and the line.
#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let cases = [
        (format!("{RULE}bogus = 1\n"), "bogus"),
        (format!("{RULE}[rule.match]\ntol = [\"x\"]\n"), "tol"),
        (format!("{RULE}[rule.match]\ntool = \"x\"\n"), "tool"),
        (format!("{RULE}[rule.match]\nuid = [-1]\n"), "uid"),
        (
            format!("{RULE}[[rule.match.argument]]\npointer = \"/a\"\n"),
            "regex",
        ),
        (
            format!(
                "{RULE}[[rule.match.argument]]\npointer = \"/a\"\nregex = \"x\"\nglob = \"y\"\n"
            ),
            "glob",
        ),
        (
            "[defaults]\naction = \"allow\"\ncolour = \"red\"\n".into(),
            "colour",
        ),
        ("[default]\naction = \"allow\"\n".into(), "default"),
        ("[[rule]]\naction = \"allow\"\n".into(), "id"),
    ];
    for (text, expected) in cases {
        let err = error(&text);
        assert!(
            err.starts_with("policies/10-tools.toml: ") && err.contains(expected),
            "{text}\nexpected: {expected}\n     got: {err}"
        );
    }
}

#[test]
fn duplicates_across_files_name_both() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("10-a.toml", RULE);
    write("20-b.toml", RULE);
    let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
    let (a, b) = (path(dir.path(), "10-a.toml"), path(dir.path(), "20-b.toml"));
    assert!(
        err.starts_with(&format!("{b}: rule \"r\": id: already used in {a}")),
        "{err}"
    );

    write("20-b.toml", "[defaults]\naction = \"allow\"\n");
    write(
        "30-c.toml",
        "[defaults]\naction = \"deny\"\nreason = \"x\"\n",
    );
    let err = PolicySet::load_dir(dir.path()).unwrap_err().to_string();
    let c = path(dir.path(), "30-c.toml");
    assert!(
        err.starts_with(&format!("{c}: [defaults]: already set in {b}")),
        "{err}"
    );
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
