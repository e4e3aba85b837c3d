//! Policy: which MCP requests a principal may make, read from `policies/*.toml`.
//!
//! # Evaluation: first match wins
//!
//! Files are read in lexical file-name order (`10-base.toml` before `20-team.toml`), rules
//! in the order they appear in each file; the first rule whose conditions all hold decides
//! and no later rule is looked at. When no rule matches, `[defaults]` decides. Chosen over
//! most-specific-wins or deny-overrides because the outcome can be read off the files top
//! to bottom, like a firewall: put narrow exceptions above the broad rules they carve out.
//!
//! `[defaults]` (`action`, `reason`, `mask`) may appear in one file only — a second is an
//! error naming both, because two defaults would silently depend on file order. Without
//! any, the default is allow with default masking (what the shipped policy says too).
//!
//! # Conditions
//!
//! A rule's `[rule.match]` conditions are ANDed; the entries of one condition are ORed; an
//! absent condition matches anything (so a rule without `match` matches everything).
//! A condition on something the request or caller does not have — a `tool` on
//! `tools/list`, a `uid` when the kernel recorded no process, a `user` whose name did not
//! resolve, a `claim` without a token, an argument pointer that does not resolve — does
//! not match. That fails closed for allow rules (an unidentified caller never satisfies
//! an identity condition); the flip side is that a deny rule on identity does not catch
//! unidentified callers either, so a strict policy is written as `[defaults] action =
//! "deny"` plus allow rules.
//!
//! | key | matches | patterns |
//! |---|---|---|
//! | `server` | original destination, or configured server name | `IP:PORT`, `IP:*`, `*:PORT` (IPv6 in brackets; v4-mapped = IPv4), or a name glob |
//! | `method` | JSON-RPC method | glob |
//! | `tool` | `tools/call` `params.name` | glob |
//! | `user`, `comm`, `exe`, `cgroup` | the calling process (kernel + /proc) | glob |
//! | `unit`, `container` | systemd unit / container id derived from the cgroup path | glob |
//! | `uid`, `gid` | the calling process | integers |
//! | `group` | token groups (any of them) | glob |
//! | `claim` | `{ name = glob or [globs] }`, each claim must match | glob |
//! | `[[rule.match.argument]]` | `pointer` (RFC 6901 into `params.arguments`) + `regex` | all must match |
//!
//! Globs are `globset`'s (see `file.rs` for why): `*` (any run, `/` and newlines
//! included), `?` (one byte: use `*` around non-ASCII), `[a-z]`, `{a,b}`; case-sensitive. Regexes are the `regex` crate's and unanchored (write `^…$`).
//! An argument regex sees a string as-is and any other JSON value as its compact JSON
//! text (`42`, `true`, `["a","b"]`). Argument patterns are text checks, not path
//! canonicalisation: `^/etc/` does not stop `//etc/passwd`, so guard paths by allowing
//! the safe prefix and denying the rest, not the other way around.
//!
//! # Actions
//!
//! `allow` (with `mask = "default" | "none"` for its responses), `deny` and `approve`
//! (both with a `reason` the caller is shown). Every check — unknown keys, bad actions,
//! globs, regexes, pointers, duplicate ids across files — happens at load, so `gateway-agent
//! check` and start-up refuse exactly the same files, and each error names the file, the
//! rule and the key.

mod file;
mod matcher;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::Value;

use self::{
    file::PolicyFile,
    matcher::{Action, Rule},
};
use crate::principal::Principal;

/// The shipped default policy, used when the config names no policy directory.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    // The wrapped errors are fields named `error`, not `source`: the message already
    // carries them, and a `source` would print twice under anyhow's `{:#}`.
    #[error("cannot read policy directory {}: {error}", dir.display())]
    Dir { dir: PathBuf, error: std::io::Error },
    #[error(
        "policy directory {} holds no *.toml files (to allow everything, add one with \
         [defaults] action = \"allow\")",
        dir.display()
    )]
    NoFiles { dir: PathBuf },
    #[error("cannot read policy file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{origin}: {error}")]
    Parse {
        origin: String,
        error: Box<toml::de::Error>,
    },
    /// `rule` is `rule "<id>"`, `rule #<n>` (1-based, when the id itself is the problem)
    /// or `[defaults]`; `key` is the path inside it, e.g. `match.tool[1]`.
    #[error("{origin}: {rule}: {key}: {problem}")]
    Invalid {
        origin: String,
        rule: String,
        key: String,
        problem: String,
    },
    #[error(
        "{origin}: rule {id:?}: id: already used in {first}; rule ids must be unique across all policy files"
    )]
    DuplicateId {
        origin: String,
        id: String,
        first: String,
    },
    #[error("{origin}: [defaults]: already set in {first}; set the defaults in one file only")]
    DuplicateDefaults { origin: String, first: String },
}

/// How the responses to an allowed request are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskProfile {
    /// The masking the `[mask]` config describes.
    Default,
    /// None, for a server an operator trusts to return nothing secret.
    None,
}

/// What policy says about one request. Serialises as `{"action": "deny", "rule": …}` for
/// audit records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Decision {
    /// `rule` is `None` when no rule matched and `[defaults]` allowed it.
    Allow {
        rule: Option<String>,
        mask: MaskProfile,
    },
    /// `rule` is `"[defaults]"` when no rule matched and the default denies.
    Deny { rule: String, reason: String },
    /// Hold for a human's approval; `reason` is shown to the caller and the approver.
    Approve { rule: String, reason: String },
}

impl Decision {
    /// The rule that decided, for logs and audit; `None` for the default allow.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Decision::Allow { rule, .. } => rule.as_deref(),
            Decision::Deny { rule, .. } | Decision::Approve { rule, .. } => Some(rule),
        }
    }
}

/// The MCP server a request goes to.
#[derive(Debug, Clone, Copy)]
pub struct ServerRef<'a> {
    /// The original destination the client dialled (before eBPF redirected it).
    pub addr: SocketAddr,
    /// The server's configured name, if the config names this destination.
    pub name: Option<&'a str>,
}

/// Everything policy looks at for one JSON-RPC request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub server: ServerRef<'a>,
    pub method: &'a str,
    /// `params.name` of a `tools/call`.
    pub tool: Option<&'a str>,
    /// `params.arguments` of a `tools/call`.
    pub arguments: Option<&'a Value>,
    pub principal: &'a Principal,
}

/// A loaded, validated policy. Immutable: a reload builds a new one and swaps the `Arc`,
/// so a request is judged by one consistent policy from start to end.
#[derive(Debug)]
pub struct PolicySet {
    rules: Vec<Rule>,
    default: Decision,
    /// SHA-256 (first 16 hex digits) of the files' names and contents: which policy an
    /// approval or audit row was decided under.
    version: String,
}

impl PolicySet {
    /// All `*.toml` files directly in `dir`, in lexical file-name order. Hidden files
    /// (`.#10-x.toml` editor locks) are skipped; anything else named `*.toml` that cannot
    /// be read (a directory, a dangling symlink) is an error, not silently skipped, since
    /// a missing file may be a missing deny rule. So is a directory with no policy files:
    /// more likely a wrong path than an intended allow-all.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let dir_error = |error| PolicyError::Dir {
            dir: dir.to_owned(),
            error,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(dir_error)? {
            let name = entry.map_err(dir_error)?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".toml") && !name.starts_with('.') {
                paths.push(dir.join(&*name));
            }
        }
        if paths.is_empty() {
            return Err(PolicyError::NoFiles {
                dir: dir.to_owned(),
            });
        }
        paths.sort();
        let files = paths
            .into_iter()
            .map(|path| match std::fs::read_to_string(&path) {
                Ok(text) => Ok((path.display().to_string(), text)),
                Err(error) => Err(PolicyError::Read { path, error }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_files(
            files
                .iter()
                .map(|(origin, text)| (origin.as_str(), text.as_str())),
        )
    }

    /// One file's worth of policy; `origin` names it in errors (the embedded default).
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        Self::from_files([(origin, text)])
    }

    fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, PolicyError> {
        use sha2::Digest as _;
        let mut rules: Vec<Rule> = Vec::new();
        let mut default: Option<(&str, Decision)> = None;
        let mut hasher = sha2::Sha256::new();
        for (origin, text) in files {
            hasher.update((origin.len() as u64).to_le_bytes());
            hasher.update(origin.as_bytes());
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
            let file: PolicyFile = toml::from_str(text).map_err(|error| PolicyError::Parse {
                origin: origin.to_owned(),
                error: Box::new(error),
            })?;
            if let Some(defaults) = file.defaults {
                if let Some((first, _)) = default {
                    return Err(PolicyError::DuplicateDefaults {
                        origin: origin.to_owned(),
                        first: first.to_owned(),
                    });
                }
                default = Some((origin, defaults.compile(origin)?));
            }
            for (index, spec) in file.rules.into_iter().enumerate() {
                let rule = spec.compile(origin, index)?;
                if let Some(first) = rules.iter().find(|r| r.id == rule.id) {
                    return Err(PolicyError::DuplicateId {
                        origin: origin.to_owned(),
                        id: rule.id,
                        first: first.origin.clone(),
                    });
                }
                rules.push(rule);
            }
        }
        Ok(Self {
            rules,
            default: default.map_or(
                Decision::Allow {
                    rule: None,
                    mask: MaskProfile::Default,
                },
                |(_, decision)| decision,
            ),
            version: hasher.finalize()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
    }

    /// Identifies the policy files this set was loaded from (changes with any edit).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The number of rules (not counting `[defaults]`).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What happens when no rule matches.
    pub fn default_decision(&self) -> &Decision {
        &self.default
    }

    pub fn evaluate(&self, request: &RequestFacts<'_>) -> Decision {
        self.rules
            .iter()
            .find(|rule| rule.conditions.matches(request))
            .map_or_else(|| self.default.clone(), Rule::decision)
    }

    /// For `tools/list` filtering: is a `tools/call` of `tool` by `principal` to `server`
    /// denied whatever its arguments? Hidden only when that is certain, so a client never
    /// loses a tool it could call; the call itself is still judged by [`Self::evaluate`].
    ///
    /// Walks the rules as `evaluate` would with unknown arguments: a rule with argument
    /// conditions may or may not match, so a deny among them is passed over (some
    /// arguments escape it) and an allow or approve among them makes the tool visible
    /// (some arguments reach it). Otherwise the first match decides; only deny hides.
    /// A tool that needs approval stays visible: the approval flow handles the call.
    pub fn tool_hidden(&self, server: &ServerRef<'_>, tool: &str, principal: &Principal) -> bool {
        let request = RequestFacts {
            server: *server,
            method: "tools/call",
            tool: Some(tool),
            arguments: None,
            principal,
        };
        for rule in &self.rules {
            if !rule.conditions.matches_without_arguments(&request) {
                continue;
            }
            match (rule.conditions.has_argument_conditions(), rule.action) {
                (true, Action::Deny) => continue,
                (true, _) => return false,
                (false, action) => return action == Action::Deny,
            }
        }
        matches!(self.default, Decision::Deny { .. })
    }
}

#[cfg(test)]
mod tests;
