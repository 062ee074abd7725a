//! Crash safety and the one-engine lock.

use std::fs;
use std::io::Read;
use std::time::Duration;

use crate::support::*;

/// A tree big enough that a sync's JSON output overflows the pipe buffer:
/// a sync whose stdout is not read then blocks, mid-run, until it is.
fn big_tree(env: &Env, n: usize, size: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let rel = format!("d{}/IMG_{i:04}.jpg", i % 7);
            let data = bytes(&rel, size);
            env.write(&rel, &data);
            (format!("Photos/IMG_{i:04}.jpg"), hash(&data))
        })
        .collect()
}

/// SIGKILLs `sync` three times: during the scan, after 40 files and after
/// 250 (the tree must have more), checking what must hold after each kill.
fn kill_sync_during_scan_and_uploads(env: &Env, after_kill: impl Fn()) {
    for done_before_kill in [0, 40, 250] {
        let (mut child, mut out) = env.spawn_sync();
        read_until(&mut out, done_before_kill.max(1), |v| {
            if done_before_kill == 0 {
                v["event"] == "scan_started"
            } else {
                v["event"] == "file_done"
            }
        });
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        after_kill();
    }
}

#[test]
fn a_sync_killed_at_any_point_and_rerun_ends_with_every_file_exactly_once() {
    let env = Env::new();
    let want: std::collections::BTreeMap<_, _> = big_tree(&env, 600, 16_384).into_iter().collect();
    env.watch(&[]);
    // Kill during the scan, early in the uploads, and deep into them.
    kill_sync_during_scan_and_uploads(&env, || {
        let lib = env.library_files();
        for (rel, h) in &lib {
            assert_eq!(
                want.get(rel),
                Some(h),
                "after a kill, every library file is whole: {rel}"
            );
        }
    });
    let r = env.sync().ok();
    let s = r.json();
    assert_eq!(s["complete"], true);
    assert_eq!(
        env.library_files(),
        want,
        "every file present exactly once with the right content"
    );
    assert!(
        env.leftovers().is_empty(),
        "no temp files left: {:?}",
        env.leftovers()
    );
    let st = env.status();
    assert_eq!(st["queue"]["pending"], 0);
    assert_eq!(st["queue"]["in_progress"], 0);
    assert_eq!(st["watches"][0]["uploaded"], 600);
}

/// Three cards' Live Photos and their edits, all named alike: killed
/// during the scan and twice during the uploads, then run to the end,
/// every member is there once and each item's members share one number,
/// as if nothing had happened.
#[test]
fn items_killed_mid_upload_end_whole_with_one_number_each() {
    let env = Env::new();
    let mut want = std::collections::BTreeMap::new();
    for (card, n) in [("100APPLE", ""), ("101APPLE", " (2)"), ("102APPLE", " (3)")] {
        for i in 0..60 {
            for ext in ["HEIC", "MOV", "AAE"] {
                let data = bytes(&format!("{card}{i}{ext}"), 12_000);
                env.write(&format!("{card}/IMG_{i:04}.{ext}"), &data);
                want.insert(format!("Phone/IMG_{i:04}{n}.{ext}"), hash(&data));
            }
        }
    }
    env.watch(&["--album", "Phone"]);
    kill_sync_during_scan_and_uploads(&env, || {
        // Whatever is there already has its item's number.
        for (rel, h) in env.library_files() {
            assert_eq!(want.get(&rel), Some(&h), "after a kill: {rel}");
        }
    });
    let s = env.sync().ok().json();
    assert_eq!(s["complete"], true, "{s}");
    let lib = env.library_files();
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| lib.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(wrong.is_empty(), "misnamed or missing: {wrong:?}");
    assert_eq!(lib.len(), want.len(), "nothing twice");
}

/// 1,500 Live Photos with their edits, renamed in the source: killed three
/// times while the backup moves them (its output unread, so that it cannot
/// run far ahead), every member is at each moment under its old or its new
/// name, once. Renamed again before the rerun (moves a kill cut short among
/// them), every item ends wholly at its last names, nothing sent again and
/// nothing left behind.
#[test]
fn items_renamed_and_killed_mid_move_end_wholly_at_their_new_names() {
    let env = Env::new();
    let mut members = Vec::new();
    for i in 0..1500 {
        for ext in ["HEIC", "MOV", "AAE"] {
            let data = bytes(&format!("{i}{ext}"), 1000);
            env.write(&format!("Roll/IMG_{i:04}.{ext}"), &data);
            members.push((
                format!("IMG_{i:04}.{ext}"),
                format!("Trip_{i:04}.{ext}"),
                hash(&data),
            ));
        }
    }
    env.watch(&["--album", "Phone"]);
    env.sync().ok();
    for (old, new, _) in &members {
        fs::rename(
            env.src.join("Roll").join(old),
            env.src.join("Roll").join(new),
        )
        .unwrap();
    }
    let each_member_once = |when: &str| {
        let lib = env.library_files();
        for (old, new, h) in &members {
            let at: Vec<&String> = [old, new]
                .into_iter()
                .filter(|n| lib.get(&format!("Phone/{n}")) == Some(h))
                .collect();
            assert_eq!(
                at.len(),
                1,
                "{when}: {old} is under one of its names: {lib:?}"
            );
        }
        assert_eq!(lib.len(), members.len(), "{when}: nothing else: {lib:?}");
    };
    for moves_before_kill in [1, 100, 300] {
        let (mut child, mut out) = env.spawn_sync();
        read_until(&mut out, moves_before_kill, |v| v["event"] == "file_done");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let when = format!("killed after {moves_before_kill} moves");
        each_member_once(&when);
        let moved = env
            .library_files()
            .keys()
            .filter(|k| k.starts_with("Phone/Trip_"))
            .count();
        assert!(
            0 < moved && moved < members.len(),
            "{when}: the kill came in the middle of the moves ({moved} of {})",
            members.len()
        );
    }
    for (_, new, _) in &members {
        let again = new.replace("Trip_", "Beach_");
        fs::rename(
            env.src.join("Roll").join(new),
            env.src.join("Roll").join(again),
        )
        .unwrap();
    }
    let s = env.sync().ok().json();
    assert_eq!(s["complete"], true, "{s}");
    assert_eq!(s["bytes_uploaded"], 0, "moved, never sent again: {s}");
    let want: std::collections::BTreeMap<String, String> = members
        .iter()
        .map(|(_, new, h)| {
            (
                format!("Phone/{}", new.replace("Trip_", "Beach_")),
                h.clone(),
            )
        })
        .collect();
    assert_eq!(
        env.library_files(),
        want,
        "every item wholly at its last names"
    );
}

/// Uploads a crash left stored but unrecorded (the engine had not yet
/// written down that they finished): the next sync takes them up again
/// where they are. They are never deleted from the backup and sent again.
#[cfg(unix)]
#[test]
fn uploads_a_crash_left_unrecorded_stay_in_place_and_are_adopted() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let want: std::collections::BTreeMap<_, _> = big_tree(&env, 600, 16_384).into_iter().collect();
    env.watch(&[]);
    let (mut child, mut out) = env.spawn_sync();
    read_until(&mut out, 1, |v| v["event"] == "file_done");
    // Its stdout unread, the engine soon blocks on the full pipe while the
    // workers finish the uploads they hold: stored, not yet recorded.
    let unrecorded = || -> Vec<std::path::PathBuf> {
        let conn = rusqlite::Connection::open(env.home.join("shoebox.db")).unwrap();
        let mut st = conn
            .prepare("SELECT album, name FROM entries WHERE state = 'reserved'")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        rows.map(|r| r.unwrap())
            .map(|(album, name)| env.library().join(album).join(name))
            .filter(|p| p.exists())
            .collect()
    };
    poll_until(SECS(60), "uploads stored but not yet recorded", || {
        !unrecorded().is_empty()
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // A hard link to each keeps its inode taken: a copy sent again could
    // not get the same inode number back.
    let witness = env.home.join("witness");
    fs::create_dir(&witness).unwrap();
    let before: Vec<_> = unrecorded()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            fs::hard_link(&p, witness.join(i.to_string())).unwrap();
            let ino = fs::metadata(&p).unwrap().ino();
            (p, ino)
        })
        .collect();
    assert!(!before.is_empty());
    let s = env.sync().ok().json();
    assert_eq!(s["complete"], true);
    for (p, ino) in &before {
        let now = fs::metadata(p).map(|m| m.ino());
        assert_eq!(
            now.as_ref().ok(),
            Some(ino),
            "{} was kept in place, not deleted and sent again",
            p.display()
        );
    }
    assert_eq!(env.library_files(), want, "every file exactly once");
}

#[test]
fn a_second_sync_is_refused_while_one_runs_and_names_the_holder() {
    let env = Env::new();
    big_tree(&env, 800, 64);
    env.watch(&[]);
    let (mut first, mut out) = env.spawn_sync();
    // The lock is taken before the scan starts; the first sync then blocks
    // on its full stdout pipe, so it is certainly still running.
    read_until(&mut out, 1, |v| v["event"] == "scan_started");
    let second = env.run(["sync"]);
    assert_eq!(second.code, 2, "refused: {}", second.stderr);
    assert!(
        second.stderr.contains("another Shoebox engine"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "the message names the holder: {}",
        second.stderr
    );
    // Status still works while the engine runs.
    env.run(["status", "--json"]).ok();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(
        first.wait().unwrap().success(),
        "the first sync is unaffected"
    );
    assert_eq!(env.library_files().len(), 800);
    // And once it is done, the lock is free again.
    env.sync().ok();
}

/// The random moments of a crash run. `SHOEBOX_SOAK_KILLS` sets how many
/// kills (30 by default, as CI runs it; more for a soak by hand) and
/// `SHOEBOX_SOAK_SEED` replays a run; the seed is printed either way.
pub struct Chaos {
    state: u64,
    pub kills: usize,
}

impl Chaos {
    pub fn from_env() -> Chaos {
        let seed = std::env::var("SHOEBOX_SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        let kills = std::env::var("SHOEBOX_SOAK_KILLS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        eprintln!("crash run: {kills} kills, SHOEBOX_SOAK_SEED={seed}");
        Chaos {
            state: seed | 1,
            kills,
        }
    }

    /// A number in `0..below` (xorshift64*).
    pub fn below(&mut self, below: u64) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % below.max(1)
    }
}

/// What a crash run did, for its report.
#[derive(Debug, Default)]
pub struct Kills {
    pub kills: usize,
    /// Kills after which the WAL's unsynced tail was also cut off, as a
    /// power loss under `synchronous = NORMAL` may do.
    pub power_losses: usize,
    /// Kills that left a staged (uncommitted) upload behind.
    pub mid_upload: usize,
    /// Kills that left committed transactions in the WAL only.
    pub mid_store_write: usize,
    /// Kills after a checkpoint had started copying the WAL (whose frames
    /// are then synced and are not cut).
    pub after_checkpoint: usize,
}

/// `PRAGMA integrity_check` of the store, as the next engine would open it
/// (this runs SQLite's WAL recovery first).
#[track_caller]
pub fn assert_store_intact(env: &Env) {
    let conn = rusqlite::Connection::open(env.home.join("shoebox.db")).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok", "the store survived the kill intact");
}

/// Starts `sync` (built by `cmd`) again and again and SIGKILLs it at a
/// random moment each time (a run that finishes first gets a new batch of
/// files, so a long soak keeps killing real work): during the scan, or after a random number of
/// finished files plus a random few milliseconds (so the kill lands inside
/// uploads, store commits and renames, not only between them). Every third
/// kill is also a power loss: the tail of the WAL is cut at a random
/// length and the shared-memory index dropped. `after_kill` checks what
/// must hold at every moment.
pub fn kill_repeatedly(
    env: &Env,
    tree: &CrashTree,
    chaos: &mut Chaos,
    mut cmd: impl FnMut() -> std::process::Command,
    mut after_kill: impl FnMut(),
) -> Kills {
    use std::io::BufRead;
    let mut report = Kills::default();
    let mut started = 0;
    while report.kills < chaos.kills {
        started += 1;
        assert!(
            started < chaos.kills * 3,
            "the backup kept finishing before it could be killed"
        );
        let mut child = cmd()
            .args(["sync", "--json", "--settle", "100ms"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let during_scan = chaos.below(6) == 0;
        let wanted = if during_scan {
            1
        } else {
            1 + chaos.below((tree.len() / chaos.kills).max(1) as u64) as usize
        };
        let mut seen = 0;
        let mut line = String::new();
        while seen < wanted {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break; // it finished first
            }
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if during_scan && v["event"] == "scan_started"
                || !during_scan && v["event"] == "file_done"
            {
                seen += 1;
            }
        }
        if seen < wanted {
            // It finished first: give the next run new work to be killed in.
            child.wait().unwrap();
            tree.add_batch(env);
            continue;
        }
        // Random jitter so the kill is not always right after an event.
        std::thread::sleep(Duration::from_millis(chaos.below(25)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        report.kills += 1;
        let wal = env.home.join("shoebox.db-wal");
        let wal_len = fs::metadata(&wal).map_or(0, |m| m.len());
        if wal_len > 32 {
            report.mid_store_write += 1;
        }
        if staged_leftovers(env) {
            report.mid_upload += 1;
        }
        let durable = synced_wal_prefix(env);
        if durable > 32 {
            report.after_checkpoint += 1;
        }
        if report.kills % 3 == 0 && wal_len > durable {
            report.power_losses += 1;
            let keep = durable + chaos.below(wal_len - durable);
            fs::OpenOptions::new()
                .write(true)
                .open(&wal)
                .unwrap()
                .set_len(keep)
                .unwrap();
            let _ = fs::remove_file(env.home.join("shoebox.db-shm"));
        }
        assert_store_intact(env);
        after_kill();
    }
    eprintln!("crash run: {report:?}, {} files backed up", tree.len());
    report
}

/// The part of the WAL a power cut cannot take away: its header and every
/// frame a checkpoint has started copying into the database. Under
/// `synchronous = NORMAL`, SQLite syncs the WAL before a checkpoint copies
/// anything, so those frames are on disk; cutting them would fake a loss
/// no real power cut can cause (database pages whose WAL frames are gone).
/// Read from the wal-index: `nBackfillAttempted` at byte 128 of `-shm`, and
/// the page size from the WAL header.
fn synced_wal_prefix(env: &Env) -> u64 {
    let wal = fs::read(env.home.join("shoebox.db-wal")).unwrap_or_default();
    let shm = fs::read(env.home.join("shoebox.db-shm")).unwrap_or_default();
    if wal.len() < 32 || shm.len() < 132 {
        return 32;
    }
    let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as u64;
    let attempted = u32::from_ne_bytes(shm[128..132].try_into().unwrap()) as u64;
    32 + attempted * (24 + page_size)
}

/// True when the local library holds a staged upload (a kill mid-upload).
fn staged_leftovers(env: &Env) -> bool {
    let mut staged = Vec::new();
    walk_all(&env.library().join(".shoebox-staging"), &mut staged);
    !staged.is_empty()
}

/// What a crash run backs up: 2,000 files of 1–48 KiB in 20 folders and a
/// 3 MiB video to start with, and 200 more whenever a run finished before
/// it could be killed.
pub struct CrashTree {
    files: std::cell::RefCell<std::collections::BTreeMap<String, Vec<u8>>>,
    batches: std::cell::Cell<usize>,
}

impl CrashTree {
    pub fn new(env: &Env) -> CrashTree {
        let tree = CrashTree {
            files: Default::default(),
            batches: Default::default(),
        };
        for i in 0..2000 {
            let rel = format!("d{:02}/IMG_{i:04}.jpg", i % 20);
            tree.add(env, &rel, bytes(&rel, 1024 * (1 + i % 48)));
        }
        tree.add(env, "VID_0001.mp4", bytes("big", 3 << 20));
        tree
    }

    pub fn add(&self, env: &Env, rel: &str, data: Vec<u8>) {
        env.write(rel, &data);
        self.files.borrow_mut().insert(rel.to_string(), data);
    }

    pub fn add_batch(&self, env: &Env) {
        let k = self.batches.get() + 1;
        self.batches.set(k);
        for i in 0..200 {
            let rel = format!("more{k}/IMG_m{k}_{i:03}.jpg");
            self.add(env, &rel, bytes(&rel, 1024 * (1 + i % 48)));
        }
    }

    pub fn len(&self) -> usize {
        self.files.borrow().len()
    }

    /// What the single album `album` must hold: album/name → hash.
    pub fn want(&self, album: &str) -> std::collections::BTreeMap<String, String> {
        self.files
            .borrow()
            .iter()
            .map(|(rel, data)| {
                let name = rel.rsplit('/').next().unwrap();
                (format!("{album}/{name}"), hash(data))
            })
            .collect()
    }
}

#[test]
fn thirty_kills_and_power_losses_during_a_2000_file_backup_lose_and_duplicate_nothing() {
    let env = Env::new();
    let tree = CrashTree::new(&env);
    env.watch(&[]);
    let mut chaos = Chaos::from_env();
    let report = kill_repeatedly(
        &env,
        &tree,
        &mut chaos,
        || env.cmd(),
        || {
            let want = tree.want("Photos");
            for (rel, h) in env.library_files() {
                assert_eq!(
                    want.get(&rel),
                    Some(&h),
                    "after a kill, every file in an album is whole and expected: {rel}"
                );
            }
        },
    );
    assert!(report.kills >= chaos.kills);
    assert!(
        report.power_losses > 0,
        "some kills found store writes in the WAL to cut: {report:?}"
    );
    let s = env.sync().ok().json();
    assert_eq!(s["complete"], true);
    assert_exactly(&env.library_files(), &tree.want("Photos"));
    assert!(
        env.leftovers().is_empty(),
        "no temp files: {:?}",
        env.leftovers()
    );
    assert_store_intact(&env);
    let st = env.status();
    assert_eq!(st["queue"]["pending"], 0);
    assert_eq!(st["watches"][0]["uploaded"], tree.len());
}
