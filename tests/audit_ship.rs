//! Fleet shipping end to end: real agents (eBPF interception, real MCP traffic) upload
//! their closed audit files to a real S3-compatible server on loopback (moto's server,
//! which implements the S3 REST API with versioning and object lock); the bucket is read
//! back with boto3 and queried across hosts with DuckDB (tests/audit/s3.py). Needs root
//! and the test virtualenv (`cargo xtask setup`).

mod support;
mod support_s3;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;
use support::{McpServer, Scenario, WAIT, audit_rows, free_port, require_root};
use support_s3::{
    BUCKET, PREFIX, S3Server, closed, endpoint, manifest, s3, s3_json, shipped_keys,
    wait_all_shipped,
};

/// One agent shipping as `host` to `endpoint`: small files (2 rows, or 1 s of quiet), a
/// fast backoff ceiling so an outage test does not wait minutes, credentials from a file.
fn ship_config(scenario: &Scenario, server: &McpServer, host: &str, endpoint: &str) -> PathBuf {
    let creds = scenario.dir.path().join("s3-credentials.toml");
    fs::write(
        &creds,
        "access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n",
    )
    .unwrap();
    let extra = format!(
        "\n[audit]\ndir = \"{dir}\"\n\n[audit.rotation]\nmax_rows = 2\nmax_age_secs = 1\n\n\
         [audit.ship]\nendpoint = \"{endpoint}\"\nbucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\n\
         host = \"{host}\"\ncredentials_file = \"{creds}\"\nretain_days = 1\n\
         max_backoff_secs = 2\nscan_secs = 1\n",
        dir = scenario.audit_dir().display(),
        creds = creds.display(),
    );
    scenario.config_with(&[server.port], &extra)
}

/// Two hosts ship their trails; every closed file is in the bucket once, byte for byte,
/// with object-lock retention; one DuckDB query over the bucket sees both hosts' rows.
#[test]
fn two_hosts_ship_and_one_query_spans_them() {
    if !require_root("two_hosts_ship_and_one_query_spans_them") {
        return;
    }
    let s3_server = S3Server::start(free_port("127.0.0.1"));
    let endpoint = s3_server.endpoint();
    s3(&endpoint, &["create", "lock"]);
    let mcp = McpServer::start("stateful", "json");

    let mut hosts = BTreeMap::new();
    for host in ["alpha", "beta"] {
        let scenario = Scenario::new();
        let config = ship_config(&scenario, &mcp, host, &endpoint);
        let agent = scenario.start_agent(&config);
        mcp.client_in(&scenario, "legacy");
        let files = wait_all_shipped(&scenario.audit_dir(), WAIT);
        assert!(
            files.len() >= 3,
            "expected rotation into several files: {files:?}"
        );
        agent.wait_for("audit file shipped", |_| true);
        assert!(agent.stop(libc::SIGTERM).success());
        hosts.insert(host, scenario);
    }

    let objects = s3_json(&endpoint, &["objects"]);
    let mut expected_rows = BTreeMap::new();
    for (host, scenario) in &hosts {
        let dir = scenario.audit_dir();
        let local = closed(&dir);
        assert_eq!(
            shipped_keys(&objects, host),
            local,
            "{host}: bucket vs disk"
        );
        for file in &local {
            let key = format!("{PREFIX}/host={host}/{file}");
            let object = &objects[&key];
            let bytes = fs::read(dir.join(file)).unwrap();
            assert_eq!(object["size"], bytes.len(), "{key}");
            assert_eq!(object["versions"], 1, "{key} uploaded more than once");
            assert_eq!(object["sha256"].as_str().unwrap().len(), 64, "{key}");
        }
        // Object lock: governance retention about a day out, read back with the S3 API.
        let key = format!("{PREFIX}/host={host}/{}", local[0]);
        let retention = s3_json(&endpoint, &["retention", &key]);
        assert_eq!(retention["mode"], "GOVERNANCE", "{retention}");
        // retain_days = 1: the lock outlasts the day the file was written.
        let until = retention["until"].as_str().unwrap();
        let written = &local[0]["dt=".len().."dt=YYYY-MM-DD".len()];
        assert!(&until[..10] > written, "{retention} vs {written}");
        assert_eq!(retention["delete_refused"], true, "{retention}");
        expected_rows.insert(host.to_string(), audit_rows(&dir).len());
    }

    // One query across the fleet, hive-partitioned by host and day.
    let result = s3_json(&endpoint, &["query", PREFIX]);
    let got: BTreeMap<String, usize> = result
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_owned(),
                r["rows"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    assert_eq!(got, expected_rows, "{result}");
    assert!(expected_rows.values().all(|&n| n > 0));

    // README's fleet query, as printed there, over the same bucket: both hosts handed the
    // test server's planted secrets to the client, masked, and the rows say who asked.
    let work = tempfile::tempdir().unwrap();
    let sql_path = work.path().join("readme.sql");
    fs::write(&sql_path, readme_fleet_query()).unwrap();
    let rows = s3_json(&endpoint, &["readme", PREFIX, sql_path.to_str().unwrap()]);
    let rows = rows.as_array().unwrap();
    for host in hosts.keys() {
        let mine: Vec<&Value> = rows.iter().filter(|r| r["host"] == *host).collect();
        assert!(!mine.is_empty(), "no masked answer for {host}: {rows:?}");
        assert!(
            mine.iter().all(|r| r["masked_count"].as_u64() > Some(0)
                && r["who"] == "root"
                && r["comm"].as_str().is_some_and(|c| c.starts_with("python"))),
            "{mine:?}"
        );
        // Each answer names the tool it answers.
        assert!(mine.iter().all(|r| r["tool"].is_string()), "{mine:?}");
        assert!(mine.iter().any(|r| r["tool"] == "get_config"), "{mine:?}");
    }

    // `audit verify` over the bucket, each host against its pinned key: intact.
    let keyring = hosts
        .iter()
        .map(|(host, s)| {
            let key = fs::read_to_string(s.audit_dir().join("audit-signing.pub")).unwrap();
            format!("{host} {}\n", key.trim())
        })
        .collect::<String>();
    let work = tempfile::tempdir().unwrap();
    let keyring_path = work.path().join("keyring");
    fs::write(&keyring_path, format!("# fleet keys\n{keyring}")).unwrap();
    let out = verify_s3(&endpoint, &keyring_path);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (host, rows) in &expected_rows {
        let files = closed(&hosts[host.as_str()].audit_dir()).len();
        assert!(
            stdout.contains(&format!("host={host}: {files} files, {rows} rows")),
            "{stdout}"
        );
    }
    assert_eq!(stdout.matches("intact").count(), 2, "{stdout}");
    // A keyring that pins the wrong keys: every file is signed by an unexpected key.
    let swapped = work.path().join("swapped");
    let keys: Vec<&str> = keyring
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    fs::write(&swapped, format!("alpha {}\nbeta {}\n", keys[1], keys[0])).unwrap();
    let out = verify_s3(&endpoint, &swapped);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches("signed by an unexpected key").count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "s3://{BUCKET}/{PREFIX}/host=alpha/{}",
            closed(&hosts["alpha"].audit_dir())[0]
        )),
        "{stdout}"
    );
    // The same over a synced copy of the bucket.
    let copy = work.path().join("copy");
    s3(&endpoint, &["sync", PREFIX, copy.to_str().unwrap()]);
    let out = verify_dir(&copy.join(PREFIX), &keyring_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // One object replaced (alpha's second file by beta's first, signed by beta's key)
    // and one deleted (beta's second): verify fails, naming host and file.
    let alpha = closed(&hosts["alpha"].audit_dir());
    let beta = closed(&hosts["beta"].audit_dir());
    let replaced = format!("{PREFIX}/host=alpha/{}", alpha[1]);
    let beta_first = hosts["beta"].audit_dir().join(&beta[0]);
    s3(
        &endpoint,
        &["replace", &replaced, beta_first.to_str().unwrap()],
    );
    let deleted = format!("{PREFIX}/host=beta/{}", beta[1]);
    s3(&endpoint, &["delete", &deleted]);
    let out = verify_s3(&endpoint, &keyring_path);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    let line = |host: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("host={host}:")))
            .unwrap_or_else(|| panic!("no line for {host}: {stdout}"))
            .to_owned()
    };
    let alpha_line = line("alpha");
    assert!(
        alpha_line.contains("FAILED") && alpha_line.contains(&replaced),
        "{alpha_line}"
    );
    let beta_line = line("beta");
    assert!(
        beta_line.contains("FAILED") && beta_line.contains("gap"),
        "{beta_line}"
    );
    assert!(
        beta_line.contains(&format!("{PREFIX}/host=beta/{}", beta[2])),
        "{beta_line}"
    );
    assert!(
        stderr.contains("alpha") && stderr.contains("beta"),
        "{stderr}"
    );
}

/// The SQL block of README's "Query the fleet" paragraph.
fn readme_fleet_query() -> String {
    let readme = fs::read_to_string(support::workspace().join("README.md")).unwrap();
    let start = readme
        .find("```sql\nCREATE SECRET (TYPE s3")
        .expect("README's fleet query");
    let body = &readme[start + "```sql\n".len()..];
    body[..body.find("```").unwrap()].to_owned()
}

fn verify_s3(endpoint: &str, keyring: &Path) -> Output {
    Command::new(support::AGENT)
        .args([
            "audit",
            "verify",
            "--s3",
            &format!("s3://{BUCKET}/{PREFIX}"),
        ])
        .args(["--endpoint", endpoint, "--region", "us-east-1", "--keyring"])
        .arg(keyring)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(Stdio::null())
        .output()
        .expect("run gateway-agent audit verify --s3")
}

fn verify_dir(dir: &Path, keyring: &Path) -> Output {
    Command::new(support::AGENT)
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .arg("--keyring")
        .arg(keyring)
        .stdin(Stdio::null())
        .output()
        .expect("run gateway-agent audit verify --dir")
}

/// The endpoint is down while files rotate: they queue on disk (logged), ship once it is
/// back, and a restart (after a crash that lost a manifest line) uploads nothing twice.
#[test]
fn outage_queues_files_and_ships_each_once_after() {
    if !require_root("outage_queues_files_and_ships_each_once_after") {
        return;
    }
    let port = free_port("127.0.0.1");
    let endpoint = endpoint(port);
    let mcp = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let dir = scenario.audit_dir();
    let config = ship_config(&scenario, &mcp, "gamma", &endpoint);
    let agent = scenario.start_agent(&config);
    mcp.client_in(&scenario, "legacy");
    let failed = agent.wait_for(
        "audit shipping failed; files stay queued locally and are retried",
        |l| l["backlog"].as_u64().is_some_and(|n| n > 0),
    );
    assert!(
        failed["error"].as_str().unwrap().contains("PUT")
            || failed["error"].as_str().unwrap().contains("HEAD"),
        "{failed}"
    );
    assert!(manifest(&dir).is_empty(), "nothing can be shipped yet");

    let s3_server = S3Server::start(port);
    s3(&endpoint, &["create", "lock"]);
    let files = wait_all_shipped(&dir, WAIT);
    agent.wait_for("audit shipping resumed", |_| true);
    assert!(agent.stop(libc::SIGTERM).success());

    // A crash after the uploads but before they reached the manifest: the manifest loses
    // its last line, and the half-written line of the next is left behind.
    let manifest_path = dir.join("ship-manifest.tsv");
    let text = fs::read_to_string(&manifest_path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let lost = lines.pop().unwrap().split('\t').next().unwrap().to_owned();
    fs::write(&manifest_path, format!("{}\n{lost}\tab", lines.join("\n"))).unwrap();
    assert!(!manifest(&dir).contains(&lost));

    // The restart ships the lost one's record again (the same bytes are already in the
    // bucket: recorded, not re-uploaded) and the new files once each.
    let agent = scenario.start_agent(&config);
    mcp.client_in(&scenario, "legacy");
    let files_after = wait_all_shipped(&dir, WAIT);
    assert!(files_after.len() > files.len());
    assert!(agent.stop(libc::SIGTERM).success());

    let objects = s3_json(&s3_server.endpoint(), &["objects"]);
    assert_eq!(shipped_keys(&objects, "gamma"), files_after);
    for (key, object) in objects.as_object().unwrap() {
        assert_eq!(object["versions"], 1, "{key} uploaded more than once");
    }
}
