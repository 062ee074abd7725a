//! A damaged, lost or newer store: clear messages, `shoebox doctor`, and a
//! rebuilt index that uploads nothing twice.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use crate::support::*;

/// Backs up `n` small files and returns what the library must hold.
fn backed_up(env: &Env, n: usize) -> std::collections::BTreeMap<String, String> {
    let want = (0..n)
        .map(|i| {
            let data = bytes(&format!("f{i}"), 700);
            env.write(&format!("IMG_{i:04}.jpg"), &data);
            (format!("Photos/IMG_{i:04}.jpg"), hash(&data))
        })
        .collect();
    env.watch(&[]);
    env.sync().ok();
    want
}

/// Overwrites the root page of the file index (the `files` table) with
/// garbage, as a failing disk would.
fn damage_the_index(env: &Env) {
    let db = env.home.join("shoebox.db");
    assert!(
        !env.home.join("shoebox.db-wal").exists(),
        "the last engine checkpointed its WAL on exit, so the pages are in the file"
    );
    let (root, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'files'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let size = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap();
        (root, size)
    };
    let mut f = fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    f.write_all(&bytes("garbage", page_size as usize)).unwrap();
}

#[test]
fn a_damaged_store_is_reported_repaired_by_doctor_and_nothing_is_uploaded_twice() {
    let env = Env::new();
    let want = backed_up(&env, 300);
    damage_the_index(&env);

    let status = env.run(["status"]);
    assert_eq!(status.code, 2, "a damaged store is an error, not a crash");
    assert!(
        status.stderr.contains("shoebox doctor --repair"),
        "the message names the recovery command: {}",
        status.stderr
    );
    // `run` must exit with the message too, not loop or hang.
    let mut run = env.cmd();
    let mut child = run
        .args(["run"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run kept going on a damaged store"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(2), "run stops with the usage-error code");

    let check = env.run(["doctor"]);
    assert_eq!(
        check.code, 1,
        "doctor reports damage with exit 1: {}",
        check.stdout
    );
    assert!(check.stdout.contains("is damaged"), "{}", check.stdout);

    let repair = env.run(["doctor", "--repair", "--json"]).ok();
    let r = repair.json();
    let kept_watches = r["kept"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == "watches")
        .map(|pair| pair[1].clone());
    assert_eq!(kept_watches, Some(1.into()), "the watch survives: {r}");
    assert!(
        std::path::Path::new(r["moved_to"].as_str().unwrap()).exists(),
        "the damaged database is kept beside the new one"
    );
    assert!(env.run(["doctor"]).ok().stdout.contains("healthy"));

    let s = env.sync().ok().json();
    assert_eq!(
        s["uploaded"], 0,
        "every file is recognised in its album by content: {s}"
    );
    assert_eq!(s["linked"], 300, "{s}");
    assert_exactly(&env.library_files(), &want);
}

#[test]
fn a_store_lost_entirely_and_set_up_again_adopts_the_album_instead_of_duplicating_it() {
    let env = Env::new();
    let want = backed_up(&env, 50);
    // A name clash that is a different photo must still get its own name.
    fs::remove_file(env.home.join("shoebox.db")).unwrap();
    let other = bytes("another camera", 700);
    env.write("IMG_0000.jpg", &other);
    env.watch(&[]);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "only the changed photo is sent: {s}");
    let mut want = want;
    want.insert("Photos/IMG_0000 (2).jpg".into(), hash(&other));
    assert_exactly(&env.library_files(), &want);
}

#[test]
fn a_store_from_a_newer_version_is_refused_by_every_command_and_left_as_it_was() {
    let env = Env::new();
    backed_up(&env, 3);
    let db = env.home.join("shoebox.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = fs::read(&db).unwrap();
    for args in [
        &["status"][..],
        &["sync"],
        &["doctor", "--repair"],
        &["watch", "list"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?} refuses: {}{}", r.stdout, r.stderr);
        assert!(
            format!("{}{}", r.stdout, r.stderr).contains("newer version of Shoebox"),
            "{args:?} says why: {}{}",
            r.stdout,
            r.stderr
        );
    }
    assert_eq!(fs::read(&db).unwrap(), before, "not one byte of it changed");
}

#[test]
fn a_file_that_is_not_a_database_gets_the_doctor_message() {
    let env = Env::new();
    fs::create_dir_all(&env.home).unwrap();
    fs::write(env.home.join("shoebox.db"), vec![b'x'; 8192]).unwrap();
    let r = env.run(["status"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("shoebox doctor"), "{}", r.stderr);
    env.run(["doctor", "--repair"]).ok();
    env.run(["status"]).ok();
}
