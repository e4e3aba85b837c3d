//! What a stopped agent leaves behind (`[intercept] on_exit`): the demo config gives the
//! host its direct path back, a service config fails closed until `detach`. Needs root.

mod support;

use std::path::Path;

use support::{HttpServer, Scenario, require_root};

/// The scenario's config with `on_exit = "<value>"` in its `[intercept]` table.
fn config_on_exit(scenario: &Scenario, ports: &[u16], on_exit: Option<&str>) -> std::path::PathBuf {
    let path = scenario.config(ports);
    if let Some(on_exit) = on_exit {
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen(
            "\n[proxy]",
            &format!("on_exit = \"{on_exit}\"\n\n[proxy]"),
            1,
        );
        std::fs::write(&path, text).unwrap();
    }
    path
}

fn pins_left(pins: &Path) -> Vec<String> {
    std::fs::read_dir(pins)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn on_exit_detach_leaves_the_host_as_it_was_after_ctrl_c() {
    if !require_root("on_exit_detach_leaves_the_host_as_it_was_after_ctrl_c") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let config = config_on_exit(&scenario, &[server.port()], Some("detach"));
    let agent = scenario.start_agent(&config);
    agent.wait_for("interception active", |l| l["on_exit"] == "detach");
    let curl = scenario.curl_in_cgroup(&server.url(), None);
    curl.assert_ok();
    agent.wait_for("intercepted connection", |l| l["pid"] == curl.pid);

    // Ctrl-C in a terminal.
    assert!(agent.stop(libc::SIGINT).success());
    assert_eq!(
        pins_left(&scenario.pins.path),
        Vec::<String>::new(),
        "pins left behind"
    );
    // Served directly now: nothing redirects the connect any more.
    let direct = scenario.curl_in_cgroup(&server.url(), None);
    assert!(direct.assert_ok().starts_with("hello from the real server"));
}

#[test]
fn the_embedded_default_config_detaches_on_exit() {
    // `cargo xtask run` runs the agent with the embedded default; `check` reads the same
    // config without attaching anything.
    let out = std::process::Command::new(support::AGENT)
        .arg("check")
        .output()
        .expect("run gateway-agent check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("on exit detach"), "{stdout}");
}

#[test]
fn on_exit_keep_fails_closed_until_detach() {
    if !require_root("on_exit_keep_fails_closed_until_detach") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    // No key: a written config keeps its pins.
    let config = config_on_exit(&scenario, &[server.port()], None);
    let agent = scenario.start_agent(&config);
    agent.wait_for("interception active", |l| l["on_exit"] == "keep");
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();

    assert!(agent.stop(libc::SIGINT).success());
    assert!(!pins_left(&scenario.pins.path).is_empty(), "pins removed");
    let refused = scenario.curl_in_cgroup(&server.url(), None);
    assert_eq!(
        refused.exit_code(),
        7,
        "must be refused while the agent is down"
    );

    let detach = std::process::Command::new(support::AGENT)
        .args(["detach", "--config"])
        .arg(&config)
        .output()
        .expect("run gateway-agent detach");
    assert!(detach.status.success(), "{detach:?}");
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();

    // `run --on-exit detach` overrides the config's keep.
    let agent = support::Agent::spawn_with(&config, &["--on-exit", "detach"]);
    agent.wait_for("interception active", |l| l["on_exit"] == "detach");
    assert!(agent.stop(libc::SIGTERM).success());
    assert_eq!(pins_left(&scenario.pins.path), Vec::<String>::new());
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();
}
