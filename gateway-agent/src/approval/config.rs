//! `[approval]` in the agent's config: how long a call is held, who may decide, how many
//! approvals stay open, where decisions are kept and where the admin socket is. Per policy
//! rule overrides live under `[approval.rule.<rule-id>]`, so the policy files keep one
//! job (what needs approval) and this section the other (who approves and how).

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

/// `[approval]`. Absent: an `approve` rule refuses the call, as it did before approvals.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// How long a request waits for a decision before it is answered "approval pending".
    /// Below common client request timeouts (the SDKs default to 60 s or more).
    pub hold_secs: u64,
    /// 2026-07-28 clients: holds that end undecided are answered `input_required` (the
    /// client sends the call again at once, held again) this many times before the
    /// "approval pending" tool error. 0: answer the tool error after the first hold.
    pub input_required_rounds: u32,
    /// How long an approval is open: undecided by then it expires (a denial); approved,
    /// it must be used by then.
    pub ttl_secs: u64,
    /// Open (pending or approved, not yet used) approvals at once, over all callers.
    pub max_pending: usize,
    /// Open approvals at once per principal: one caller cannot flood the approvers.
    pub max_pending_per_principal: usize,
    /// Distinct approvers a call needs (default 1).
    pub approvals_required: u32,
    /// What one approval covers (default one call).
    pub grant: Grant,
    /// Who may decide, unless the rule names its own.
    pub approvers: Approvers,
    /// The admin API's Unix socket (`gateway-agent approvals …` talks to it).
    pub socket: PathBuf,
    /// The group the socket belongs to (mode 0660); default: the agent's group (root).
    pub socket_group: Option<String>,
    /// Also serve the admin API over HTTP here, for approvers identified by an OIDC
    /// token (needs `[[identity.issuer]]`). Off by default.
    pub http_listen: Option<std::net::SocketAddr>,
    /// The append-only journal approvals survive restarts in. Default:
    /// `approvals.jsonl` next to the audit directory.
    pub journal: Option<PathBuf>,
    /// Per policy rule id: its own approvers, quorum and grant.
    pub rule: BTreeMap<String, RuleApproval>,
    /// Where new approvals are announced (webhooks).
    #[serde(rename = "channel")]
    pub channels: Vec<super::notify::ChannelConfig>,
    /// A response in which the masker found more secrets than this (a "dump everything"
    /// answer) is held for approval before the caller gets it (masked). Off by default;
    /// a rule's own value (keyed by the rule that allowed the request) wins.
    pub hold_response_if_masked_over: Option<usize>,
    /// While a client that accepts `text/event-stream` is held, the response starts as
    /// SSE at once and a comment line is sent this often, so idle timers do not fire.
    pub keepalive_secs: u64,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            hold_secs: 45,
            input_required_rounds: 3,
            ttl_secs: 900,
            max_pending: 100,
            max_pending_per_principal: 5,
            approvals_required: 1,
            grant: Grant::Once,
            approvers: Approvers::default(),
            socket: PathBuf::from("/run/gateway-agent/approvals.sock"),
            socket_group: None,
            http_listen: None,
            journal: None,
            rule: BTreeMap::new(),
            channels: Vec::new(),
            hold_response_if_masked_over: None,
            keepalive_secs: 15,
        }
    }
}

/// Local users and groups (names, as NSS resolves them) allowed to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Approvers {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Approvers {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// One of `names` is listed as a user, or one of `groups` as a group.
    pub fn admits(&self, names: &[&str], groups: &[String]) -> bool {
        names.iter().any(|n| self.users.iter().any(|u| u == n))
            || groups.iter().any(|g| self.groups.contains(g))
    }

    /// For messages: `alice, group secops`.
    pub fn describe(&self) -> String {
        let users = self.users.iter().cloned();
        let groups = self.groups.iter().map(|g| format!("group {g}"));
        users.chain(groups).collect::<Vec<_>>().join(", ")
    }
}

/// `[approval.rule.<id>]`: overrides for one policy rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleApproval {
    pub approvers: Option<Approvers>,
    pub approvals_required: Option<u32>,
    pub grant: Option<Grant>,
    /// Responses to requests this rule allowed: held when they carry more masked secrets
    /// than this.
    pub hold_response_if_masked_over: Option<usize>,
}

/// `grant = "once" | "session" | { ttl_secs = N }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// One call, then used up.
    #[default]
    Once,
    /// Repeats of the same call by the same principal in the same MCP session, until the
    /// approval expires.
    Session,
    /// Repeats of the same call by the same principal for `ttl_secs` after approval.
    #[serde(untagged)]
    Ttl { ttl_secs: u64 },
}

/// What applies to one rule's approvals, overrides resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub approvers: Approvers,
    pub approvals_required: u32,
    pub grant: Grant,
}

impl ApprovalConfig {
    pub fn for_rule(&self, rule: &str) -> Effective {
        let own = self.rule.get(rule);
        Effective {
            approvers: own
                .and_then(|r| r.approvers.clone())
                .unwrap_or_else(|| self.approvers.clone()),
            approvals_required: own
                .and_then(|r| r.approvals_required)
                .unwrap_or(self.approvals_required),
            grant: own.and_then(|r| r.grant).unwrap_or(self.grant),
        }
    }

    /// The response-hold threshold for a request `rule` allowed (`None`: no rule
    /// matched, the global value applies); `None` when responses are not held.
    pub fn response_threshold(&self, rule: Option<&str>) -> Option<usize> {
        rule.and_then(|r| self.rule.get(r))
            .and_then(|r| r.hold_response_if_masked_over)
            .or(self.hold_response_if_masked_over)
    }

    /// Is any response ever held (so requests need the bookkeeping)?
    pub fn holds_responses(&self) -> bool {
        self.hold_response_if_masked_over.is_some()
            || self
                .rule
                .values()
                .any(|r| r.hold_response_if_masked_over.is_some())
    }

    /// The journal's path: configured, or `approvals.jsonl` beside `audit_dir`.
    pub fn journal_path(&self, audit_dir: &std::path::Path) -> PathBuf {
        self.journal.clone().unwrap_or_else(|| {
            audit_dir
                .parent()
                .unwrap_or(audit_dir)
                .join("approvals.jsonl")
        })
    }

    /// Problems `check` and start-up refuse, as (key, problem).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.hold_secs == 0 || self.hold_secs > 3600 {
            problems.push(("approval.hold_secs", "must be 1..=3600".to_owned()));
        }
        if self.input_required_rounds > 8 {
            problems.push((
                "approval.input_required_rounds",
                "must be 0..=8 (the SDKs give up after 10 rounds)".to_owned(),
            ));
        }
        if self.ttl_secs < self.hold_secs {
            problems.push((
                "approval.ttl_secs",
                "must be at least hold_secs (an approval may not expire while held)".to_owned(),
            ));
        }
        if self.max_pending == 0 || self.max_pending_per_principal == 0 {
            problems.push((
                "approval.max_pending",
                "max_pending and max_pending_per_principal must be at least 1".to_owned(),
            ));
        }
        let quorums = std::iter::once(self.approvals_required)
            .chain(self.rule.values().filter_map(|r| r.approvals_required));
        if quorums.clone().any(|n| n == 0 || n > 10) {
            problems.push(("approval.approvals_required", "must be 1..=10".to_owned()));
        }
        let nobody = self.approvers.is_empty()
            && (self.rule.is_empty() || self.rule.values().any(|r| r.approvers.is_none()));
        if nobody {
            problems.push((
                "approval.approvers",
                "names no users or groups: nobody could approve".to_owned(),
            ));
        }
        if self.keepalive_secs == 0 || self.keepalive_secs > 300 {
            problems.push(("approval.keepalive_secs", "must be 1..=300".to_owned()));
        }
        if !self.socket.is_absolute() {
            problems.push(("approval.socket", "must be an absolute path".to_owned()));
        }
        for channel in &self.channels {
            if let Err(problem) = channel.validate() {
                problems.push(("approval.channel", problem));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const MINIMAL: &str = "[intercept]\nports = [18080]\nlisten = \"127.0.0.1:15001\"\n";

    fn parse(approval: &str) -> Result<Config, String> {
        Config::parse(&format!("{MINIMAL}\n{approval}"), "test.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn absent_means_approve_rules_refuse() {
        assert!(parse("").unwrap().approval.is_none());
    }

    #[test]
    fn defaults_and_per_rule_overrides() {
        let config = parse(
            "[approval]\n[approval.approvers]\ngroups = [\"secops\"]\n\
             [approval.rule.creds]\napprovers = { users = [\"vault\"] }\napprovals_required = 2\n\
             grant = { ttl_secs = 600 }\n[approval.rule.shell]\ngrant = \"session\"\n",
        )
        .unwrap();
        let approval = config.approval.unwrap();
        assert_eq!(approval.hold_secs, 45);
        assert_eq!(approval.grant, Grant::Once);
        let creds = approval.for_rule("creds");
        assert_eq!(creds.approvers.users, ["vault"]);
        assert_eq!(creds.approvals_required, 2);
        assert_eq!(creds.grant, Grant::Ttl { ttl_secs: 600 });
        let shell = approval.for_rule("shell");
        assert_eq!(shell.approvers.groups, ["secops"]);
        assert_eq!(shell.grant, Grant::Session);
        assert_eq!(approval.for_rule("other").grant, Grant::Once);
        assert_eq!(approval.response_threshold(Some("creds")), None);
        assert!(!approval.holds_responses());
        assert_eq!(
            approval.journal_path(std::path::Path::new("/var/lib/gateway-agent/audit")),
            PathBuf::from("/var/lib/gateway-agent/approvals.jsonl")
        );
    }

    #[test]
    fn response_threshold_per_rule_over_global() {
        let config = parse(
            "[approval]\nhold_response_if_masked_over = 10\n[approval.approvers]\nusers = [\"a\"]\n\
             [approval.rule.dump]\nhold_response_if_masked_over = 2\n",
        )
        .unwrap();
        let approval = config.approval.unwrap();
        assert!(approval.holds_responses());
        assert_eq!(approval.response_threshold(Some("dump")), Some(2));
        assert_eq!(approval.response_threshold(Some("other")), Some(10));
        assert_eq!(approval.response_threshold(None), Some(10));
        assert_eq!(approval.keepalive_secs, 15);
    }

    #[test]
    fn nonsense_is_refused_with_its_key() {
        let nobody = parse("[approval]\n").unwrap_err();
        assert!(nobody.contains("approval.approvers"), "{nobody}");
        let quorum =
            parse("[approval]\napprovals_required = 0\n[approval.approvers]\nusers = [\"a\"]\n")
                .unwrap_err();
        assert!(quorum.contains("approvals_required"), "{quorum}");
        let ttl = parse(
            "[approval]\nhold_secs = 60\nttl_secs = 30\n[approval.approvers]\nusers = [\"a\"]\n",
        )
        .unwrap_err();
        assert!(ttl.contains("approval.ttl_secs"), "{ttl}");
        let grant = parse("[approval]\ngrant = \"forever\"\n").unwrap_err();
        assert!(grant.contains("grant"), "{grant}");
        let hook = parse(
            "[approval]\n[approval.approvers]\nusers = [\"a\"]\n[[approval.channel]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\n",
        )
        .unwrap_err();
        assert!(hook.contains("secret_file"), "{hook}");
    }
}
