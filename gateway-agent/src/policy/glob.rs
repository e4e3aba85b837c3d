//! `*` and `?` wildcards for tool names, methods, paths and claim values.
//!
//! Hand-written rather than globset: these patterns match single names, not paths, so
//! `*` must cross `/` (`tools/*`, `/usr/bin/*`), and the two wildcards are all policy
//! authors need. Linear-time (no backtracking blow-up on hostile names).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.chars().collect(),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (p, t) = (&self.pattern, &text);
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((star_pi, star_ti)) = star {
                pi = star_pi + 1;
                ti = star_ti + 1;
                star = Some((star_pi, star_ti + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn wildcards() {
        assert!(Glob::new("shell_*").matches("shell_exec"));
        assert!(Glob::new("*delete*").matches("repo_delete_branch"));
        assert!(Glob::new("tools/*").matches("tools/call"));
        assert!(Glob::new("/usr/bin/*").matches("/usr/bin/python3"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(Glob::new("exec").matches("exec"));
        assert!(!Glob::new("exec").matches("exec2"));
        assert!(!Glob::new("shell_*").matches("myshell_exec"));
        assert!(Glob::new("*").matches(""));
        assert!(!Glob::new("a*b").matches(&"a".repeat(10_000)));
    }
}
