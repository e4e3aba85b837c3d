//! The admin API: a Unix socket (mode 0660, group `socket_group`) taking one JSON request
//! line and answering one JSON line. The approver's identity is the peer's credentials as
//! the kernel reports them (SO_PEERCRED: uid, gid), resolved to a user name and groups
//! through NSS: nothing the client says about itself is believed.
//!
//! Requests: `{"op":"list"}`, `{"op":"show","id":…}`, `{"op":"approve","id":…,"reason":…}`,
//! `{"op":"deny","id":…,"reason":…}`. Answers: `{"ok":true,"approvals":[…]}` or
//! `{"ok":true,"approval":{…}}`, or `{"ok":false,"error":"…"}`. Anyone who can open the
//! socket may list and show (arguments are masked); deciding is authorised per approval.

use std::{os::unix::fs::PermissionsExt as _, path::Path, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::Semaphore,
};
use tracing::{debug, info, warn};

use super::{
    Approvals,
    decide::{Peer, Verdict},
};

/// The longest request line accepted.
pub const MAX_REQUEST: u64 = 64 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections served at once.
const MAX_CLIENTS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    List,
    Show { id: String },
    Approve { id: String, reason: Option<String> },
    Deny { id: String, reason: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin socket {}: {error}", path.display())]
    Socket {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("admin socket group {0:?} does not exist")]
    NoGroup(String),
}

/// Binds the admin socket at `path` (replacing a stale socket, never another kind of
/// file), mode 0660, owned by `group` when given.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, AdminError> {
    let io = |error| AdminError::Socket {
        path: path.to_owned(),
        error,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if !meta.file_type().is_socket() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    if let Some(group) = group {
        let gid = nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .ok_or_else(|| AdminError::NoGroup(group.to_owned()))?
            .gid;
        nix::unistd::chown(path, None, Some(gid)).map_err(|e| io(e.into()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    Ok(listener)
}

/// Serves the admin API until the task is dropped.
pub async fn serve(approvals: Arc<Approvals>, listener: UnixListener) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                warn!(error = %err, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!("admin socket busy; connection dropped");
            continue;
        };
        let approvals = Arc::clone(&approvals);
        tokio::spawn(async move {
            if let Err(err) = serve_one(&approvals, stream).await {
                debug!(error = %err, "admin connection failed");
            }
            drop(slot);
        });
    }
}

async fn serve_one(approvals: &Approvals, stream: UnixStream) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
    let peer = tokio::task::spawn_blocking(move || resolve_peer(uid, gid, pid))
        .await
        .map_err(std::io::Error::other)?;
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let read = BufReader::new(read).take(MAX_REQUEST + 1);
    let mut read = read;
    match tokio::time::timeout(READ_TIMEOUT, read.read_until(b'\n', &mut line)).await {
        Ok(result) => result?,
        Err(_) => return Ok(()),
    };
    let answer = if line.len() as u64 > MAX_REQUEST {
        json!({ "ok": false, "error": "request too long" })
    } else {
        match serde_json::from_slice::<Request>(&line) {
            Ok(request) => handle(approvals, &peer, request).await,
            Err(err) => json!({ "ok": false, "error": format!("bad request: {err}") }),
        }
    };
    let mut out = answer.to_string().into_bytes();
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

pub(super) async fn handle(approvals: &Approvals, peer: &Peer, request: Request) -> Value {
    let decision = |id: &str, verdict, reason: Option<String>| {
        info!(
            id,
            uid = peer.uid.unwrap_or(u32::MAX),
            user = peer.user.as_deref().unwrap_or(""),
            ?verdict,
            "approval decision asked"
        );
        (id.to_owned(), verdict, reason)
    };
    let (id, verdict, reason) = match request {
        Request::List => return json!({ "ok": true, "approvals": approvals.list().await }),
        Request::Show { id } => {
            return match approvals.get(&id).await {
                Some(approval) => json!({ "ok": true, "approval": approval }),
                None => json!({ "ok": false, "error": format!("no approval {id}") }),
            };
        }
        Request::Approve { id, reason } => decision(&id, Verdict::Approve, reason),
        Request::Deny { id, reason } => decision(&id, Verdict::Deny, reason),
    };
    match approvals.decide(peer, &id, verdict, reason).await {
        Ok(approval) => json!({ "ok": true, "approval": approval }),
        Err(refusal) => json!({ "ok": false, "error": refusal.to_string() }),
    }
}

/// The peer's user name and groups: its connecting gid and the user's NSS groups.
pub fn resolve_peer(uid: u32, gid: u32, pid: Option<i32>) -> Peer {
    use nix::unistd::{Gid, Group, Uid, User};
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
    let mut gids = vec![Gid::from_raw(gid)];
    if let Some(user) = &user
        && let Ok(name) = std::ffi::CString::new(user.name.clone())
        && let Ok(list) = nix::unistd::getgrouplist(&name, user.gid)
    {
        gids.extend(list);
    }
    let mut groups: Vec<String> = gids
        .into_iter()
        .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
        .collect();
    groups.sort();
    groups.dedup();
    Peer {
        uid: Some(uid),
        gid: Some(gid),
        pid,
        user: user.map(|u| u.name),
        subject: None,
        email: None,
        groups,
    }
}
