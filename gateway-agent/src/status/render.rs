//! The status report: gathered from the pins, the status file and the audit WAL, then
//! told as text for people or JSON for scripts.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;
use serde_json::{Value, json};

use super::{AgentRecord, AuditBacklog, audit_backlog};
use crate::{
    config::Config,
    intercept::{PinnedState, inspect},
};

/// The one-line verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Programs attached and an agent serving: MCP traffic is inspected.
    Active,
    /// Programs attached, no agent: connections to the ports are refused (fail closed).
    AgentDown,
    /// Nothing pinned, no agent: connections go direct.
    Detached,
    /// An agent runs but nothing is attached (starting, or the pins were removed under it),
    /// or only some links are pinned.
    Inconsistent,
}

impl Health {
    pub fn summary(self) -> &'static str {
        match self {
            Self::Active => "interception active, agent up",
            Self::AgentDown => "interception active, agent DOWN: connections refused",
            Self::Detached => "interception detached: connections go direct, unseen",
            Self::Inconsistent => {
                "interception INCONSISTENT: restart the agent or run `gateway-agent detach`"
            }
        }
    }
}

/// `status`'s exit code: 0 active, 3 agent down (fail closed), 4 detached, 5 inconsistent.
pub fn exit_code(health: Health) -> u8 {
    match health {
        Health::Active => 0,
        Health::AgentDown => 3,
        Health::Detached => 4,
        Health::Inconsistent => 5,
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub health: Health,
    pub cgroup: std::path::PathBuf,
    pub pins: Option<PinnedState>,
    /// The status file's agent, if one was recorded, and whether it still runs.
    pub agent: Option<(AgentRecord, bool)>,
    pub audit: Option<AuditBacklog>,
    pub now_unix: u64,
}

impl Report {
    /// Everything `status` can learn without the agent's help.
    pub fn gather(config: &Config, cgroup: &Path) -> anyhow::Result<Self> {
        let pins = inspect(&config.intercept.pin_dir, cgroup)?;
        let agent = AgentRecord::read(&config.status.file).map(|r| {
            let alive = r.is_alive();
            (r, alive)
        });
        let live = agent.as_ref().is_some_and(|(_, alive)| *alive);
        let attached = pins.as_ref().is_some_and(PinnedState::attached);
        let health = match (&pins, attached, live) {
            (_, true, true) => Health::Active,
            (_, true, false) => Health::AgentDown,
            (None, false, false) => Health::Detached,
            _ => Health::Inconsistent,
        };
        let audit = config
            .audit
            .enabled
            .then(|| audit_backlog(&config.audit.dir));
        Ok(Self {
            health,
            cgroup: cgroup.to_owned(),
            pins,
            agent,
            audit,
            now_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })
    }

    pub fn to_json(&self) -> Value {
        let pins = self.pins.as_ref().map(|p| {
            json!({
                "dir": p.instance,
                "links": p.links,
                "attached": p.attached(),
                "agent_tgid": p.maps.as_ref().map(|m| m.agent_tgid),
                "ports": p.maps.as_ref().map(|m| &m.ports),
                "redirect_to": p.maps.as_ref().map(|m| m.listen4.to_string()),
            })
        });
        let agent = self.agent.as_ref().map(|(r, alive)| {
            json!({
                "running": alive,
                "pid": r.pid,
                "version": r.version,
                "uptime_secs": alive.then(|| self.now_unix.saturating_sub(r.started_unix)),
                "started_unix": r.started_unix,
                "config": r.config,
                "ports": r.ports,
                "listen": [r.listen.to_string(), r.listen6.to_string()],
                "on_exit": r.on_exit,
                "metrics": r.metrics.map(|m| m.to_string()),
            })
        });
        json!({
            "health": self.health,
            "summary": self.health.summary(),
            "cgroup": self.cgroup,
            "pins": pins,
            "agent": agent,
            "audit_backlog": self.audit,
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.health.summary());
        let _ = writeln!(out, "  cgroup:  {}", self.cgroup.display());
        match &self.pins {
            None => out.push_str("  pins:    none\n"),
            Some(pins) => {
                let _ = writeln!(
                    out,
                    "  pins:    {} ({}/{} links{})",
                    pins.instance.display(),
                    pins.links.len(),
                    crate::intercept::PinnedState::expected_links(),
                    if pins.attached() { ", attached" } else { "" }
                );
                if let Some(maps) = &pins.maps {
                    let _ = writeln!(
                        out,
                        "  ports:   {:?} -> {}{}",
                        maps.ports,
                        maps.listen4,
                        if maps.agent_tgid == 0 {
                            " (released: no agent registered)".to_owned()
                        } else {
                            format!(" (agent pid {} as the kernel sees it)", maps.agent_tgid)
                        }
                    );
                }
            }
        }
        match &self.agent {
            Some((r, true)) => {
                let _ = writeln!(
                    out,
                    "  agent:   pid {}, up {}, version {}, on exit {}",
                    r.pid,
                    duration(self.now_unix.saturating_sub(r.started_unix)),
                    r.version,
                    r.on_exit
                );
                if let Some(metrics) = r.metrics {
                    let _ = writeln!(out, "  metrics: http://{metrics}/metrics");
                }
            }
            Some((r, false)) => {
                let _ = writeln!(out, "  agent:   not running (last pid {})", r.pid);
            }
            None => out.push_str("  agent:   not running\n"),
        }
        if let Some(audit) = &self.audit {
            let _ = writeln!(
                out,
                "  audit:   {} bytes in {} WAL segment(s) not yet in closed Parquet files",
                audit.wal_bytes, audit.wal_segments
            );
        }
        out
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(super::duration(5), "5s");
        assert_eq!(super::duration(125), "2m5s");
        assert_eq!(super::duration(7_260), "2h1m");
        assert_eq!(super::duration(90_000), "1d1h");
    }
}
