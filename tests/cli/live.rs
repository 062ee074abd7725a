//! `shoebox run`: the live engine on real folders with real file-system
//! events.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::time::Duration;

use crate::support::*;

#[test]
fn a_new_photo_arrives_within_settle_plus_3_seconds() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.spawn_run(&[]);
    let m = run.mark();
    let data = bytes("new", 300_000);
    env.write("IMG_1.jpg", &data);
    // The settle window is 1 s: the photo must be in its album within 4 s.
    let done = run.wait_for(m, SECS(4), done_for("IMG_1.jpg"));
    assert_eq!(done["outcome"], "uploaded");
    assert_eq!(env.library_files()["Photos/IMG_1.jpg"], hash(&data));
}

#[test]
fn a_file_written_slowly_over_20_seconds_arrives_once_and_whole() {
    let env = Env::new();
    env.watch(&[]);
    // The writer pauses 1 s between chunks, half the settle window: a
    // pause as long as the window would be a finished file by the rule.
    let run = env.spawn_run(&["--settle", "2s"]);
    let m = run.mark();
    let chunks: Vec<Vec<u8>> = (0..20)
        .map(|i| bytes(&format!("chunk{i}"), 50_000))
        .collect();
    let whole: Vec<u8> = chunks.concat();
    let target = env.library().join("Photos/slow.mov");
    let mut f = fs::File::create(env.src.join("slow.mov")).unwrap();
    for chunk in &chunks {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        // While it is being written, the library never shows any version.
        assert!(!target.exists(), "a partial version reached the library");
        std::thread::sleep(Duration::from_millis(1000)); // the writer's pace, not a synchronisation
    }
    drop(f);
    run.wait_for(m, SECS(10), done_for("slow.mov"));
    assert_eq!(
        hash(&fs::read(&target).unwrap()),
        hash(&whole),
        "the complete file arrived"
    );
    let uploads = run
        .events_after(m)
        .into_iter()
        .filter(|v| done_for("slow.mov")(v))
        .count();
    assert_eq!(uploads, 1, "uploaded once");
}

#[test]
fn an_editor_style_atomic_save_is_uploaded_as_an_edit() {
    let env = Env::new();
    env.write("IMG.jpg", &bytes("v1", 10_000));
    env.watch(&[]);
    let run = env.spawn_run(&[]);
    run.wait_for(0, SECS(10), done_for("IMG.jpg"));
    let m = run.mark();
    let tmp = env.write(".IMG.jpg.tmp~", &bytes("v2", 12_000));
    fs::rename(&tmp, env.src.join("IMG.jpg")).unwrap();
    let done = run.wait_for(m, SECS(10), done_for("IMG.jpg"));
    assert_eq!(done["outcome"], "uploaded");
    let lib = env.library_files();
    assert_eq!(lib.len(), 1, "replaced, not added: {lib:?}");
    assert_eq!(lib["Photos/IMG.jpg"], hash(&bytes("v2", 12_000)));
}

#[test]
fn a_copied_tree_of_2000_files_arrives_completely() {
    let env = Env::new();
    let staging = env.tmp.path().join("card");
    let mut want = std::collections::BTreeMap::new();
    for i in 0..2000 {
        let rel = format!("DCIM/{:03}CANON/IMG_{i:04}.JPG", 100 + i % 10);
        let data = bytes(&rel, 2048);
        let p = staging.join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, &data).unwrap();
        want.insert(format!("Card/IMG_{i:04}.JPG"), hash(&data));
    }
    env.watch(&["--album", "Card"]);
    let run = env.spawn_run(&[]);
    let m = run.mark();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(staging.join("DCIM"))
        .arg(&env.src)
        .status()
        .unwrap();
    assert!(status.success());
    run.wait_count(m, 2000, SECS(120), |v| v["event"] == "file_done");
    assert_eq!(env.library_files(), want, "every file, once, whole");
}

#[test]
fn a_change_during_upload_ends_with_the_final_content_uploaded() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.spawn_run(&["--settle", "200ms"]);
    let m = run.mark();
    let first = bytes("first", 64 << 20);
    env.write("big.mov", &first);
    // Change it as soon as the engine reports the upload in progress.
    run.wait_until(SECS(20), || {
        let st = env.status();
        st["uploading"].as_array().is_some_and(|u| !u.is_empty()) || done_count(&run, m) > 0
    });
    let last = bytes("last", 64 << 20);
    fs::write(env.src.join("big.mov"), &last).unwrap();
    let want = hash(&last);
    run.wait_until(SECS(30), || {
        env.library_files().get("Photos/big.mov") == Some(&want)
    });
    assert_eq!(env.library_files().len(), 1);
}

fn done_count(run: &Running, mark: usize) -> usize {
    run.events_after(mark)
        .iter()
        .filter(|v| v["event"] == "file_done")
        .count()
}

#[test]
fn a_root_renamed_away_is_missing_with_no_deletions_and_resumes_when_back() {
    let env = Env::new();
    env.write("a.jpg", &bytes("a", 1000));
    env.write("b.jpg", &bytes("b", 1000));
    env.watch(&["--on-delete", "remove"]);
    let run = env.spawn_run(&[]);
    run.wait_count(0, 2, SECS(10), |v| v["event"] == "file_done");
    let m = run.mark();
    let away = env.tmp.path().join("away");
    fs::rename(&env.src, &away).unwrap();
    run.wait_for(m, SECS(10), |v| v["event"] == "watch_missing");
    assert_eq!(env.status()["watches"][0]["state"], "folder_missing");
    assert_eq!(
        env.library_files().len(),
        2,
        "nothing deleted while the folder is away"
    );
    fs::write(away.join("c.jpg"), bytes("c", 1000)).unwrap();

    let m = run.mark();
    fs::rename(&away, &env.src).unwrap();
    run.wait_for(m, SECS(15), done_for("c.jpg"));
    let names: Vec<_> = env.library_files().into_keys().collect();
    assert_eq!(names, ["Photos/a.jpg", "Photos/b.jpg", "Photos/c.jpg"]);
    assert_ne!(env.status()["watches"][0]["state"], "folder_missing");
    assert!(
        run.events_after(0)
            .iter()
            .all(|v| v["event"] != "file_removed"),
        "no deletions at any point"
    );
}

#[test]
fn a_forced_low_watch_limit_degrades_to_scanning_and_files_still_arrive() {
    let env = Env::new();
    for d in ["a", "b", "c"] {
        env.write(&format!("{d}/x.jpg"), &bytes(d, 100));
    }
    env.watch(&[]);
    env.sync().ok(); // the engine then knows the folder count up front
    let run = env.spawn_run(&["--watch-limit", "2", "--poll-every", "1s"]);
    let w = run.wait_for(0, SECS(5), |v| v["event"] == "watcher");
    let state = w["state"].as_str().unwrap();
    assert!(state.starts_with("degraded"), "{state}");
    assert!(
        state.contains("fs.inotify.max_user_watches="),
        "says which sysctl to raise and to what: {state}"
    );
    assert!(
        env.status()["watches"][0]["watcher"]
            .as_str()
            .unwrap()
            .starts_with("degraded")
    );
    let m = run.mark();
    env.write("b/new.jpg", &bytes("new", 100));
    run.wait_for(m, SECS(10), done_for("new.jpg"));
}

#[test]
fn mass_deletion_is_held_until_confirmed() {
    let env = Env::new();
    for i in 0..100 {
        env.write(&format!("IMG_{i:03}.jpg"), &bytes(&i.to_string(), 100));
    }
    env.watch(&["--on-delete", "remove"]);
    let run = env.spawn_run(&[]);
    run.wait_count(0, 100, SECS(30), |v| v["event"] == "file_done");
    let m = run.mark();
    for i in 0..80 {
        fs::remove_file(env.src.join(format!("IMG_{i:03}.jpg"))).unwrap();
    }
    let held = run.wait_for(m, SECS(20), |v| v["event"] == "deletions_held");
    assert_eq!(held["count"], 80);
    assert_eq!(env.library_files().len(), 100, "held: nothing deleted");
    let w = &env.status()["watches"][0];
    assert_eq!(w["state"], "deletions_held");
    assert_eq!(w["deletions_held"], 80);

    let m = run.mark();
    env.run([
        OsStr::new("watch"),
        OsStr::new("confirm-deletions"),
        env.src.as_os_str(),
    ])
    .ok();
    run.wait_count(m, 80, SECS(20), |v| v["event"] == "file_removed");
    assert_eq!(env.library_files().len(), 20);
    assert_eq!(env.status()["watches"][0]["deletions_held"], 0);
}

#[test]
fn held_deletions_can_be_dropped_and_the_files_stay() {
    let env = Env::new();
    for i in 0..60 {
        env.write(&format!("IMG_{i:03}.jpg"), &bytes(&i.to_string(), 100));
    }
    env.watch(&["--on-delete", "remove"]);
    env.sync().ok();
    for i in 0..60 {
        fs::remove_file(env.src.join(format!("IMG_{i:03}.jpg"))).unwrap();
    }
    let s = env.sync().ok().json();
    assert!(
        s["deletions_held"][0]
            .as_str()
            .unwrap()
            .contains("confirm-deletions"),
        "{s}"
    );
    env.run([
        OsStr::new("watch"),
        OsStr::new("keep-files"),
        env.src.as_os_str(),
    ])
    .ok();
    let s = env.sync().ok().json();
    assert_eq!(s["removed"], 0);
    assert_eq!(env.library_files().len(), 60, "kept in the album");
    assert_eq!(env.status()["watches"][0]["state"], "up_to_date");
}

#[test]
fn pause_and_resume_from_a_second_process() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.spawn_run(&[]);
    env.run(["pause"]).ok();
    assert_eq!(env.status()["paused"], true);
    let m = run.mark();
    env.write("IMG.jpg", &bytes("x", 1000));
    // Nothing can signal "did not upload"; give the engine settle + 2 s to
    // (wrongly) upload, which it would have done unpaused.
    std::thread::sleep(SECS(3));
    assert!(
        run.events_after(m)
            .iter()
            .all(|v| v["event"] != "file_done"),
        "paused: nothing uploaded"
    );
    assert!(!env.library().join("Photos/IMG.jpg").exists());
    let m = run.mark();
    env.run(["resume"]).ok();
    run.wait_for(m, SECS(4), done_for("IMG.jpg"));
    assert_eq!(env.status()["paused"], false);
}

/// The local time of day `hours` from now, as `HH:MM`.
fn hhmm(hours: i64) -> String {
    (chrono::Local::now().time() + chrono::Duration::hours(hours))
        .format("%H:%M")
        .to_string()
}

/// Outside the schedule's hours the engine holds uploads and says until
/// when; "back up now anyway" lifts them until they end; inside the hours
/// (or with the schedule lifted) uploads go.
#[test]
fn outside_the_scheduled_hours_uploads_wait_and_status_says_until_when() {
    let env = Env::new();
    env.watch(&[]);
    // Uploads run from two hours from now, for an hour.
    let window = format!("{}-{}", hhmm(2), hhmm(3));
    let set = env.run(["config", "set", "schedule", &window]).ok().stdout;
    assert!(set.contains(&format!("schedule is now {window}")), "{set}");
    let run = env.spawn_run(&[]);
    env.write("IMG_1.jpg", &bytes("1", 1000));
    wait_until(SECS(30), "the photo held by the schedule", || {
        let s = env.status();
        s["waiting"]["reason"] == "schedule" && s["waiting"]["held"] == 1
    });
    assert_eq!(env.status()["waiting"]["until"], hhmm(2));
    assert!(
        env.library_files().is_empty(),
        "nothing uploaded outside the hours"
    );

    // Back up now anyway: it goes, and the schedule stays.
    let m = run.mark();
    env.run(["resume", "--anyway"]).ok();
    run.wait_for(m, SECS(10), done_for("IMG_1.jpg"));
    assert!(env.status().get("waiting").is_none());
    assert_eq!(
        env.run(["config", "get", "schedule"]).ok().stdout.trim(),
        window
    );

    // Hours that hold now: photos go.
    let now_inside = format!("{}-{}", hhmm(-1), hhmm(1));
    env.run(["config", "set", "schedule", &now_inside]).ok();
    let m = run.mark();
    env.write("IMG_2.jpg", &bytes("2", 1000));
    run.wait_for(m, SECS(10), done_for("IMG_2.jpg"));

    // Paused hours that hold now, then no schedule at all.
    let quiet_now = format!("pause {}-{}", hhmm(-1), hhmm(1));
    env.run(["config", "set", "schedule", &quiet_now]).ok();
    env.write("IMG_3.jpg", &bytes("3", 1000));
    wait_until(SECS(30), "the third photo held", || {
        env.status()["waiting"]["held"] == 1
    });
    let m = run.mark();
    env.run(["config", "set", "schedule", "off"]).ok();
    run.wait_for(m, SECS(10), done_for("IMG_3.jpg"));
    assert_eq!(env.library_files().len(), 3);
    let nothing = env.run(["resume", "--anyway"]);
    assert_ne!(nothing.code, 0);
    assert!(
        nothing.stderr.contains("nothing holds uploads"),
        "{}",
        nothing.stderr
    );
}

/// A `limit` schedule: inside its hours the running engine uploads at
/// `schedule-bandwidth`, outside them at `bandwidth` (here: none).
#[test]
fn a_limit_schedule_puts_its_own_rate_in_force_in_its_hours() {
    let env = Env::new();
    env.watch(&[]);
    env.run(["config", "set", "schedule-bandwidth", "500kB/s"])
        .ok();
    let now_inside = format!("limit {}-{}", hhmm(-1), hhmm(1));
    env.run(["config", "set", "schedule", &now_inside]).ok();
    let _run = env.spawn_run(&[]);
    wait_until(SECS(30), "the schedule's rate in force", || {
        env.status()["bandwidth_limit"] == 500_000
    });
    assert!(
        env.status().get("waiting").is_none(),
        "a limit never holds uploads"
    );
    let later = format!("limit {}-{}", hhmm(2), hhmm(3));
    env.run(["config", "set", "schedule", &later]).ok();
    wait_until(SECS(30), "no limit outside the hours", || {
        env.status().get("bandwidth_limit").is_none()
    });
    env.run(["config", "set", "bandwidth", "2MB/s"]).ok();
    wait_until(SECS(30), "bandwidth in force outside the hours", || {
        env.status()["bandwidth_limit"] == 2_000_000
    });
}

#[test]
fn a_watch_added_while_running_takes_effect() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.spawn_run(&[]);
    let other = env.tmp.path().join("Phone");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("PXL_1.jpg"), bytes("pxl", 1000)).unwrap();
    let m = run.mark();
    env.run([OsStr::new("watch"), OsStr::new("add"), other.as_os_str()])
        .ok();
    // Taken up within 2 s, then the file settles (1 s).
    run.wait_for(m, SECS(4), done_for("PXL_1.jpg"));
    assert!(env.library_files().contains_key("Phone/PXL_1.jpg"));
}

#[test]
fn sigterm_exits_0_within_10_seconds_even_while_uploading() {
    let env = Env::new();
    for i in 0..300 {
        env.write(&format!("d/IMG_{i}.jpg"), &bytes(&i.to_string(), 200_000));
    }
    env.watch(&[]);
    let mut run = env.spawn_run(&["--settle", "0s"]);
    run.wait_for(0, SECS(30), |v| v["event"] == "file_done");
    run.signal(libc::SIGTERM);
    let status = run
        .wait_exit(SECS(10))
        .expect("still running 10 s after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let st = env.status();
    assert_eq!(
        st["queue"]["in_progress"], 0,
        "nothing left marked in progress"
    );
    assert_eq!(
        st["engine"],
        serde_json::Value::Null,
        "the lock is released"
    );
}

#[test]
fn kill_9_during_a_1000_file_burst_then_restart_ends_with_every_file_once() {
    let env = Env::new();
    env.watch(&[]);
    let run = env.spawn_run(&["--settle", "200ms"]);
    let m = run.mark();
    let mut want = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let rel = format!("burst/{}/IMG_{i:04}.jpg", i % 10);
        let data = bytes(&rel, 8192);
        env.write(&rel, &data);
        want.insert(format!("Photos/IMG_{i:04}.jpg"), hash(&data));
    }
    run.wait_count(m, 100, SECS(60), |v| v["event"] == "file_done");
    drop(run); // SIGKILL
    let run = env.spawn_run(&["--settle", "200ms"]);
    run.wait_until(SECS(120), || {
        env.library_files().len() >= 1000 && env.status()["queue"]["pending"] == 0
    });
    assert_eq!(env.library_files(), want, "every file exactly once, whole");
    assert!(
        env.leftovers().is_empty(),
        "no temp files: {:?}",
        env.leftovers()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn an_idle_engine_does_not_wake_up() {
    let env = Env::new();
    for i in 0..200 {
        env.write(
            &format!("d{}/IMG_{i}.jpg", i % 20),
            &bytes(&i.to_string(), 100),
        );
    }
    env.watch(&[]);
    let run = env.spawn_run(&[]);
    run.wait_count(0, 200, SECS(30), |v| v["event"] == "file_done");
    // Let the last progress report go out, then measure a quiet window.
    run.wait_until(SECS(10), || {
        env.status()["uploading"]
            .as_array()
            .is_some_and(|u| u.is_empty())
    });
    std::thread::sleep(SECS(2));
    let switches = || -> u64 {
        let mut total = 0;
        for task in fs::read_dir(format!("/proc/{}/task", run.child.id())).unwrap() {
            let status =
                fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
            for line in status.lines() {
                if let Some(n) = line.strip_prefix("voluntary_ctxt_switches:") {
                    total += n.trim().parse::<u64>().unwrap();
                }
            }
        }
        total
    };
    let before = switches();
    std::thread::sleep(SECS(5)); // the measurement window
    let woke = switches() - before;
    assert!(woke <= 5, "idle for 5 s, yet its threads woke {woke} times");
}
