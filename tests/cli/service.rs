//! `shoebox service`, `completions` and `man`: what installing Shoebox as
//! a real app takes. The unit is checked by systemd's own
//! `systemd-analyze verify` (no user manager runs here, so it is written
//! with `--no-start`, never started).

use std::process::Command;

use crate::support::*;

/// `shoebox service install --no-start` writes a unit that systemd accepts
/// and that runs this `shoebox` on this data folder; `status` and `remove`
/// follow it.
#[test]
fn the_service_unit_is_one_systemd_accepts_and_it_is_removed_cleanly() {
    let env = Env::new();
    let config = env.tmp.path().join("config");
    let service = |args: &[&str]| {
        let mut cmd = env.cmd();
        cmd.env("XDG_CONFIG_HOME", &config)
            .arg("service")
            .args(args);
        run_within(&mut cmd, SECS(60), "shoebox service")
    };
    let not_yet = service(&["status"]).ok().stdout;
    assert!(not_yet.contains("not installed"), "{not_yet}");

    let installed = service(&["install", "--no-start"]).ok().stdout;
    let unit = config.join("systemd/user/shoebox.service");
    assert!(
        installed.contains(&unit.display().to_string()),
        "{installed}"
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    let exec = text
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_default();
    assert!(
        exec.contains(&format!("\"--home\" \"{}\" \"run\"", env.home.display())),
        "{exec}"
    );
    let verify = run_within(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit),
        SECS(60),
        "systemd-analyze verify",
    );
    assert_eq!(
        verify.code, 0,
        "systemd rejects the unit: {}",
        verify.stderr
    );

    let status = service(&["status"]).ok().stdout;
    assert!(status.starts_with("installed"), "{status}");
    service(&["remove"]).ok();
    assert!(!unit.exists(), "the unit is gone");
    let again = service(&["remove"]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("no Shoebox service is installed"),
        "{}",
        again.stderr
    );
}

/// Completions and the manual page come from the command line's own
/// definition: every command is in them, and bash loads the script.
#[test]
fn completions_and_the_manual_page_name_every_command() {
    let env = Env::new();
    let bash = env.run(["completions", "bash"]).ok().stdout;
    for word in ["watch", "dest", "config", "service", "restore", "verify"] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    let script = env.tmp.path().join("shoebox.bash");
    std::fs::write(&script, &bash).unwrap();
    let loaded = run_within(
        Command::new("bash").arg("-c").arg(format!(
            "source {} && complete -p shoebox",
            script.display()
        )),
        SECS(30),
        "bash loading the completions",
    );
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    assert!(loaded.stdout.contains("shoebox"), "{}", loaded.stdout);
    for shell in ["zsh", "fish"] {
        assert!(
            env.run(["completions", shell])
                .ok()
                .stdout
                .contains("service"),
            "{shell}"
        );
    }
    let man = env.run(["man"]).ok().stdout;
    assert!(
        man.starts_with(".ie") || man.contains(".TH shoebox"),
        "{man}"
    );
    for word in ["watch", "service", "completions"] {
        assert!(man.contains(word), "the manual lacks {word}");
    }
}
