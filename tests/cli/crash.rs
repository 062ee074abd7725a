//! Crash safety and the one-engine lock.

use std::io::Read;

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

#[test]
fn a_sync_killed_at_any_point_and_rerun_ends_with_every_file_exactly_once() {
    let env = Env::new();
    let want: std::collections::BTreeMap<_, _> = big_tree(&env, 600, 16_384).into_iter().collect();
    env.watch(&[]);
    // Kill during the scan, early in the uploads, and deep into them.
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
        let lib = env.library_files();
        for (rel, h) in &lib {
            assert_eq!(
                want.get(rel),
                Some(h),
                "after a kill, every library file is whole: {rel}"
            );
        }
    }
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
