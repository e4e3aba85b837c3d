//! The approvals themselves: what each one names, its state, the caps on how many may be
//! open, and their journal (so a decision made while the agent restarts is not lost).
//!
//! States: `pending` → `approved` (quorum reached) → `used` (grant once: the call went
//! through), or `pending` → `denied` / `expired`; `approved` → `expired` when unused in
//! time. Open approvals (pending or approved) live in a map; closed ones are kept in a
//! short ring for `approvals show` and are dropped from the journal when it is compacted.

use std::{
    collections::{HashMap, VecDeque},
    io::Read as _,
};

use serde::{Deserialize, Serialize};

use super::{
    binding::CallKey,
    config::{Approvers, Grant},
    journal::{Journal, JournalError},
};

/// Closed approvals remembered for `show`/`list` (they stay in the audit trail forever).
const RECENT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Approved,
    Denied,
    Expired,
    Used,
}

impl State {
    pub fn is_open(self) -> bool {
        matches!(self, State::Pending | State::Approved)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Used => "used",
        }
    }
}

/// Who asked, as recorded (the kernel's process half and the token's half).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    pub cgroup: Option<String>,
    pub sub: Option<String>,
    pub issuer: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// Who decided: the admin socket peer's credentials, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decider {
    /// On the admin socket; `None` on the HTTP endpoint.
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// A token's subject and e-mail, on the HTTP endpoint.
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub time_us: i64,
}

/// Where the request came from, for the audit rows of later events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub session: String,
    pub transport: String,
    pub protocol_version: Option<String>,
    pub server_name: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// 128 bits from the kernel's CSPRNG, hex: unguessable.
    pub id: String,
    pub state: State,
    pub key: CallKey,
    pub requester: Requester,
    pub origin: Origin,
    /// The arguments as masked for people (never the raw values), possibly truncated.
    pub arguments: String,
    /// The rule's reason, shown to the caller and the approvers.
    pub reason: String,
    pub policy_version: String,
    pub created_us: i64,
    pub expires_us: i64,
    pub approvals_required: u32,
    pub approvers: Approvers,
    pub grant: Grant,
    #[serde(default)]
    pub approved_by: Vec<Decider>,
    pub approved_us: Option<i64>,
    pub denied_by: Option<Decider>,
    pub denial_reason: Option<String>,
    /// Grant `session`: the MCP session the approval is bound to.
    pub session: Option<String>,
    #[serde(default)]
    pub uses: u32,
}

impl Approval {
    /// Until when an approved approval may be used.
    pub fn usable_until(&self) -> i64 {
        match (self.grant, self.approved_us) {
            (Grant::Ttl { ttl_secs }, Some(at)) => {
                at.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX) * 1_000_000)
            }
            _ => self.expires_us,
        }
    }

    fn due(&self, now_us: i64) -> bool {
        match self.state {
            State::Pending => now_us >= self.expires_us,
            State::Approved => now_us >= self.usable_until(),
            _ => false,
        }
    }
}

/// Why a new approval was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("you already have {0} approvals waiting; wait for a decision before asking again")]
    Principal(usize),
    #[error("{0} approvals are already waiting on this host; try again later")]
    Overall(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub overall: usize,
    pub per_principal: usize,
}

pub struct Store {
    open: HashMap<String, Approval>,
    recent: VecDeque<Approval>,
    journal: Journal,
    caps: Caps,
}

impl Store {
    /// Opens (creating) the journal at `path` and reloads the approvals still open.
    pub fn open(path: &std::path::Path, caps: Caps) -> Result<Self, JournalError> {
        let (journal, snapshots) = Journal::open(path)?;
        let mut store = Self {
            open: HashMap::new(),
            recent: VecDeque::new(),
            journal,
            caps,
        };
        for approval in snapshots {
            store.put(approval);
        }
        let open: Vec<Approval> = store.open.values().cloned().collect();
        store.journal.compact(&open)?;
        Ok(store)
    }

    fn put(&mut self, approval: Approval) {
        if approval.state.is_open() {
            self.open.insert(approval.id.clone(), approval);
        } else {
            self.open.remove(&approval.id);
            self.recent.retain(|a| a.id != approval.id);
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(approval);
        }
    }

    /// Records `approval`'s new state durably (journal fsynced), then in memory.
    pub fn save(&mut self, approval: Approval) -> Result<(), JournalError> {
        self.journal.append(&approval)?;
        if self.journal.needs_compaction(self.open.len()) {
            let mut open: Vec<Approval> = self
                .open
                .values()
                .filter(|a| a.id != approval.id)
                .cloned()
                .collect();
            if approval.state.is_open() {
                open.push(approval.clone());
            }
            self.journal.compact(&open)?;
        }
        self.put(approval);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Approval> {
        self.open
            .get(id)
            .or_else(|| self.recent.iter().rev().find(|a| a.id == id))
    }

    /// Open first (oldest first), then recently closed.
    pub fn list(&self) -> Vec<Approval> {
        let mut open: Vec<Approval> = self.open.values().cloned().collect();
        open.sort_by_key(|a| a.created_us);
        open.extend(self.recent.iter().cloned());
        open
    }

    /// The approved approval `key` may use now (`session` for grant = "session").
    pub fn usable(&self, key: &CallKey, session: &str, now_us: i64) -> Option<&Approval> {
        self.open.values().find(|a| {
            a.state == State::Approved
                && &a.key == key
                && !a.due(now_us)
                && a.session.as_deref().is_none_or(|s| s == session)
        })
    }

    /// The pending approval for the same call, so a retry waits on it instead of asking
    /// again.
    pub fn pending(&self, key: &CallKey, now_us: i64) -> Option<&Approval> {
        self.open
            .values()
            .find(|a| a.state == State::Pending && &a.key == key && !a.due(now_us))
    }

    /// May `principal` open one more approval?
    pub fn room_for(&self, principal: &str) -> Result<(), CapError> {
        if self.open.len() >= self.caps.overall {
            return Err(CapError::Overall(self.open.len()));
        }
        let mine = self
            .open
            .values()
            .filter(|a| a.key.principal == principal)
            .count();
        if mine >= self.caps.per_principal {
            return Err(CapError::Principal(mine));
        }
        Ok(())
    }

    /// Open approvals whose time is up.
    pub fn due(&self, now_us: i64) -> Vec<Approval> {
        self.open
            .values()
            .filter(|a| a.due(now_us))
            .cloned()
            .collect()
    }
}

/// A new approval id: 16 bytes from the kernel's CSPRNG, hex.
pub fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod tests;
