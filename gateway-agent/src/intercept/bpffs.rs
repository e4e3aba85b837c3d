//! The bpf filesystem that keeps links and maps alive between agent processes.

use std::path::Path;

use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

/// Where systemd and iproute2 mount bpffs; mounted here on demand.
const CONVENTIONAL_MOUNT: &str = "/sys/fs/bpf";

#[derive(Debug, thiserror::Error)]
pub enum BpffsError {
    #[error(
        "intercept.pin_dir {pin_dir} is not on a bpf filesystem; mount one there \
         (mount -t bpf bpf DIR) or use a directory under /sys/fs/bpf"
    )]
    NotBpffs { pin_dir: String },
    #[error(
        "cannot mount bpffs at /sys/fs/bpf: {0} (the agent needs CAP_SYS_ADMIN or a pre-mounted bpffs)"
    )]
    Mount(nix::Error),
    #[error(
        "/sys/fs/bpf is not a bpf filesystem, and the agent runs in a private mount namespace \
         ({reason}): a bpffs it mounted there would die with the agent, taking the pins with \
         it, so a crash would let MCP traffic through unseen (fail open). Mount bpffs on the \
         host first (`mount -t bpf bpf /sys/fs/bpf`; systemd mounts it at boot, and the \
         packaged unit asserts it) or set intercept.pin_dir to a host-level bpffs"
    )]
    PrivateMountNamespace { reason: String },
    #[error("cannot create pin directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
}

/// Makes sure `pin_dir` exists on bpffs, mounting /sys/fs/bpf if that is where it lives
/// and nothing is mounted there yet (a host without systemd's bpffs mount). It only mounts
/// when its mount namespace is PID 1's: a mount made in a private namespace (a systemd
/// unit with PrivateTmp=, ProtectSystem=, …) vanishes with the agent, and pins with it.
pub fn ensure_pin_dir(pin_dir: &Path) -> Result<(), BpffsError> {
    let conventional = Path::new(CONVENTIONAL_MOUNT);
    if pin_dir.starts_with(conventional) && !is_bpffs(conventional) {
        if let Some(reason) = private_mount_namespace() {
            return Err(BpffsError::PrivateMountNamespace { reason });
        }
        nix::mount::mount(
            Some("bpf"),
            conventional,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(BpffsError::Mount)?;
        tracing::info!(path = CONVENTIONAL_MOUNT, "mounted bpffs");
    }
    std::fs::create_dir_all(pin_dir).map_err(|source| BpffsError::CreateDir {
        path: pin_dir.display().to_string(),
        source,
    })?;
    if !is_bpffs(pin_dir) {
        return Err(BpffsError::NotBpffs {
            pin_dir: pin_dir.display().to_string(),
        });
    }
    Ok(())
}

/// Why a mount made by this process would not outlive it, or `None` when we share PID 1's
/// mount namespace (where mounts stay until unmounted). Unknown counts as private.
fn private_mount_namespace() -> Option<String> {
    let ours = std::fs::read_link("/proc/self/ns/mnt");
    let init = std::fs::read_link("/proc/1/ns/mnt");
    match (ours, init) {
        (Ok(ours), Ok(init)) if ours == init => None,
        (Ok(ours), Ok(init)) => Some(format!(
            "ours is {}, PID 1's is {}",
            ours.display(),
            init.display()
        )),
        (Err(err), _) | (_, Err(err)) => Some(format!("cannot compare it with PID 1's: {err}")),
    }
}

fn is_bpffs(path: &Path) -> bool {
    statfs(path)
        .map(|fs| fs.filesystem_type() == BPF_FS_MAGIC)
        .unwrap_or(false)
}
