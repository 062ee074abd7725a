//! How the CLI shows things: text tables, JSON, and the sync progress bar
//! (files, bytes, rate, ETA) on a terminal or JSON lines with `--json`.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use shoebox_core::{
    AlbumMode, AlbumNames, DestInfo, Event, Followed, Status, SyncReport, WatchInfo,
};
use shoebox_core::{Health, Repair};

pub fn print_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub fn dests(list: &[DestInfo], json: bool) -> Result<()> {
    if json {
        return print_json(list);
    }
    for d in list {
        let place = match (&d.path, &d.url, &d.bucket) {
            (Some(p), Some(u), None) => {
                format!("{u}{p} as {}", d.user.as_deref().unwrap_or_default())
            }
            (Some(p), _, _) => p.clone(),
            (None, Some(u), Some(b)) => format!(
                "{u} bucket {b}{}",
                d.prefix
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .map(|p| format!(" prefix {p}"))
                    .unwrap_or_default()
            ),
            (None, Some(u), None) => u.clone(),
            _ => String::new(),
        };
        let hidden = if d.names_hidden { ", names hidden" } else { "" };
        let encrypted = match (&d.encrypted_to, d.key_not_exported) {
            (None, _) => String::new(),
            (Some(_), false) => format!(" (encrypted{hidden})"),
            (Some(_), true) => {
                format!(
                    " (encrypted; key not exported: run `shoebox dest export-key {} --out FILE`)",
                    d.name
                )
            }
        };
        println!("{:<16} {:<8} {place}{encrypted}", d.name, d.kind);
    }
    Ok(())
}

/// Warns, before anything is backed up, about encrypted destinations whose
/// key was never exported.
pub fn warn_keys_not_exported(names: &[String]) {
    for name in names {
        eprintln!("warning: {}", shoebox_core::key_warning(name));
    }
}

pub fn health(h: &Health, db: &std::path::Path, json: bool) -> Result<()> {
    if json {
        return print_json(h);
    }
    let db = db.display();
    match h {
        Health::Missing => println!("no database yet at {db}: nothing has been set up here"),
        Health::Healthy => println!("the database at {db} is healthy"),
        Health::Damaged { problems } => {
            println!("the database at {db} is damaged:");
            for p in problems.iter().take(20) {
                println!("  {p}");
            }
            println!(
                "run `shoebox doctor --repair` to set it aside and rebuild it: destinations, \
                 watches and settings are kept where they can be read, the file index is \
                 rebuilt by the next sync, and files already backed up are recognised, not \
                 uploaded again"
            );
        }
        Health::TooNew { version } => println!(
            "the database at {db} was written by a newer version of Shoebox (schema {version}); \
             update Shoebox to use it (it was left untouched)"
        ),
    }
    Ok(())
}

pub fn repaired(r: &Repair, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    println!("the damaged database was moved to {}", r.moved_to.display());
    for (table, n) in &r.kept {
        println!("kept {n} {table} rows");
    }
    for what in &r.lost {
        println!("could not be read: {what}; set it up again");
    }
    println!("the next `shoebox sync` (or the running app) rebuilds the file index");
    Ok(())
}

/// A watch's album mode with what shapes its names: `single`,
/// `per-folder, path names`, `by-date, %Y-%m`.
pub fn mode_text(w: &WatchInfo) -> String {
    match w.mode {
        AlbumMode::Single => w.mode.to_string(),
        AlbumMode::PerFolder => match w.album_names {
            AlbumNames::Leaf => w.mode.to_string(),
            AlbumNames::Path => format!("{}, path names", w.mode),
        },
        AlbumMode::ByDate => format!("{}, {}", w.mode, w.date_format),
    }
}

pub fn watches(list: &[WatchInfo], json: bool) -> Result<()> {
    if json {
        return print_json(list);
    }
    if list.is_empty() {
        println!("no folders are watched; add one with `shoebox watch add FOLDER`");
    }
    for w in list {
        println!(
            "{}\n    album {:?} ({}), destination {}, on delete: {}{}",
            w.folder,
            w.album,
            mode_text(w),
            w.dest,
            w.on_delete,
            if w.all_files { ", all files" } else { "" }
        );
    }
    Ok(())
}

fn state_text(state: &str) -> &'static str {
    match state {
        "new" => "not synced yet",
        "up_to_date" => "up to date",
        "pending" => "files waiting",
        "needs_attention" => "some files failed",
        "folder_missing" => "folder missing",
        "deletions_held" => "deletions held",
        _ => "unknown",
    }
}

/// Shows what a running engine does: JSON lines, or a line per notable
/// event on stderr.
pub fn live_event(e: &Event, json: bool) {
    if json {
        let _ = print_json(e);
    } else if let Some(line) = event_line(e) {
        eprintln!("{line}");
    }
}

/// The line a notable event is shown as, for people.
pub fn event_line(e: &Event) -> Option<String> {
    let line = match e {
        Event::FileDone {
            path,
            album,
            name,
            outcome,
            ..
        } => {
            format!(
                "{}: {path} → {album}/{name}",
                serde_json::to_value(outcome)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
            )
        }
        Event::FileFailed { path, error, .. } => format!("failed: {path}: {error}"),
        Event::FileSkipped { path, reason } => format!("skipped: {path}: {reason}"),
        Event::FileRemoved { album, name } => format!("removed from album: {album}/{name}"),
        Event::WatchMissing { reason, .. } => format!("folder missing: {reason}"),
        Event::DestinationUnavailable { error, .. } => {
            format!("destination unavailable: {error}")
        }
        Event::EngineWaiting { reason, retry_secs } => {
            format!("waiting: {reason} (trying again every {retry_secs} s)")
        }
        Event::UploadsWaiting { waiting: Some(w) } => {
            format!("{} (`shoebox resume --anyway` backs up now)", w.line())
        }
        Event::UploadsWaiting { waiting: None } => "uploads go on".to_string(),
        Event::DeletionsHeld { watch, count } => format!(
            "{count} files vanished at once from {watch}; nothing removed. Confirm with \
             `shoebox watch confirm-deletions {watch}` or keep them with `shoebox watch keep-files {watch}`"
        ),
        Event::Watcher { watch, state } if state != "ok" => format!("{watch}: {state}"),
        Event::BackupChecked {
            checked,
            missing,
            damaged,
            ..
        } if missing + damaged > 0 => format!(
            "backup check: of {checked} files, {missing} are missing and {damaged} damaged on \
             their destinations; `shoebox verify` lists them and `--repair` sends them again"
        ),
        _ => return None,
    };
    Some(line)
}

/// `status --follow`: the status line whenever it changes and a line per
/// notable event, or with `--json` one object per line (`{"status": …}`,
/// or an event as `run --json` prints it), until the engine stops.
pub fn follow(engine: &shoebox_core::Engine, json: bool) -> Result<()> {
    let mut progress = shoebox_core::progress::Progress::default();
    let mut shown = String::new();
    engine.follow(0, &mut |followed| {
        let now = std::time::Instant::now();
        match followed {
            Followed::Status(status) if json => {
                let _ = print_json(&serde_json::json!({ "status": status }));
            }
            Followed::Event(event) if json => {
                let _ = print_json(&event);
            }
            Followed::Status(status) => {
                let line = progress.summary(&status, now).line;
                if line != shown {
                    println!("{line}");
                    shown = line;
                }
            }
            Followed::Event(event) => {
                progress.on_event(&event, now);
                if let Some(line) = event_line(&event) {
                    println!("{line}");
                }
            }
        }
    })?;
    if !json {
        println!("the engine stopped");
    }
    Ok(())
}

/// `status --ignored`: one line per entry left out, with why.
pub fn ignored(list: &[shoebox_core::IgnoredFile], json: bool) -> Result<()> {
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("nothing was left out");
    }
    for f in list {
        println!("{}: {}", f.path, f.reason);
    }
    Ok(())
}

/// `config list` and `config get`: one line per setting, `key = value`,
/// then what it does.
pub fn config(entries: &[shoebox_core::ConfigEntry], json: bool) -> Result<()> {
    if json {
        return print_json(&entries);
    }
    for e in entries {
        println!("{} = {}\n    {}", e.key, e.value, e.about);
    }
    Ok(())
}

/// `status --files`: one line per file, with its state, where it went and
/// when it was taken.
pub fn files(list: &[shoebox_core::FileStatus], json: bool) -> Result<()> {
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("no files are watched yet");
    }
    for f in list {
        let mut line = format!("{}: {}", f.path, f.state);
        if let (Some(album), Some(name)) = (&f.album, &f.stored_as) {
            line.push_str(&format!(" as {album}/{name}"));
        }
        if let Some(t) = &f.taken {
            line.push_str(&format!(", taken {} ({})", t.text(), t.from.as_str()));
        }
        if let Some(e) = &f.error {
            line.push_str(&format!(": {e}"));
        }
        println!("{line}");
    }
    Ok(())
}

pub fn status(s: &Status, json: bool) -> Result<()> {
    if json {
        return print_json(s);
    }
    println!("data folder: {}", s.home);
    match &s.engine {
        Some(e) => println!("engine: {e}"),
        None => println!("engine: not running (start it with `shoebox run`)"),
    }
    if s.paused {
        println!("syncing is PAUSED; `shoebox resume` resumes it");
    }
    if let Some(w) = &s.waiting {
        println!("{} (`shoebox resume --anyway` backs up now)", w.line());
    }
    for d in &s.destinations_down {
        println!("destination {} cannot be used now: {}", d.dest, d.message);
    }
    if let Some(c) = &s.last_check {
        let when = chrono::DateTime::from_timestamp(c.at, 0)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        if c.missing + c.damaged > 0 {
            println!(
                "last check of the backup ({when}): {} missing, {} damaged of {} files; \
                 `shoebox verify` lists them, `shoebox verify --repair` sends them again",
                c.missing, c.damaged, c.checked
            );
        } else {
            println!(
                "last check of the backup ({when}): all {} files there",
                c.checked
            );
        }
    }
    for u in &s.uploading {
        println!(
            "uploading {} → {} ({} of {} bytes)",
            u.path, u.album, u.done, u.size
        );
    }
    if s.settling > 0 {
        println!(
            "{} files are waiting for their content to stop changing",
            s.settling
        );
    }
    if s.watches.is_empty() {
        println!("no folders are watched; add one with `shoebox watch add FOLDER`");
    }
    for w in &s.watches {
        println!(
            "{} → {:?} ({}) on {}",
            w.watch.folder,
            w.watch.album,
            mode_text(&w.watch),
            w.watch.dest
        );
        println!(
            "    {}: {} files, {} uploaded, {} pending, {} failed, {} skipped, {} ignored; last scan {}",
            state_text(w.state),
            w.files,
            w.uploaded,
            w.pending,
            w.failed,
            w.skipped,
            w.ignored,
            w.last_scan.as_deref().unwrap_or("never")
        );
        if let Some(d) = &w.detail {
            println!("    {d}");
        }
        if let Some(watcher) = w.watcher.as_deref().filter(|w| *w != "ok") {
            println!("    watcher {watcher}");
        }
        if w.deletions_held > 0 {
            println!(
                "    {} deletions held: `shoebox watch confirm-deletions {}` or `shoebox watch keep-files {}`",
                w.deletions_held, w.watch.folder, w.watch.folder
            );
        }
    }
    println!(
        "queue: {} pending, {} in progress, {} failed",
        s.queue.pending, s.queue.in_progress, s.queue.failed
    );
    Ok(())
}

/// Shows a sync pass as it runs.
pub struct SyncProgress {
    json: bool,
    bar: Option<ProgressBar>,
    files_total: u64,
    files_done: u64,
}

impl SyncProgress {
    pub fn new(json: bool) -> SyncProgress {
        SyncProgress {
            json,
            bar: None,
            files_total: 0,
            files_done: 0,
        }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn event(&mut self, e: &Event) {
        if self.json {
            // A closed stdout only loses the progress lines.
            let _ = print_json(e);
            return;
        }
        match e {
            Event::Queue { files, bytes } => {
                self.files_total = *files;
                if std::io::stderr().is_terminal() && *files > 0 {
                    let bar =
                        ProgressBar::with_draw_target(Some(*bytes), ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:30} {msg} · {bytes}/{total_bytes} · {bytes_per_sec} · ETA {eta}",
                        )
                        .expect("valid template"),
                    );
                    bar.set_message(format!("0/{files} files"));
                    self.bar = Some(bar);
                }
            }
            Event::FileDone {
                size, note, path, ..
            } => {
                self.step(*size);
                if let Some(n) = note {
                    self.say(format!("note: {path}: {n}"));
                }
            }
            Event::FileFailed { path, error, size } => {
                self.step(*size);
                self.say(format!("failed: {path}: {error}"));
            }
            Event::FileSkipped { path, reason } => self.say(format!("skipped: {path}: {reason}")),
            Event::WatchMissing { reason, .. } => self.say(format!("folder missing: {reason}")),
            Event::DestinationUnavailable { error, .. } => {
                self.say(format!("destination unavailable: {error}"))
            }
            _ => {}
        }
    }

    fn step(&mut self, size: u64) {
        self.files_done += 1;
        if let Some(bar) = &self.bar {
            bar.inc(size);
            bar.set_message(format!("{}/{} files", self.files_done, self.files_total));
        }
    }

    pub fn finish(self, r: &SyncReport) -> Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.json {
            #[derive(Serialize)]
            struct Summary<'a> {
                event: &'static str,
                complete: bool,
                #[serde(flatten)]
                report: &'a SyncReport,
            }
            return print_json(&Summary {
                event: "summary",
                complete: r.is_complete(),
                report: r,
            });
        }
        println!(
            "{} uploaded, {} already in the album, {} moved, {} unchanged, {} removed from albums; \
             {} failed, {} skipped, {} ignored",
            r.uploaded, r.linked, r.moved, r.unchanged, r.removed, r.failed, r.skipped, r.ignored
        );
        for p in &r.failures {
            println!("failed: {}: {}", p.path, p.reason);
        }
        for p in &r.skips {
            println!("skipped: {}: {}", p.path, p.reason);
        }
        if r.waiting > 0 {
            println!(
                "{} files are waiting for their destination or folder to come back",
                r.waiting
            );
        }
        if r.is_complete() {
            println!("every file is in its album");
        }
        Ok(())
    }
}

/// One object `shoebox verify` found wrong, as it is found.
pub fn verify_problem(p: &shoebox_core::VerifyProblem, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(p) {
            println!("{line}");
        }
        return;
    }
    let what = match p.finding {
        shoebox_core::Finding::Missing => "missing",
        shoebox_core::Finding::Damaged => "damaged",
        shoebox_core::Finding::Unexpected => "unexpected",
    };
    let repair = match p.queued_again {
        Some(true) => "; queued to be sent again",
        Some(false) => "; cannot be sent again: its source file is gone",
        None => "",
    };
    println!(
        "{what:<10} {}/{} on {}: {}{repair}",
        p.album, p.name, p.dest, p.detail
    );
}

/// The end of `shoebox verify`.
pub fn verify_report(r: &shoebox_core::VerifyReport, repair: bool, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    for why in &r.unavailable {
        println!("not checked: {why}");
    }
    println!(
        "checked {} file(s): {} missing, {} damaged, {} unexpected",
        r.checked, r.missing, r.damaged, r.unexpected
    );
    if repair && r.queued_again + r.cannot_repair > 0 {
        println!(
            "{} file(s) queued to be sent again by the next sync; {} cannot be (their source is gone)",
            r.queued_again, r.cannot_repair
        );
    } else if r.missing + r.damaged > 0 {
        println!("`shoebox verify --repair` queues them to be sent again");
    }
    Ok(())
}

/// What `shoebox restore` shows: a progress bar on a terminal, a line per
/// file otherwise, or JSON lines.
pub struct RestoreProgress {
    json: bool,
    bar: Option<ProgressBar>,
}

impl RestoreProgress {
    pub fn new(json: bool) -> RestoreProgress {
        RestoreProgress { json, bar: None }
    }

    pub fn event(&mut self, e: &shoebox_core::RestoreEvent) {
        use shoebox_core::{RestoreEvent, Restored};
        if self.json {
            if let Ok(line) = serde_json::to_string(e) {
                println!("{line}");
            }
            return;
        }
        match e {
            RestoreEvent::Planned { bytes, .. } if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(Some(*bytes), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {bytes}/{total_bytes} · {bytes_per_sec} · ETA {eta}",
                    )
                    .expect("valid template"),
                );
                self.bar = Some(bar);
            }
            RestoreEvent::Planned { files, bytes } => {
                println!("restoring {files} file(s), {bytes} bytes");
            }
            RestoreEvent::File {
                path,
                bytes,
                outcome,
                name,
                ..
            } => {
                let line = match outcome {
                    Restored::Restored => format!("restored {path}"),
                    Restored::Renamed => {
                        format!("restored {path} ({name} was taken by another file)")
                    }
                    Restored::AlreadyThere => format!("already there: {path}"),
                };
                match &self.bar {
                    Some(bar) => {
                        bar.inc(*bytes);
                        if *outcome == Restored::Renamed {
                            bar.println(line);
                        }
                    }
                    None => println!("{line}"),
                }
            }
            RestoreEvent::Failed { album, name, error } => {
                let line = format!("failed {album}/{name}: {error}");
                match &self.bar {
                    Some(bar) => bar.println(line),
                    None => println!("{line}"),
                }
            }
        }
    }

    pub fn finish(&mut self, r: &shoebox_core::RestoreReport) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.json {
            return print_json(r);
        }
        println!(
            "restored {} file(s) ({} under a new name because theirs was taken), {} already \
             there, {} failed",
            r.restored + r.renamed,
            r.renamed,
            r.already_there,
            r.failed
        );
        Ok(())
    }
}
