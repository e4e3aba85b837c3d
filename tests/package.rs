//! `cargo xtask package`: what the .deb holds (`dpkg-deb -c`), its control data and
//! conffiles (`dpkg-deb -I`), and that what it installs is what the repository ships.

mod support;

use std::{path::Path, process::Command};

use support::{build_package, workspace};

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn package_contents_conffiles_and_maintainer_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_package(dir.path());
    let name = deb.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("gateway-agent_0.1.0_"), "{name}");

    let contents = dpkg_deb(&["-c"], &deb);
    let entry = |path: &str| {
        contents
            .lines()
            .find(|line| line.ends_with(&format!(" .{path}")))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{contents}"))
            .to_owned()
    };
    for (path, mode) in [
        ("/usr/bin/gateway-agent", "-rwxr-xr-x root/root"),
        (
            "/lib/systemd/system/gateway-agent.service",
            "-rw-r--r-- root/root",
        ),
        ("/etc/gateway-agent/agent.toml", "-rw-r--r-- root/root"),
        (
            "/etc/gateway-agent/policies/default.toml",
            "-rw-r--r-- root/root",
        ),
        (
            "/usr/share/man/man1/gateway-agent.1.gz",
            "-rw-r--r-- root/root",
        ),
        (
            "/usr/share/bash-completion/completions/gateway-agent",
            "-rw-r--r--",
        ),
        (
            "/usr/share/zsh/vendor-completions/_gateway-agent",
            "-rw-r--r--",
        ),
        (
            "/usr/share/fish/vendor_completions.d/gateway-agent.fish",
            "-rw-r--r--",
        ),
        ("/usr/share/doc/gateway-agent/README.md", "-rw-r--r--"),
        ("/usr/share/doc/gateway-agent/copyright", "-rw-r--r--"),
        (
            "/usr/share/doc/gateway-agent/examples/policies/10-guardrails.toml",
            "-rw-r--r--",
        ),
    ] {
        let line = entry(path);
        assert!(line.starts_with(mode), "{line}");
    }
    // Nothing outside the paths a package may own, and no build leftovers.
    for line in contents.lines() {
        let path = line.rsplit(' ').next().unwrap();
        assert!(
            ["./", "./etc/", "./lib/", "./usr/"]
                .iter()
                .any(|prefix| path.starts_with(prefix)),
            "{line}"
        );
        assert!(!path.contains("deb-stage"), "{line}");
    }

    let info = dpkg_deb(&["-I"], &deb);
    for field in [
        "Package: gateway-agent",
        "Version: 0.1.0",
        "Depends: libc6, systemd",
    ] {
        assert!(info.contains(field), "{field} missing:\n{info}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info.lines()
                .any(|l| l.contains(&format!("*  {script}")) && l.contains("#!/bin/sh")),
            "{script} missing or not executable:\n{info}"
        );
    }
    let fields = dpkg_deb(&["-f"], &deb); // control fields, for a readable failure
    let control = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path())
        .status()
        .unwrap();
    assert!(status.success());
    let listed = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "/etc/gateway-agent/agent.toml",
            "/etc/gateway-agent/policies/default.toml"
        ],
        "{fields}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let status = Command::new("sh")
            .arg("-n")
            .arg(control.path().join(script))
            .status()
            .unwrap();
        assert!(status.success(), "{script} is not valid sh");
    }
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(
        postinst.contains("gateway-agent check --config"),
        "{postinst}"
    );
    assert!(postinst.contains("install -d -m 0700"), "{postinst}");
    let prerm = std::fs::read_to_string(control.path().join("prerm")).unwrap();
    assert!(prerm.contains("gateway-agent detach --config"), "{prerm}");
    // An upgrade must not detach (fail closed across the window, pins reused).
    let upgrade_arm = prerm.split("upgrade|failed-upgrade)").nth(1).unwrap();
    assert!(!upgrade_arm.contains("detach"), "{prerm}");

    // What is installed is what the repository ships, pointed at the packaged paths.
    let root = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success());
    let read = |path: &str| std::fs::read(root.path().join(path.trim_start_matches('/'))).unwrap();
    assert_eq!(
        read("/lib/systemd/system/gateway-agent.service"),
        std::fs::read(workspace().join("packaging/gateway-agent.service")).unwrap()
    );
    let config = String::from_utf8(read("/etc/gateway-agent/agent.toml")).unwrap();
    assert!(
        config.contains("\ndir = \"/etc/gateway-agent/policies\""),
        "{config}"
    );
    let man = Command::new("gzip")
        .arg("-dc")
        .arg(root.path().join("usr/share/man/man1/gateway-agent.1.gz"))
        .output()
        .unwrap();
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH gateway-agent 1"), "{man}");
    let bash =
        String::from_utf8(read("/usr/share/bash-completion/completions/gateway-agent")).unwrap();
    assert!(
        bash.contains("complete -F") && bash.contains("detach"),
        "bash completion"
    );
    // The packaged config passes `check` once its policy directory is where it says.
    let checked_config = root.path().join("agent.toml");
    std::fs::write(
        &checked_config,
        config.replace(
            "/etc/gateway-agent/policies",
            root.path()
                .join("etc/gateway-agent/policies")
                .to_str()
                .unwrap(),
        ),
    )
    .unwrap();
    let check = Command::new(root.path().join("usr/bin/gateway-agent"))
        .args(["check", "--config"])
        .arg(&checked_config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    // The service keeps its pins when stopped (fail closed); only the demo detaches.
    let checked = String::from_utf8_lossy(&check.stdout);
    assert!(checked.contains("on exit keep"), "{checked}");
}
