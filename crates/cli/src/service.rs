//! `shoebox service install|remove|status`: runs `shoebox run` as a
//! background service of the user's session, the way each system does it:
//! a systemd user unit on Linux, a launchd agent on macOS, a scheduled task
//! at logon on Windows. The definitions are plain text made here (and
//! tested on every system); only installing them differs, behind `cfg`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// The service's name: the systemd unit, the launchd label, the task.
#[cfg(target_os = "linux")]
const UNIT: &str = "shoebox.service";
#[cfg(target_os = "macos")]
const LABEL: &str = "app.shoebox.engine";
#[cfg(windows)]
const TASK: &str = "Shoebox";

/// What the service runs: this `shoebox`, on the data folder in use.
pub struct Service {
    pub exe: PathBuf,
    pub home: PathBuf,
}

/// A path as text for a service definition, which is UTF-8.
fn text(path: &Path) -> Result<&str> {
    path.to_str().with_context(|| {
        format!(
            "{} is not valid UTF-8, which a service definition cannot hold; move Shoebox or \
             its data folder to a path with a plain name",
            path.display()
        )
    })
}

/// A word of a systemd `ExecStart=` line: quoted, with `\`, `"`, `%` and
/// `$` escaped as systemd.service(5) and systemd.unit(5) say.
fn systemd_word(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Service {
    /// The systemd user unit. It starts with the session, restarts after a
    /// crash (not after a clean stop), and runs at low CPU and I/O
    /// priority: a backup must not slow the user's work.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn systemd_unit(&self) -> Result<String> {
        let exec = [text(&self.exe)?, "--home", text(&self.home)?, "run"]
            .map(systemd_word)
            .join(" ");
        Ok(format!(
            "[Unit]\n\
             Description=Shoebox photo backup (the engine, headless)\n\
             Documentation=man:shoebox(1)\n\
             \n\
             [Service]\n\
             Type=simple\n\
             ExecStart={exec}\n\
             Restart=on-failure\n\
             RestartSec=10\n\
             Nice=10\n\
             IOSchedulingClass=idle\n\
             \n\
             [Install]\n\
             WantedBy=default.target\n"
        ))
    }

    /// The launchd agent: started at login, kept alive after a crash.
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    pub fn launchd_plist(&self, label: &str, log: &Path) -> Result<String> {
        let args = [text(&self.exe)?, "--home", text(&self.home)?, "run"]
            .map(|a| format!("    <string>{}</string>\n", xml_escape(a)))
            .concat();
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
             \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <plist version=\"1.0\">\n<dict>\n\
             \x20 <key>Label</key>\n  <string>{label}</string>\n\
             \x20 <key>ProgramArguments</key>\n  <array>\n{args}  </array>\n\
             \x20 <key>RunAtLoad</key>\n  <true/>\n\
             \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
             \x20 <key>ProcessType</key>\n  <string>Background</string>\n\
             \x20 <key>StandardErrorPath</key>\n  <string>{}</string>\n\
             </dict>\n</plist>\n",
            xml_escape(text(log)?)
        ))
    }

    /// The command line a Windows scheduled task runs.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub fn task_command(&self) -> Result<String> {
        Ok(format!(
            "\"{}\" --home \"{}\" run",
            text(&self.exe)?,
            text(&self.home)?
        ))
    }
}

/// Runs a service manager's command; its error output on failure.
fn manager(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("{program} cannot be run: {e}")),
    }
}

/// Where the service's definition is written.
#[cfg(target_os = "linux")]
pub fn definition_path() -> Result<PathBuf> {
    let config = dirs::config_dir().context("this system has no configuration folder")?;
    Ok(config.join("systemd/user").join(UNIT))
}

#[cfg(target_os = "macos")]
pub fn definition_path() -> Result<PathBuf> {
    let home = dirs::home_dir().context("this system has no home folder")?;
    Ok(home
        .join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist")))
}

/// Writes the definition and starts the service (unless `start` is false);
/// returns what to tell the user.
#[cfg(target_os = "linux")]
pub fn install(service: &Service, start: bool) -> Result<String> {
    let path = definition_path()?;
    write(&path, &service.systemd_unit()?)?;
    if !start {
        return Ok(format!(
            "wrote {}; start it with `systemctl --user enable --now {UNIT}`",
            path.display()
        ));
    }
    manager("systemctl", &["--user", "daemon-reload"])
        .and_then(|()| manager("systemctl", &["--user", "enable", "--now", UNIT]))
        .map_err(|e| {
            anyhow::anyhow!(
                "wrote {}, but systemd's user manager could not start it ({e}); in your desktop \
                 session run `systemctl --user enable --now {UNIT}`",
                path.display()
            )
        })?;
    Ok(format!(
        "installed and started {UNIT} ({}); it starts with your session",
        path.display()
    ))
}

#[cfg(target_os = "macos")]
pub fn install(service: &Service, start: bool) -> Result<String> {
    let path = definition_path()?;
    let log = service.home.join("logs/launchd.log");
    write(&path, &service.launchd_plist(LABEL, &log)?)?;
    if !start {
        return Ok(format!(
            "wrote {}; start it with `launchctl load -w {}`",
            path.display(),
            path.display()
        ));
    }
    let p = text(&path)?;
    manager("launchctl", &["load", "-w", p])
        .map_err(|e| anyhow::anyhow!("wrote {p}, but launchd could not load it ({e})"))?;
    Ok(format!(
        "installed and started {LABEL} ({p}); it starts when you log in"
    ))
}

#[cfg(windows)]
pub fn install(service: &Service, start: bool) -> Result<String> {
    let command = service.task_command()?;
    manager(
        "schtasks",
        &[
            "/Create", "/F", "/TN", TASK, "/SC", "ONLOGON", "/TR", &command,
        ],
    )
    .map_err(|e| anyhow::anyhow!("the scheduled task could not be created ({e})"))?;
    if start {
        manager("schtasks", &["/Run", "/TN", TASK])
            .map_err(|e| anyhow::anyhow!("the scheduled task could not be started ({e})"))?;
    }
    Ok(format!(
        "created the scheduled task {TASK}; it starts when you log in"
    ))
}

/// The definition written by `install`, or an error saying there is none.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn installed_definition() -> Result<PathBuf> {
    let path = definition_path()?;
    if !path.exists() {
        anyhow::bail!(
            "no Shoebox service is installed ({} does not exist)",
            path.display()
        );
    }
    Ok(path)
}

/// Stops the service and removes its definition.
#[cfg(target_os = "linux")]
pub fn remove() -> Result<String> {
    let path = installed_definition()?;
    let stopped = manager("systemctl", &["--user", "disable", "--now", UNIT]);
    std::fs::remove_file(&path).with_context(|| format!("could not remove {}", path.display()))?;
    let _ = manager("systemctl", &["--user", "daemon-reload"]);
    Ok(match stopped {
        Ok(()) => format!("stopped and removed {UNIT}"),
        Err(e) => format!(
            "removed {} (systemd's user manager could not be asked to stop it: {e})",
            path.display()
        ),
    })
}

#[cfg(target_os = "macos")]
pub fn remove() -> Result<String> {
    let path = installed_definition()?;
    let _ = manager("launchctl", &["unload", "-w", text(&path)?]);
    std::fs::remove_file(&path).with_context(|| format!("could not remove {}", path.display()))?;
    Ok(format!("stopped and removed {LABEL}"))
}

#[cfg(windows)]
pub fn remove() -> Result<String> {
    let _ = manager("schtasks", &["/End", "/TN", TASK]);
    manager("schtasks", &["/Delete", "/F", "/TN", TASK])
        .map_err(|e| anyhow::anyhow!("no Shoebox scheduled task could be removed ({e})"))?;
    Ok(format!("removed the scheduled task {TASK}"))
}

/// Whether the service is installed, and whether it runs.
#[cfg(target_os = "linux")]
pub fn status() -> Result<String> {
    let path = definition_path()?;
    if !path.exists() {
        return Ok("not installed (`shoebox service install` installs it)".to_string());
    }
    let state = Command::new("systemctl")
        .args(["--user", "is-active", UNIT])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown (systemd's user manager cannot be reached)".to_string());
    Ok(format!("installed ({}); {state}", path.display()))
}

#[cfg(target_os = "macos")]
pub fn status() -> Result<String> {
    let path = definition_path()?;
    if !path.exists() {
        return Ok("not installed (`shoebox service install` installs it)".to_string());
    }
    let running = manager("launchctl", &["list", LABEL]).is_ok();
    Ok(format!(
        "installed ({}); {}",
        path.display(),
        if running { "loaded" } else { "not loaded" }
    ))
}

#[cfg(windows)]
pub fn status() -> Result<String> {
    Ok(match manager("schtasks", &["/Query", "/TN", TASK]) {
        Ok(()) => format!("installed (the scheduled task {TASK})"),
        Err(_) => "not installed (`shoebox service install` installs it)".to_string(),
    })
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn write(path: &Path, content: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(exe: &str, home: &str) -> Service {
        Service {
            exe: exe.into(),
            home: home.into(),
        }
    }

    #[test]
    fn the_unit_runs_this_shoebox_on_this_data_folder_with_odd_characters_escaped() {
        let unit = service("/opt/Shoebox/shoebox", "/home/ann/100% \"mine\" $HOME\\x")
            .systemd_unit()
            .unwrap();
        assert!(
            unit.contains(
                "ExecStart=\"/opt/Shoebox/shoebox\" \"--home\" \
                 \"/home/ann/100%% \\\"mine\\\" $$HOME\\\\x\" \"run\"\n"
            ),
            "{unit}"
        );
        assert!(unit.contains("Restart=on-failure"));
        assert!(unit.contains("WantedBy=default.target"));
    }

    #[test]
    fn the_launchd_agent_and_the_task_run_the_same_command() {
        let s = service("/Applications/Shoebox.app/shoebox", "/Users/a & b/Shoebox");
        let plist = s
            .launchd_plist("app.shoebox.engine", Path::new("/tmp/log"))
            .unwrap();
        assert!(
            plist.contains("<string>/Users/a &amp; b/Shoebox</string>"),
            "{plist}"
        );
        assert!(plist.contains("<key>RunAtLoad</key>"));
        assert_eq!(
            s.task_command().unwrap(),
            "\"/Applications/Shoebox.app/shoebox\" --home \"/Users/a & b/Shoebox\" run"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_refused_with_what_to_do() {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"/home/\xff");
        let s = Service {
            exe: "/usr/bin/shoebox".into(),
            home: odd.into(),
        };
        let e = s.systemd_unit().unwrap_err().to_string();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }
}
