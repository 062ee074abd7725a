//! The app's attack surface: a strict CSP, no remote content, and exactly
//! the commands the UI uses. Checked in the files and in the running app.

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    fs::read_to_string(format!("{ROOT}/{rel}")).unwrap()
}

/// Every `'name'` that follows `marker` in `text`.
fn quoted_after(text: &str, marker: &str) -> BTreeSet<String> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            let rest = rest.strip_prefix(['\'', '"'])?;
            let end = rest.find(['\'', '"'])?;
            Some(rest[..end].to_string())
        })
        .collect()
}

#[test]
fn the_ui_the_command_list_the_handlers_and_the_capabilities_name_the_same_commands() {
    let ui = read("ui/app.js");
    let used: BTreeSet<String> = quoted_after(&ui, "call(")
        .union(&quoted_after(&ui, "invoke("))
        .cloned()
        .collect();
    let build = read("src-tauri/build.rs");
    let listed: BTreeSet<String> = build
        [build.find(".commands(&[").unwrap()..build.find("]))").unwrap()]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let lib = read("src-tauri/src/lib.rs");
    let handled: BTreeSet<String> = lib
        .match_indices("commands::")
        .filter_map(|(i, _)| {
            let rest = &lib[i + "commands::".len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            (end > 0).then(|| rest[..end].to_string())
        })
        .collect();
    let caps: serde_json::Value =
        serde_json::from_str(&read("src-tauri/capabilities/default.json")).unwrap();
    let allowed: BTreeSet<String> = caps["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
        .map(|p| p.replace('-', "_"))
        .collect();
    let others: Vec<&str> = caps["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .filter(|p| !p.starts_with("allow-"))
        .collect();
    assert!(used.len() >= 19, "the UI's commands were found: {used:?}");
    assert_eq!(used, listed, "build.rs lists exactly what the UI calls");
    assert_eq!(used, handled, "the handler registers exactly those");
    assert_eq!(used, allowed, "the capability allows exactly those");
    assert_eq!(
        others,
        ["core:event:allow-listen", "core:event:allow-unlisten"],
        "no plugin command (file system, shell, opener…) is reachable from the page"
    );
}

#[test]
fn the_csp_allows_nothing_remote_and_no_inline_or_eval_script() {
    let conf: serde_json::Value = serde_json::from_str(&read("tauri.conf.json")).unwrap();
    let csp = conf["app"]["security"]["csp"].as_object().unwrap();
    assert_eq!(csp["default-src"], "'self'");
    assert_eq!(csp["script-src"], "'self'", "no inline script, no eval");
    assert_eq!(csp["object-src"], "'none'");
    assert_eq!(csp["frame-ancestors"], "'none'");
    for (directive, value) in csp {
        let v = value.as_str().unwrap();
        assert!(!v.contains("unsafe-"), "{directive}: {v}");
        assert!(!v.contains('*'), "{directive} has no wildcard: {v}");
        let remote: Vec<&str> = v
            .split_whitespace()
            .filter(|s| s.starts_with("http") && *s != "http://ipc.localhost")
            .collect();
        assert!(remote.is_empty(), "{directive} allows {remote:?}");
    }
    // And the page itself names nothing remote to load.
    for file in ["ui/index.html", "ui/app.js", "ui/style.css"] {
        let text = read(file);
        for pattern in ["src=\"http", "href=\"http", "url(http", "fetch(", "import("] {
            assert!(!text.contains(pattern), "{file} contains {pattern}");
        }
    }
}

#[test]
fn the_running_page_cannot_reach_the_network_or_commands_it_was_not_given() {
    let sb = Sandbox::new();
    // A local server that counts every connection: a probe that got out
    // would reach it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if conn.is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}/probe");
    let wd = WebDriver::start(&sb, &[]);
    wd.exec(&format!(
        r#"window.__probe = {{}};
        const note = (k) => (v) => {{ window.__probe[k] = v; }};
        fetch("{url}").then(() => "allowed", (e) => "blocked").then(note("fetch"));
        const img = document.createElement("img");
        img.onload = () => note("img")("allowed");
        img.onerror = () => note("img")("blocked");
        img.src = "{url}.png";
        document.body.appendChild(img);
        const inv = window.__TAURI__.core.invoke;
        inv("plugin:opener|open_url", {{ url: "{url}" }}).then(() => "allowed", (e) => "refused: " + e).then(note("opener"));
        inv("plugin:fs|read_text_file", {{ path: "/etc/passwd" }}).then(() => "allowed", (e) => "refused: " + e).then(note("fs"));
        inv("plugin:shell|execute", {{ program: "sh", args: ["-c", "true"] }}).then(() => "allowed", (e) => "refused: " + e).then(note("shell"));
        inv("get_state").then(() => "allowed", (e) => "refused: " + e).then(note("own"));
        return true;"#
    ));
    let mut probe = serde_json::Value::Null;
    wait_until(secs(20), "every probe settled", || {
        probe = wd.exec("return window.__probe;");
        ["fetch", "img", "opener", "fs", "shell", "own"]
            .iter()
            .all(|k| !probe[*k].is_null())
    });
    assert_eq!(
        probe["own"], "allowed",
        "the page's own commands work: {probe}"
    );
    assert_eq!(probe["fetch"], "blocked", "{probe}");
    assert_eq!(probe["img"], "blocked", "{probe}");
    for k in ["opener", "fs", "shell"] {
        assert!(
            probe[k].as_str().unwrap().starts_with("refused"),
            "{k} is not reachable: {probe}"
        );
    }
    assert_eq!(
        hits.load(Ordering::Relaxed),
        0,
        "nothing left the page for the local server"
    );
}

#[test]
fn a_damaged_store_is_explained_in_a_window_and_the_app_exits_instead_of_looping() {
    let sb = Sandbox::new();
    fs::write(sb.data.join("shoebox.db"), vec![b'x'; 8192]).unwrap();
    let mut app = sb.launch(&["--minimized"]);
    let mut dialog = Vec::new();
    wait_until(secs(30), "an error window", || {
        dialog = windows_named("Shoebox could not start");
        !dialog.is_empty()
    });
    assert!(
        app.alive(),
        "the app waits for the user to read the message"
    );
    assert!(
        shoebox_windows().is_empty(),
        "no main window on a broken store"
    );
    close_window(&dialog[0]);
    let status = app
        .wait_exit(secs(10))
        .expect("the app exits once the message is closed");
    assert_eq!(
        status.code(),
        Some(2),
        "a failure exit code, no restart loop"
    );
    assert!(
        sb.data.join("shoebox.db").exists(),
        "the damaged store is left for `shoebox doctor --repair`"
    );
}
