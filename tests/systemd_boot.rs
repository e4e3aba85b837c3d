//! The .deb under a real, booted systemd (issue 14, item 3): a Debian bookworm rootfs
//! (debootstrap, cached under target/systemd-boot/, never in the repository) booted with
//! `/lib/systemd/systemd --system` as PID 1 of new PID, mount and cgroup namespaces, on an
//! overlay so every run starts from the same image. Inside: `dpkg -i`, `systemctl enable
//! --now`, a client (a transient unit, so in the intercepted cgroup) served through the
//! agent, `systemctl reload`, kill -9 → refused until systemd restarts it → served,
//! `systemctl stop` → refused, `dpkg --purge` → direct again, and the journal.
//!
//! systemd in a container does not mount /sys/fs/bpf (on a host it does, at boot), so the
//! "container runtime" here provides it, in PID 1's mount namespace, as a pod spec would;
//! without it the unit's `AssertPathIsMountPoint=/sys/fs/bpf` refuses to start.
//!
//! Everything lives in the namespaces `unshare` creates: killing it (on drop, also after a
//! failed assertion) kills systemd and every process inside, which drops the mounts, the
//! bpffs and with it the pins; the test's cgroup is removed afterwards.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use support::{HttpServer, build_package, free_port, require_root, workspace};

const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// The cached rootfs; made on first use (a few minutes, ~200 MB).
fn rootfs() -> PathBuf {
    let dir = workspace().join("target/systemd-boot");
    let rootfs = dir.join("rootfs");
    if rootfs.join("lib/systemd/systemd").exists() {
        return rootfs;
    }
    let partial = dir.join("rootfs.partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=systemd,systemd-sysv,dbus",
            "bookworm",
        ])
        .arg(&partial)
        .arg("http://deb.debian.org/debian")
        .stdout(Stdio::null())
        .status()
        .expect("debootstrap (apt-get install debootstrap)");
    assert!(status.success(), "debootstrap failed");
    std::fs::rename(&partial, &rootfs).unwrap();
    rootfs
}

/// A booted systemd in its own namespaces, with a host directory shared at /mnt.
struct Boot {
    unshare: Child,
    pid1: u32,
    cgroup: PathBuf,
    dir: tempfile::TempDir,
}

impl Boot {
    fn start() -> Self {
        let rootfs = rootfs();
        let dir = tempfile::tempdir().unwrap();
        for sub in ["upper", "work", "merged", "share"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let cgroup = support::cgroup2_root().join(format!("gateway-boot-{}", std::process::id()));
        std::fs::create_dir(&cgroup).unwrap();
        let d = dir.path().display();
        let script = format!(
            "set -e
             echo $$ > {cg}/cgroup.procs
             exec unshare --pid --fork --mount --cgroup --propagation private --kill-child=SIGKILL \
               sh -c 'set -e
                 M={d}/merged
                 mount -t overlay overlay -o lowerdir={root},upperdir={d}/upper,workdir={d}/work $M
                 mount -t proc proc $M/proc
                 mount -t sysfs sysfs $M/sys
                 mount -t cgroup2 cgroup2 $M/sys/fs/cgroup
                 mount -t bpf bpf $M/sys/fs/bpf
                 mount -t tmpfs tmpfs $M/run
                 mount -t tmpfs tmpfs $M/tmp
                 mount --bind {d}/share $M/mnt
                 exec chroot $M /usr/bin/env container=gateway-test /lib/systemd/systemd --system'",
            cg = cgroup.display(),
            root = rootfs.display(),
        );
        let log = std::fs::File::create(dir.path().join("systemd.log")).unwrap();
        let unshare = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn unshare");
        let mut boot = Self {
            pid1: 0,
            unshare,
            cgroup,
            dir,
        };
        boot.pid1 = boot.find_pid1();
        // `--wait` answers "offline" before PID 1 has created /run/systemd/system: poll.
        let out = boot.sh(
            "for i in $(seq 500); do s=$(systemctl is-system-running 2>/dev/null) || true; \
             case $s in running|degraded) echo $s; systemctl --failed --no-pager; exit 0;; esac; \
             sleep 0.2; done; echo $s; systemctl --failed --no-pager",
        );
        let state = String::from_utf8_lossy(&out.stdout);
        assert!(
            state.starts_with("running") || state.starts_with("degraded"),
            "systemd did not boot: {state}\n{}",
            boot.log()
        );
        boot
    }

    /// The host pid of the container's PID 1: unshare's only child.
    fn find_pid1(&self) -> u32 {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let children = format!("/proc/{0}/task/{0}/children", self.unshare.id());
        loop {
            if let Some(pid) = std::fs::read_to_string(&children)
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse().ok())
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe.ends_with("systemd"))
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "no systemd: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("systemd.log")).unwrap_or_default()
    }

    /// Runs `script` inside (all of systemd's namespaces and its root), bounded.
    fn sh(&self, script: &str) -> Output {
        Command::new("timeout")
            .args(["120", "nsenter", "-t", &self.pid1.to_string()])
            .args(["-m", "-p", "-C", "-r", "-w", "--", "/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    #[track_caller]
    fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        if !out.status.success() {
            let status = self.sh(
                "systemctl status gateway-agent --no-pager; journalctl -u gateway-agent --no-pager | tail -40",
            );
            panic!(
                "{script}: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&status.stdout)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An HTTP GET from a transient unit (so inside the intercepted cgroup): stdout and
    /// stderr of bash's /dev/tcp client.
    fn client(&self, port: u16) -> Output {
        self.sh(&format!(
            "systemd-run --quiet --wait --pipe --collect -- /usr/bin/timeout 10 /bin/bash -c \
             'exec 3<>/dev/tcp/127.0.0.1/{port} && printf \"GET / HTTP/1.0\\r\\nHost: t\\r\\n\\r\\n\" >&3 && cat <&3' 2>&1"
        ))
    }

    #[track_caller]
    fn served(&self, port: u16) -> String {
        let out = self.client(port);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("hello from the real server"),
            "not served: {text}\n{}",
            self.journal()
        );
        text
    }

    /// The client cannot reach the server: its connect is refused, or (`kill_race`) reset
    /// when it landed in a listening socket of an agent that was being killed: `systemctl
    /// kill` returns once the signal is sent, and the dying agent's sockets take queued
    /// connections until the kernel closes its descriptors. Either way fail closed.
    #[track_caller]
    fn refused(&self, port: u16, kill_race: bool) {
        let out = self.client(port);
        let text = String::from_utf8_lossy(&out.stdout);
        let failed = text.contains("Connection refused")
            || (kill_race && text.contains("Connection reset by peer"));
        assert!(
            failed && !text.contains("hello from"),
            "not refused: {text}"
        );
    }

    fn journal(&self) -> String {
        String::from_utf8_lossy(
            &self
                .sh("journalctl -u gateway-agent -o json --no-pager")
                .stdout,
        )
        .into_owned()
    }

    /// The agent's own log entries with `message`, from the journal: its event fields are
    /// native journal fields (`--log-format journald`), upper-cased, as strings.
    fn agent_lines(&self, message: &str) -> Vec<serde_json::Value> {
        self.journal()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| entry["MESSAGE"] == message)
            .collect()
    }

    /// Waits (bounded) until the journal has `count` agent lines with `message`.
    #[track_caller]
    fn wait_lines(&self, message: &str, count: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = self.agent_lines(message);
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} {message:?} lines:\n{}",
                self.journal()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[track_caller]
    fn wait_active(&self) {
        self.ok(
            "for i in $(seq 200); do systemctl is-active -q gateway-agent && exit 0; sleep 0.1; done; \
             systemctl status gateway-agent --no-pager; exit 1",
        );
    }
}

impl Drop for Boot {
    fn drop(&mut self) {
        // --kill-child: unshare's death SIGKILLs PID 1, which takes the namespace down.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while remove_cgroup_tree(&self.cgroup).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path())?;
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[test]
fn deb_under_a_booted_systemd() {
    if !require_root("deb_under_a_booted_systemd") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let port = server.port();
    let boot = Boot::start();
    build_package(&boot.dir.path().join("share"));
    let listen = free_port("127.0.0.1");

    // Install; point the config at the test server's port and a free listener port; a
    // slower restart so the kill -9 window can be observed.
    boot.ok("dpkg -i /mnt/gateway-agent_*.deb");
    boot.ok(&format!(
        "sed -i -e 's/^ports = .*/ports = [{port}]/' \
                -e 's/^listen = .*/listen = \"127.0.0.1:{listen}\"/' \
                -e 's/^listen6 = .*/listen6 = \"[::1]:{listen}\"/' /etc/gateway-agent/agent.toml
         mkdir -p /etc/systemd/system/gateway-agent.service.d
         printf '[Service]\\nRestartSec=5\\n' > /etc/systemd/system/gateway-agent.service.d/test.conf
         systemctl daemon-reload"
    ));
    assert!(Path::new(&boot.dir.path().join("upper/var/lib/gateway-agent")).exists());
    boot.ok("systemctl enable --now gateway-agent");
    boot.wait_active();

    // Served through the agent, which runs inside the PID namespace and the attached
    // cgroup (the container's root): exempt by its namespaced pid, no loop.
    boot.served(port);
    let intercepted = boot.wait_lines("intercepted connection", 1);
    assert_eq!(intercepted.len(), 1, "{}", boot.journal());
    let line = &intercepted[0];
    assert_eq!(line["_SYSTEMD_UNIT"], "gateway-agent.service", "{line}");
    assert_eq!(line["COMM"], "bash", "{line}");
    assert!(
        line["EXE"].as_str().unwrap_or("").ends_with("bash"),
        "{line}"
    );
    assert!(
        line["CGROUP"].as_str().unwrap_or("").contains("run-"),
        "a transient unit's cgroup: {line}"
    );

    // reload = SIGHUP: the example policies are read.
    boot.ok(
        "printf '[[rule]]\\nid = \"deny-shell\"\\naction = \"deny\"\\nreason = \"no shells\"\\n[rule.match]\\nmethod = [\"tools/call\"]\\ntool = [\"shell*\"]\\n' \
         > /etc/gateway-agent/policies/50-test.toml && systemctl reload gateway-agent",
    );
    let reloaded = boot.wait_lines("SIGHUP: policy reloaded", 1);
    assert!(
        reloaded[0]["RULES"]
            .as_str()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap()
            > 0,
        "{:?}",
        reloaded[0]
    );

    // Upgrade (the same version re-installed takes the same path: prerm upgrade, postinst
    // configure with the old version): the agent restarts on the new binary, re-using the
    // pins; the audit trail and the edited config stay.
    boot.ok("dpkg -i /mnt/gateway-agent_*.deb");
    let active = boot.wait_lines("interception active", 2);
    assert_eq!(active[1]["REUSED"], "true", "{:?}", active[1]);
    boot.wait_active();
    boot.served(port);
    boot.ok(&format!(
        "grep -q 'ports = \\[{port}\\]' /etc/gateway-agent/agent.toml && test -d /var/lib/gateway-agent/audit"
    ));

    // kill -9: refused (fail closed) until systemd restarts it, then served again with
    // the pins re-used.
    boot.ok("systemctl kill -s KILL gateway-agent");
    boot.refused(port, true);
    boot.wait_active();
    boot.served(port);
    let active = boot.wait_lines("interception active", 3);
    assert_eq!(active.len(), 3, "{}", boot.journal());
    assert_eq!(active[2]["REUSED"], "true", "{:?}", active[2]);

    // stop: fail closed.
    boot.ok("systemctl stop gateway-agent");
    boot.refused(port, false);

    // purge: direct path restored.
    boot.ok("dpkg --purge gateway-agent");
    boot.served(port);
    assert!(
        !boot.ok("ls /sys/fs/bpf").contains("gateway-agent"),
        "pins left after purge"
    );
}
