//! The on-disk policy format (`policies/*.toml`) and its validation into matchable rules.
//! Every error names the file, the rule and the key.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Action, Conditions, MaskProfile, PolicyError, Rule, glob::Glob};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub defaults: Option<Defaults>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Defaults {
    /// What happens when no rule matches: `allow` or `deny`.
    pub action: ActionName,
    /// Returned to the caller when the default is `deny`.
    pub reason: Option<String>,
    /// Masking for traffic allowed by default: `default` or `none`.
    pub mask: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum ActionName {
    Allow,
    Deny,
    Approve,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSpec {
    pub id: String,
    #[allow(dead_code)] // documentation for operators; shown by tooling later
    pub description: Option<String>,
    pub action: ActionName,
    pub reason: Option<String>,
    pub mask: Option<String>,
    #[serde(rename = "match", default)]
    pub conditions: MatchSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct MatchSpec {
    pub server: Option<Vec<String>>,
    pub method: Option<Vec<String>>,
    pub tool: Option<Vec<String>>,
    pub user: Option<Vec<String>>,
    pub uid: Option<Vec<u32>>,
    pub comm: Option<Vec<String>>,
    pub exe: Option<Vec<String>>,
    pub cgroup: Option<Vec<String>>,
    pub group: Option<Vec<String>>,
    pub claim: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub argument: Vec<ArgumentSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArgumentSpec {
    /// RFC 6901 JSON pointer into tools/call `params.arguments`.
    pub pointer: String,
    pub regex: String,
}

pub(super) fn parse_mask(value: Option<&str>) -> Result<MaskProfile, String> {
    match value {
        None | Some("default") => Ok(MaskProfile::Default),
        Some("none") => Ok(MaskProfile::None),
        Some(other) => Err(format!(
            "unknown masking profile {other:?} (known: default, none)"
        )),
    }
}

impl RuleSpec {
    pub(super) fn compile(self, origin: &str, index: usize) -> Result<Rule, PolicyError> {
        let label = if self.id.is_empty() {
            format!("rule #{}", index + 1)
        } else {
            format!("rule {:?}", self.id)
        };
        let invalid = |key: &str, problem: String| PolicyError::Invalid {
            origin: origin.to_owned(),
            rule: label.clone(),
            key: key.to_owned(),
            problem,
        };
        if self.id.trim().is_empty() {
            return Err(invalid("id", "is required".into()));
        }
        let action = match self.action {
            ActionName::Allow => Action::Allow,
            ActionName::Deny => Action::Deny,
            ActionName::Approve => Action::Approve,
        };
        let reason = match (&self.reason, action) {
            (Some(reason), _) => reason.clone(),
            (None, Action::Allow) => String::new(),
            (None, _) => {
                return Err(invalid(
                    "reason",
                    "is required for deny and approve (the caller is told why)".into(),
                ));
            }
        };
        let mask = parse_mask(self.mask.as_deref()).map_err(|problem| invalid("mask", problem))?;
        let c = self.conditions;
        let globs =
            |key: &str, list: Option<Vec<String>>| -> Result<Option<Vec<Glob>>, PolicyError> {
                match list {
                    None => Ok(None),
                    Some(list) if list.is_empty() => {
                        Err(invalid(key, "is empty; remove it to match anything".into()))
                    }
                    Some(list) => Ok(Some(list.iter().map(|p| Glob::new(p)).collect())),
                }
            };
        let mut arguments = Vec::new();
        for (i, argument) in c.argument.into_iter().enumerate() {
            let key = format!("match.argument[{i}]");
            if !(argument.pointer.is_empty() || argument.pointer.starts_with('/')) {
                return Err(invalid(
                    &format!("{key}.pointer"),
                    format!(
                        "{:?} is not a JSON pointer (it must start with '/')",
                        argument.pointer
                    ),
                ));
            }
            let regex = regex::Regex::new(&argument.regex)
                .map_err(|err| invalid(&format!("{key}.regex"), format!("invalid regex: {err}")))?;
            arguments.push((argument.pointer, regex));
        }
        if matches!(&c.uid, Some(list) if list.is_empty()) {
            return Err(invalid(
                "match.uid",
                "is empty; remove it to match anything".into(),
            ));
        }
        Ok(Rule {
            id: self.id,
            origin: origin.to_owned(),
            action,
            reason,
            mask,
            conditions: Conditions {
                server: globs("match.server", c.server)?,
                method: globs("match.method", c.method)?,
                tool: globs("match.tool", c.tool)?,
                user: globs("match.user", c.user)?,
                uid: c.uid,
                comm: globs("match.comm", c.comm)?,
                exe: globs("match.exe", c.exe)?,
                cgroup: globs("match.cgroup", c.cgroup)?,
                group: globs("match.group", c.group)?,
                claim: c
                    .claim
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, pattern)| (name, Glob::new(&pattern)))
                    .collect(),
                arguments,
            },
        })
    }
}
