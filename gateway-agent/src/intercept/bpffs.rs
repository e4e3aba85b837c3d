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
    #[error("cannot create pin directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
}

/// Makes sure `pin_dir` exists on bpffs, mounting /sys/fs/bpf if that is where it lives
/// and nothing is mounted there yet (Debian without systemd's mount unit, containers).
pub fn ensure_pin_dir(pin_dir: &Path) -> Result<(), BpffsError> {
    let conventional = Path::new(CONVENTIONAL_MOUNT);
    if pin_dir.starts_with(conventional) && !is_bpffs(conventional) {
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

fn is_bpffs(path: &Path) -> bool {
    statfs(path)
        .map(|fs| fs.filesystem_type() == BPF_FS_MAGIC)
        .unwrap_or(false)
}
