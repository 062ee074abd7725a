//! Bad input, case by case: odd file names, special files, odd album names,
//! invalid command-line values and destination addresses. Each gets a clear
//! answer and leaves everything else alone. (More cases live in
//! `odd_input.rs` and `store_damage.rs`; docs/RELIABILITY.md lists them all.)

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::support::*;

#[test]
fn long_and_unicode_names_are_kept_and_never_collide() {
    let env = Env::new();
    let ascii_255 = format!("{}.jpg", "a".repeat(251));
    let multibyte_255 = format!("{}x.jpg", "é".repeat(125));
    assert_eq!((ascii_255.len(), multibyte_255.len()), (255, 255));
    let nfc = "caf\u{e9}.jpg";
    let nfd = "cafe\u{301}.jpg";
    let cases: &[(&str, &str)] = &[
        (&ascii_255, "long ascii"),
        (&multibyte_255, "long multibyte"),
        (nfc, "nfc"),
        (nfd, "nfd"),
        ("right\u{202e}gpj.exe.jpg", "bidi override"),
        ("  spaced  .jpg", "spaces"),
        ("quote\"star*colon:.jpg", "windows-invalid"),
    ];
    for (name, seed) in cases {
        env.write(name, &bytes(seed, 500));
    }
    // The same 255-byte name from another folder: its "(2)" must still fit.
    env.write(&format!("other/{ascii_255}"), &bytes("long twin", 500));
    env.watch(&[]);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], cases.len() + 1, "{s}");
    let lib = env.library_files();
    // Names are compared as the strictest disk compares them: the NFC and
    // NFD spellings are one name there, so the second takes " (2)"; and
    // characters FAT, exFAT and Windows refuse become full-width look-alikes.
    let stored = |name: &str| match name {
        "caf\u{e9}.jpg" => "caf\u{e9} (2).jpg".to_string(),
        "quote\"star*colon:.jpg" => "quote\u{FF02}star\u{FF0A}colon\u{FF1A}.jpg".to_string(),
        other => other.to_string(),
    };
    for (name, seed) in cases {
        assert_eq!(
            lib.get(&format!("Photos/{}", stored(name))),
            Some(&hash(&bytes(seed, 500))),
            "{seed}: stored under its own name with its own content"
        );
    }
    let twin = lib
        .iter()
        .find(|(_, h)| **h == hash(&bytes("long twin", 500)))
        .map(|(k, _)| k.clone())
        .expect("the twin of the long name is stored");
    assert!(
        twin.ends_with(" (2).jpg") && twin.len() - "Photos/".len() <= 255,
        "{twin}"
    );
    assert_eq!(
        env.sync().ok().json()["uploaded"],
        0,
        "all recognised next time"
    );
}

#[test]
fn sockets_and_device_files_are_skipped_with_a_reason_and_never_read() {
    let env = Env::new();
    env.write("real.jpg", &bytes("real", 100));
    let _socket = std::os::unix::net::UnixListener::bind(env.src.join("sock.jpg")).unwrap();
    // A device that would produce endless zeros if it were ever read.
    for (name, kind) in [("zero.jpg", "c"), ("loop.jpg", "b")] {
        let (major, minor) = if kind == "c" { ("1", "5") } else { ("7", "0") };
        let ok = Command::new("mknod")
            .arg(env.src.join(name))
            .args([kind, major, minor])
            .status()
            .unwrap();
        assert!(ok.success(), "mknod needs root (CI runs as root)");
    }
    env.watch(&[]);
    let r = env.sync().ok();
    let skipped: Vec<String> = r
        .events("file_skipped")
        .iter()
        .map(|e| format!("{} {}", e["path"], e["reason"]))
        .collect();
    for name in ["sock.jpg", "zero.jpg", "loop.jpg"] {
        assert!(
            skipped
                .iter()
                .any(|s| s.contains(name) && s.contains("not a regular file")),
            "{name} is skipped with its reason: {skipped:?}"
        );
    }
    assert_eq!(env.library_files().len(), 1, "only the real photo");
}

#[test]
fn hard_links_are_backed_up_and_deleting_one_name_keeps_the_content() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let data = bytes("linked", 5000);
    let a = env.write("a.jpg", &data);
    fs::hard_link(&a, env.src.join("b.jpg")).unwrap();
    env.watch(&["--on-delete", "remove"]);
    let s = env.sync().ok().json();
    assert_eq!(s["bytes_uploaded"], 5000, "the content is sent once: {s}");
    let lib = env.library_files();
    assert_eq!(lib.get("Photos/a.jpg"), Some(&hash(&data)), "{lib:?}");
    assert_eq!(
        lib.get("Photos/b.jpg"),
        Some(&hash(&data)),
        "both names: {lib:?}"
    );
    let inode = |n: &str| {
        fs::metadata(env.library().join("Photos").join(n))
            .unwrap()
            .ino()
    };
    assert_eq!(
        inode("a.jpg"),
        inode("b.jpg"),
        "stored once, as a hard link"
    );
    fs::remove_file(&a).unwrap();
    env.sync().ok();
    let lib = env.library_files();
    assert!(!lib.contains_key("Photos/a.jpg"), "{lib:?}");
    assert_eq!(
        lib.get("Photos/b.jpg"),
        Some(&hash(&data)),
        "b.jpg still needs the content: it stays"
    );
    assert_eq!(
        env.sync().ok().json()["uploaded"],
        0,
        "and nothing is sent again"
    );
}

#[test]
fn a_sparse_10_gib_file_is_backed_up_without_reading_or_writing_its_holes() {
    let env = Env::new();
    let p = env.src.join("disk.mov");
    let f = fs::File::create(&p).unwrap();
    f.set_len(10 << 30).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"header", 0).unwrap();
    f.write_all_at(b"middle", 5 << 30).unwrap();
    drop(f);
    env.watch(&[]);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    let copy = env.library().join("Photos/disk.mov");
    let meta = fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), 10 << 30, "the full length");
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "the copy is sparse too: {} bytes allocated",
        meta.blocks() * 512
    );
    let copy = fs::File::open(&copy).unwrap();
    let mut head = [0u8; 6];
    copy.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(&head, b"header");
    copy.read_exact_at(&mut head, 5 << 30).unwrap();
    assert_eq!(&head, b"middle", "the data between the holes is in place");
}

#[test]
fn odd_folder_names_become_safe_album_names() {
    let env = Env::new();
    for dir in [
        "nul",
        "COM1",
        "LPT9.old",
        "trailing dot.",
        "   ",
        "x".repeat(250).as_str(),
    ] {
        env.write(&format!("{dir}/a.jpg"), &bytes(dir, 100));
    }
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let albums: std::collections::BTreeSet<String> = env
        .library_files()
        .into_keys()
        .map(|k| k.split('/').next().unwrap().to_string())
        .collect();
    assert!(albums.contains("_nul") && albums.contains("_COM1") && albums.contains("_LPT9.old"));
    assert!(albums.contains("trailing dot"), "{albums:?}");
    assert_eq!(albums.len(), 6, "every folder its own album: {albums:?}");
    for a in &albums {
        assert!(
            a.len() <= 200 && !a.is_empty() && !a.starts_with('.'),
            "{a:?}"
        );
    }
}

/// Every case: the arguments, and a piece of the message that must explain it.
#[test]
fn invalid_command_line_values_are_refused_with_exit_2_and_a_reason() {
    let env = Env::new();
    let src = env.src.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sync", "--workers", "0"], "0 is not in 1..=64"),
        (vec!["sync", "--workers", "many"], "invalid digit"),
        (vec!["sync", "--settle", "banana"], "--settle"),
        (vec!["run", "--poll-every", "0s"], "at least 1s"),
        (vec!["run", "--full-scan-every", "10ms"], "at least 1s"),
        (vec!["run", "--poll-every", "soon"], "--poll-every"),
        (
            vec!["watch", "add", &src, "--mode", "weekly"],
            "use single, per-folder or by-date",
        ),
        (
            vec![
                "watch",
                "add",
                &src,
                "--mode",
                "by-date",
                "--date-format",
                "%Q",
            ],
            "not a valid pattern",
        ),
        (
            vec!["watch", "add", &src, "--on-delete", "maybe"],
            "use keep or remove",
        ),
        (vec!["watch", "add", &src, "--dest", "nowhere"], "nowhere"),
        (
            vec!["watch", "add", "/definitely/not/here"],
            "No such file or directory",
        ),
        (
            vec![
                "dest",
                "add",
                "nas",
                "local",
                "--path",
                "/definitely/not/here",
            ],
            "not/here",
        ),
        (vec!["dest", "remove", "library"], "library"),
        (
            vec!["dest", "add", "x", "webdav", "--url", "not a url"],
            "not a valid URL",
        ),
        (
            vec![
                "dest",
                "add",
                "x",
                "webdav",
                "--url",
                "ftp://nas.local/photos",
            ],
            "unsupported scheme",
        ),
        (
            vec!["dest", "add", "x", "webdav", "--url", "https://"],
            "host",
        ),
        (
            vec![
                "dest",
                "add",
                "x",
                "webdav",
                "--url",
                "https://me:hunter2@nas.local/dav",
            ],
            "--password-stdin",
        ),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    let mut wrong = Vec::new();
    for (args, why) in &cases {
        let r = env.run(args);
        if r.code != 2 || !r.stderr.contains(why) || r.stderr.contains("panicked") {
            wrong.push(format!("{args:?} → {} {}{}", r.code, r.stdout, r.stderr));
        }
        assert!(!r.stderr.contains("hunter2"), "a secret is never repeated");
    }
    assert!(
        wrong.is_empty(),
        "each is refused with exit 2 and a message that says why:\n{}",
        wrong.join("\n")
    );
    assert!(
        !env.home.join("shoebox.db").exists()
            || env.run(["dest", "list"]).ok().stdout.lines().count() == 1,
        "nothing was added by the refused commands"
    );
}
