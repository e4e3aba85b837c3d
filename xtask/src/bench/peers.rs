//! `bench --peers`: other proxies in front of the same backend, measured with the same
//! load in the same run, so the agent's cost has a yardstick:
//! - nginx as a plain HTTP/1.1 reverse proxy with upstream keep-alive (Debian's package):
//!   the cost of any L7 hop done well, with no inspection at all;
//! - mitmproxy's `mitmdump` in reverse mode (PyPI, in its own venv under target/bench):
//!   the usual inspecting proxy.
//!
//! Both listen on loopback ports of their own (they are not interception, the client is
//! pointed at them), run as child processes with generated configuration in a temporary
//! directory, and are stopped by PID when dropped.

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::fixture::{self, BoundedChild};
use crate::setup;

/// How long a peer may take to accept connections.
const PEER_READY: Duration = Duration::from_secs(60);
/// How long a peer may take to stop after SIGTERM/SIGQUIT before it is killed.
const PEER_STOP: Duration = Duration::from_secs(10);
/// The mitmproxy release measured (PyPI), installed once into target/bench/mitm-venv.
const MITMPROXY: &str = "mitmproxy==12.3.1";

/// A running peer proxy; stopped on drop.
pub struct Peer {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: BoundedChild,
    /// nginx's workers: children of the master, killed by PID should the master not
    /// take them down itself.
    workers: Vec<i32>,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // nginx: SIGTERM is its fast shutdown (workers too); mitmdump exits on it.
        self.child.signal(Signal::SIGTERM);
        if let Err(err) = self.child.wait_cleanup(PEER_STOP) {
            eprintln!("xtask bench: stopping {}: {err:#}", self.name);
        }
        for &pid in &self.workers {
            if Path::new(&format!("/proc/{pid}")).exists()
                && parent_of(pid) == Some(self.child.id())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces, so split after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Installs what `--peers` needs, skipping what is there: Debian's nginx (the package
/// starts no service in a container with a policy-rc.d; the benchmark runs its own), and
/// mitmproxy in its own venv (its dependency tree must not move the test venv's).
pub fn ensure_installed() -> anyhow::Result<()> {
    if !nginx_binary().exists() {
        setup::run("apt-get", &["update", "-qq"])?;
        setup::run("apt-get", &["install", "-y", "-qq", "nginx"])?;
    }
    let venv = mitm_venv();
    if !venv.join("bin/mitmdump").exists() {
        // `--clear`: a venv left by a failed install (or another Python) is rebuilt.
        let python = python_for_mitmproxy()?;
        setup::run(
            &python,
            &["-m", "venv", "--clear", &venv.display().to_string()],
        )?;
        let pip = venv.join("bin/pip");
        setup::run(&pip.display().to_string(), &["install", "-q", MITMPROXY])?;
    }
    Ok(())
}

/// mitmproxy 12 needs Python 3.12 or later; Debian 12's `python3` is 3.11. A newer
/// interpreter is looked for on PATH by name (a deadsnakes or distribution package), then
/// among pyenv's installed versions (whose shims refuse names the global version lacks).
fn python_for_mitmproxy() -> anyhow::Result<String> {
    let runs = |python: &str| {
        Command::new(python)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if let Some(python) = ["python3.14", "python3.13", "python3.12"]
        .into_iter()
        .find(|python| runs(python))
    {
        return Ok(python.to_owned());
    }
    let pyenv_root = Command::new("pyenv")
        .arg("root")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let newest = pyenv_root
        .and_then(|root| std::fs::read_dir(root.join("versions")).ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?.to_owned();
            let mut parts = name.split('.').map(str::parse::<u32>);
            let version = (parts.next()?.ok()?, parts.next()?.ok()?);
            let python = path.join("bin/python3");
            (version >= (3, 12) && runs(&python.display().to_string()))
                .then(|| (version, python.display().to_string()))
        })
        .max();
    newest.map(|(_, python)| python).ok_or_else(|| {
        anyhow::anyhow!(
            "{MITMPROXY} needs Python 3.12 or later: none on PATH (python3.12…3.14) nor \
             installed by pyenv (Debian 12's python3 is 3.11)"
        )
    })
}

fn nginx_binary() -> PathBuf {
    PathBuf::from("/usr/sbin/nginx")
}

fn mitm_venv() -> PathBuf {
    setup::workspace_root().join("target/bench/mitm-venv")
}

/// nginx on a free loopback port proxying to `backend`: two workers (one per core, as
/// `auto` would pick here), upstream keep-alive, no access log, and no cap on requests
/// per connection (its default closes a client connection after 1 000, which the load
/// generator would count as errors).
pub fn start_nginx(backend: SocketAddr) -> anyhow::Result<Peer> {
    let dir = tempfile::Builder::new()
        .prefix("gateway-bench-nginx-")
        .tempdir()
        .context("creating a temporary directory")?;
    let port = fixture::free_port()?;
    let d = dir.path().display();
    let config = format!(
        "daemon off;\nmaster_process on;\nworker_processes 2;\nuser root;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 upstream backend {{ server {backend}; keepalive 64; keepalive_requests 100000000; }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://backend;\n\
         \x20     proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting nginx")?;
    let mut peer = Peer {
        name: "nginx",
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child: BoundedChild::new(child),
        workers: Vec::new(),
        _dir: dir,
    };
    peer.wait_ready()?;
    let master = peer.child.id();
    peer.workers = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect();
    Ok(peer)
}

/// mitmdump in reverse mode on a free loopback port in front of `backend`, its state
/// (the CA it generates) in a temporary directory, flow output off.
pub fn start_mitmproxy(backend: SocketAddr) -> anyhow::Result<Peer> {
    let dir = tempfile::Builder::new()
        .prefix("gateway-bench-mitm-")
        .tempdir()
        .context("creating a temporary directory")?;
    let port = fixture::free_port()?;
    let child = Command::new(mitm_venv().join("bin/mitmdump"))
        .arg("--mode")
        .arg(format!("reverse:http://{backend}"))
        .args(["--listen-host", "127.0.0.1", "--listen-port"])
        .arg(port.to_string())
        .arg("--set")
        .arg(format!("confdir={}", dir.path().display()))
        .args(["--set", "flow_detail=0", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting mitmdump")?;
    let mut peer = Peer {
        name: "mitmproxy",
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child: BoundedChild::new(child),
        workers: Vec::new(),
        _dir: dir,
    };
    peer.wait_ready()?;
    Ok(peer)
}

impl Peer {
    /// Waits (bounded) until the peer accepts TCP connections; fails if it exits first.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PEER_READY;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.exited()? {
                bail!(
                    "{} exited before accepting connections ({status})",
                    self.name
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections within {PEER_READY:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The peer's processes: its master and (nginx) its workers.
    pub fn pids(&self) -> Vec<u32> {
        let workers = self
            .workers
            .iter()
            .filter_map(|&pid| u32::try_from(pid).ok());
        std::iter::once(self.child.id()).chain(workers).collect()
    }
}
