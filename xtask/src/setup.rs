//! Idempotent installation of what building and testing need on a fresh Debian 12 machine
//! of this kind. Each step checks first and skips what is already there.
//!
//! The versions are the ones known to work together here (see README.md, Toolchain notes):
//! the preinstalled `nightly` (LLVM 22) with rust-src builds gateway-ebpf, and bpf-linker
//! 0.13 must be built against the same LLVM major, which Debian ships as llvm-22-dev.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

const BPF_LINKER_VERSION: &str = "0.13.0";
/// `cargo xtask fuzz` (libFuzzer targets in fuzz/, built with the preinstalled nightly).
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const LLVM_PACKAGES: [&str; 3] = ["llvm-22-dev", "zlib1g-dev", "libzstd-dev"];
/// Tools the end-to-end tests run: curl as the client, setpriv to change uid, mount for
/// bpffs; for the TLS tests openssl (s_client, fingerprints) and update-ca-certificates
/// (which `gateway-agent ca install` runs); for the service tests systemd-analyze (the
/// unit's exposure score), dpkg-deb (`cargo xtask package` and its content checks) and
/// unshare (PID/mount namespaces), debootstrap (the Debian rootfs tests/systemd_boot.rs
/// boots; it builds it under target/systemd-boot/ on first run).
const TEST_PACKAGES: [(&str, &str); 9] = [
    ("systemd-analyze", "systemd"),
    ("debootstrap", "debootstrap"),
    ("dpkg-deb", "dpkg"),
    ("unshare", "util-linux"),
    ("curl", "curl"),
    ("setpriv", "util-linux"),
    ("mount", "mount"),
    ("openssl", "openssl"),
    ("update-ca-certificates", "ca-certificates"),
];

pub fn ensure_all() -> anyhow::Result<()> {
    ensure_nightly_rust_src()?;
    ensure_debian_packages()?;
    ensure_bpf_linker()?;
    ensure_python_env()?;
    ensure_node_packages()?;
    ensure_cargo_fuzz()?;
    Ok(())
}

/// cargo-fuzz, pinned, unless that version is already installed.
pub fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    if output("cargo", &["fuzz", "--version"]).is_ok_and(|v| v.contains(CARGO_FUZZ_VERSION)) {
        return Ok(());
    }
    run(
        "cargo",
        &[
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ],
    )
}

/// tests/mcp/node: the TypeScript MCP SDK (1.x and the v2 server package), server-everything
/// and the conformance suite (pinned, and its 2026-07-28 pre-release as `conformance-next`),
/// at the versions its package-lock.json pins. A copy of the lockfile in node_modules marks
/// an install done.
fn ensure_node_packages() -> anyhow::Result<()> {
    let dir = workspace_root().join("tests/mcp/node");
    let lock = std::fs::read(dir.join("package-lock.json"))
        .context("reading tests/mcp/node/package-lock.json")?;
    let stamp = dir.join("node_modules/.installed-from-lock");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    if !on_path("npm") {
        run("apt-get", &["update", "-qq"])?;
        run(
            "apt-get",
            &[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "nodejs",
                "npm",
            ],
        )?;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .context("running npm ci in tests/mcp/node")?;
    if !status.success() {
        bail!("npm ci in {} failed ({status})", dir.display());
    }
    std::fs::write(&stamp, lock).context("marking the npm install done")?;
    Ok(())
}

/// The Python MCP SDK the end-to-end tests use as a real client and server (and DuckDB), pinned, in a
/// virtualenv under target/ (so nothing outside the checkout changes).
/// duckdb reads the audit trail's Parquet files in the audit tests, as an operator would.
/// kubernetes-validate (which ships the Kubernetes OpenAPI schemas) checks
/// packaging/kubernetes/ in tests/kubernetes.rs.
const PYTHON_PACKAGES: [(&str, &str); 4] = [
    ("mcp", "2.3.0"),
    ("duckdb", "2.0.1"),
    ("kubernetes-validate", "1.37.0"),
    // A real S3-compatible server (with object lock) on loopback for tests/audit_ship.rs;
    // brings boto3, which tests/audit/s3.py uses to read the bucket back.
    ("moto[server]", "5.2.5"),
];

fn ensure_python_env() -> anyhow::Result<()> {
    let venv = workspace_root().join("target/e2e/venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run("python3", &["-m", "venv", &venv.display().to_string()])?;
    }
    let python = python.display().to_string();
    for (package, version) in PYTHON_PACKAGES {
        // `pip show` takes the distribution name, without extras.
        let name = package.split('[').next().unwrap_or(package);
        let installed = output(&python, &["-m", "pip", "show", name])
            .is_ok_and(|info| info.lines().any(|l| l == format!("Version: {version}")));
        if !installed {
            run(
                &python,
                &[
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    &format!("{package}=={version}"),
                ],
            )?;
        }
    }
    Ok(())
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_owned()
}

fn ensure_nightly_rust_src() -> anyhow::Result<()> {
    let installed = output(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .context("the `nightly` toolchain is required to build gateway-ebpf (rustup toolchain list)")?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    run(
        "rustup",
        &["component", "add", "rust-src", "--toolchain", "nightly"],
    )
}

fn ensure_debian_packages() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = LLVM_PACKAGES
        .iter()
        .copied()
        .filter(|pkg| !dpkg_installed(pkg))
        .collect();
    for (tool, pkg) in TEST_PACKAGES {
        if !on_path(tool) && !missing.contains(&pkg) {
            missing.push(pkg);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    run("apt-get", &args)
}

fn ensure_bpf_linker() -> anyhow::Result<()> {
    if output("bpf-linker", &["--version"]).is_ok_and(|v| v.contains(BPF_LINKER_VERSION)) {
        return Ok(());
    }
    // llvm-sys finds llvm-config-22 through PATH.
    let path = format!(
        "/usr/lib/llvm-22/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--locked",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("PATH", path)
        .status()
        .context("running cargo install bpf-linker")?;
    if !status.success() {
        bail!("cargo install bpf-linker {BPF_LINKER_VERSION} failed ({status})");
    }
    Ok(())
}

fn dpkg_installed(pkg: &str) -> bool {
    output("dpkg-query", &["-W", "-f=${Status}", pkg])
        .is_ok_and(|s| s.contains("install ok installed"))
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} {} failed ({})", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program` with `args`; fails naming the command unless it succeeds.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}
