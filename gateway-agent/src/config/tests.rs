use super::*;

const MINIMAL: &str = r#"
[intercept]
ports = [18080]
listen = "127.0.0.1:15001"
"#;

fn problem(text: &str) -> String {
    Config::parse(text, "test.toml").unwrap_err().to_string()
}

#[test]
fn embedded_default_is_valid() {
    let config = Config::load(None).expect("embedded default config must validate");
    assert!(!config.intercept.ports.is_empty());
    // The demo config gives the host its direct path back on Ctrl-C.
    assert_eq!(config.intercept.on_exit, OnExit::Detach);
}

#[test]
fn a_written_config_keeps_its_pins_unless_it_says_otherwise() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    assert_eq!(config.intercept.on_exit, OnExit::Keep);
    let config = Config::parse(&format!("{MINIMAL}on_exit = \"detach\"\n"), "t").unwrap();
    assert_eq!(config.intercept.on_exit, OnExit::Detach);
    let msg = problem(&format!("{MINIMAL}on_exit = \"forget\"\n"));
    assert!(msg.contains("on_exit") || msg.contains("forget"), "{msg}");
}

#[test]
fn minimal_config_gets_defaults() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    assert_eq!(config.listen6().to_string(), "[::1]:15001");
    assert_eq!(
        config.intercept.pin_dir,
        PathBuf::from("/sys/fs/bpf/gateway-agent")
    );
    assert_eq!(config.proxy.connect_timeout_ms, 5_000);
    assert!(config.intercept.cgroup.is_none());
}

#[test]
fn unknown_key_is_named() {
    let msg = problem(&format!("{MINIMAL}\nportz = 1\n"));
    assert!(msg.contains("test.toml") && msg.contains("portz"), "{msg}");
}

#[test]
fn wrong_type_is_named() {
    let msg = problem("[intercept]\nports = \"18080\"\nlisten = \"127.0.0.1:15001\"\n");
    assert!(msg.contains("ports"), "{msg}");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("ports = []", "intercept.ports"),
        ("ports = [0]", "intercept.ports"),
        ("ports = [15001]", "the agent's own listener port"),
    ];
    for (ports, expected) in cases {
        let msg = problem(&format!(
            "[intercept]\n{ports}\nlisten = \"127.0.0.1:15001\"\n"
        ));
        assert!(msg.contains(expected), "{ports}: {msg}");
    }
    let msg = problem("[intercept]\nports = [1]\nlisten = \"[::1]:15001\"\n");
    assert!(msg.contains("intercept.listen:"), "{msg}");
    let msg = problem(&format!("{MINIMAL}cgroup = \"relative/path\"\n"));
    assert!(msg.contains("intercept.cgroup"), "{msg}");
    let msg = problem(&format!("{MINIMAL}listen6 = \"127.0.0.1:1\"\n"));
    assert!(msg.contains("intercept.listen6"), "{msg}");
}

#[test]
fn servers_are_named_by_address_and_checked() {
    let config = Config::parse(
        &format!("{MINIMAL}\n[[server]]\nname = \"billing\"\naddr = \"127.0.0.1:8000\"\n"),
        "t",
    )
    .unwrap();
    assert_eq!(
        config.server_name("127.0.0.1:8000".parse().unwrap()),
        Some("billing")
    );
    assert_eq!(config.server_name("127.0.0.1:8001".parse().unwrap()), None);
    let twice = format!(
        "{MINIMAL}\n[[server]]\nname = \"a\"\naddr = \"127.0.0.1:1\"\n[[server]]\nname = \"a\"\naddr = \"127.0.0.1:2\"\n"
    );
    assert!(problem(&twice).contains("twice"));
}

#[test]
fn token_modes_need_an_issuer() {
    let msg = problem(&format!("{MINIMAL}\n[identity]\nmode = \"require\"\n"));
    assert!(
        msg.contains("identity.mode") && msg.contains("no [[identity.issuer]]"),
        "{msg}"
    );
    let msg = problem(&format!(
        "{MINIMAL}\n[[server]]\nname = \"vault\"\naddr = \"127.0.0.1:18080\"\nauth = \"optional\"\n"
    ));
    assert!(
        msg.contains("server.auth") && msg.contains("vault"),
        "{msg}"
    );
    let msg = problem(&format!("{MINIMAL}\n[identity]\nmode = \"sometimes\"\n"));
    assert!(msg.contains("sometimes"), "{msg}");
}

#[test]
fn identity_and_audit_default_to_local_and_on() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    assert_eq!(config.identity.mode, AuthMode::Local);
    assert!(config.audit.enabled);
    assert_eq!(
        config.audit.dir,
        PathBuf::from("/var/lib/gateway-agent/audit")
    );
}

#[test]
fn audit_ship_is_optional_and_checked_up_front() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    assert!(config.audit.ship.is_none());
    let ship = format!(
        "{MINIMAL}\n[audit.ship]\nbucket = \"fleet\"\nhost = \"web-1\"\nretain_days = 30\nlock_mode = \"compliance\"\n"
    );
    let config = Config::parse(&ship, "test.toml").unwrap();
    let ship = config.audit.ship.expect("[audit.ship] parsed");
    assert_eq!(ship.bucket, "fleet");
    assert_eq!(ship.retain_days, Some(30));
    let msg = problem(&format!(
        "{MINIMAL}\n[audit.ship]\nbucket = \"fleet\"\nhost = \"web 1\"\n"
    ));
    assert!(msg.contains("audit.ship") && msg.contains("host"), "{msg}");
}

#[test]
fn max_tracked_connections_defaults_to_the_map_size_and_is_bounded() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    assert_eq!(config.intercept.max_tracked_connections, 65_536);
    let config = Config::parse(&format!("{MINIMAL}max_tracked_connections = 16\n"), "t").unwrap();
    assert_eq!(config.intercept.max_tracked_connections, 16);
    for bad in [0, 15, MAX_TRACKED_CONNECTIONS + 1] {
        let msg = problem(&format!("{MINIMAL}max_tracked_connections = {bad}\n"));
        assert!(msg.contains("intercept.max_tracked_connections"), "{msg}");
    }
}

#[test]
fn listen_backlog_defaults_above_the_rust_default_and_is_bounded() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    assert_eq!(config.proxy.listen_backlog, 4096);
    for bad in [0, 65_536] {
        let msg = problem(&format!("{MINIMAL}\n[proxy]\nlisten_backlog = {bad}\n"));
        assert!(msg.contains("proxy.listen_backlog"), "{msg}");
    }
}

#[test]
fn data_path_threads_default_to_the_usable_cpus_up_to_four_and_are_bounded() {
    let config = Config::parse(MINIMAL, "test.toml").unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(config.proxy.data_path_threads(), cpus.min(4));
    let config = Config::parse(&format!("{MINIMAL}\n[proxy]\nthreads = 3\n"), "t").unwrap();
    assert_eq!(config.proxy.data_path_threads(), 3);
    for bad in [0, 1025] {
        let msg = problem(&format!("{MINIMAL}\n[proxy]\nthreads = {bad}\n"));
        assert!(msg.contains("proxy.threads"), "{msg}");
    }
}

#[test]
fn stream_holdback_is_per_server_with_a_global_default() {
    let text = format!(
        "{MINIMAL}\n[mask]\nstream_holdback = \"100ms\"\n\n\
         [[server]]\nname = \"logs\"\naddr = \"127.0.0.1:8000\"\nmask.stream_holdback = \"2KiB\"\n\n\
         [[server]]\nname = \"plain\"\naddr = \"127.0.0.1:8001\"\n"
    );
    let config = Config::parse(&text, "t").unwrap();
    let table = crate::servers::ServerTable::load(&config).unwrap();
    let of = |addr: &str| table.get(addr.parse().unwrap()).stream_holdback;
    assert_eq!(of("127.0.0.1:8000").map(|h| h.window), Some(2048));
    let inherited = of("127.0.0.1:8001").expect("the [mask] default");
    assert_eq!(inherited.wait, std::time::Duration::from_millis(100));
    assert_eq!(
        of("127.0.0.1:9999"),
        Some(inherited),
        "unconfigured servers too"
    );
    assert_eq!(
        crate::servers::ServerTable::load(&Config::parse(MINIMAL, "t").unwrap())
            .unwrap()
            .get("127.0.0.1:8000".parse().unwrap())
            .stream_holdback,
        None,
        "off by default"
    );
    let msg = problem(&format!("{MINIMAL}\n[mask]\nstream_holdback = \"1h\"\n"));
    assert!(
        msg.contains("stream_holdback") && msg.contains("unknown unit"),
        "{msg}"
    );
}
