//! S3 servers beyond Garage (`s3.rs`): s3rver, the Node.js S3 server
//! (npm, installed by scripts/install-deps beside Garage and found through
//! `SHOEBOX_S3RVER`), started on loopback by the test. Its folder on disk is
//! the ground truth: each object `key` is a file `key._S3rver_object`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// s3rver's fixed credentials.
const KEY: &str = "S3RVER";
const BUCKET: &str = "photos";
const OBJECT_SUFFIX: &str = "._S3rver_object";

struct S3rver {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl S3rver {
    fn start(dir: &Path) -> S3rver {
        let port = free_port();
        let data = dir.join("s3rver");
        fs::create_dir_all(&data).unwrap();
        let mut s = S3rver {
            child: Command::new("true").spawn().unwrap(),
            port,
            data,
        };
        s.restart();
        s
    }

    fn restart(&mut self) {
        self.kill();
        let bin = std::env::var_os("SHOEBOX_S3RVER").unwrap_or_else(|| "s3rver".into());
        self.child = Command::new(bin)
            .arg("--directory")
            .arg(&self.data)
            .args(["--address", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--configure-bucket", BUCKET, "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3rver is installed (scripts/install-deps)");
        let deadline = std::time::Instant::now() + SECS(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after 30 s waiting for s3rver to listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every object in the bucket but Shoebox's staging: key → hash.
    fn objects(&self) -> BTreeMap<String, String> {
        files_below(&self.data.join(BUCKET))
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_suffix(OBJECT_SUFFIX)?.to_string(), v)))
            .filter(|(k, _)| !k.starts_with(".shoebox"))
            .collect()
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        self.kill();
    }
}

fn shoebox(env: &Env, args: &[&str]) -> Run {
    Run::from(
        env.cmd()
            .env("SHOEBOX_SECRET_S3RVER", KEY)
            .args(args)
            .output()
            .unwrap(),
    )
}

fn sync(env: &Env) -> Run {
    shoebox(env, &["sync", "--json", "--settle", "100ms"])
}

#[test]
fn s3rver_passes_the_whole_scenario_and_a_copy_it_misreads_is_uploaded_instead() {
    let env = Env::new();
    let mut server = S3rver::start(env.tmp.path());
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    shoebox(
        &env,
        &[
            "dest",
            "add",
            "s3rver",
            "s3",
            "--endpoint",
            &endpoint,
            "--bucket",
            BUCKET,
            "--path-style",
            "--access-key-id",
            KEY,
            "--allow-insecure-http",
        ],
    )
    .ok();
    let test = shoebox(&env, &["dest", "test", "s3rver"]).ok();
    assert!(!test.stdout.contains("FAIL"), "{}", test.stdout);

    let mut want = BTreeMap::new();
    let names = [
        "a b.jpg",
        "caf\u{e9}.jpg",
        "50% off.jpg",
        "#1.jpg",
        "a+b.jpg",
        "x&y=z.jpg",
        "[raw] 1.jpg",
        "b;c.jpg",
        "\u{1f4f7} sunset.jpg",
    ];
    for folder in ["Trip one", "Misc #2"] {
        for (i, name) in names.iter().enumerate() {
            let data = bytes(&format!("{folder}/{name}"), 2000 + 100 * i);
            env.write(&format!("{folder}/{name}"), &data);
            want.insert(format!("{folder}/{name}"), hash(&data));
        }
    }
    // Past the multipart threshold.
    let video = bytes("video", 20 << 20);
    env.write("Trip one/clip.mov", &video);
    want.insert("Trip one/clip.mov".into(), hash(&video));
    env.watch(&[
        "--mode",
        "per-folder",
        "--dest",
        "s3rver",
        "--on-delete",
        "remove",
    ]);
    let s = sync(&env).ok().json();
    assert_eq!(s["uploaded"], want.len(), "{s}");
    assert_eq!(server.objects(), want, "every name arrives whole");

    // An edit, renames (s3rver misreads some names in a copy's source:
    // those are uploaded instead of failing for ever), a move and a
    // deletion.
    let trip = env.src.join("Trip one");
    let edited = bytes("edited", 2500);
    fs::write(trip.join("a b.jpg"), &edited).unwrap();
    want.insert("Trip one/a b.jpg".into(), hash(&edited));
    for moved in [
        ("Trip one/a+b.jpg", "Trip one/a+c.jpg"),
        ("Trip one/#1.jpg", "Trip one/#1 renamed.jpg"),
        ("Trip one/50% off.jpg", "Misc #2/50% moved.jpg"),
    ] {
        rename_expected(&env, &mut want, moved, str::to_string);
    }
    fs::remove_file(trip.join("b;c.jpg")).unwrap();
    want.remove("Trip one/b;c.jpg");
    let s = sync(&env).ok().json();
    assert_eq!(s["failed"], 0, "{s}");
    // s3rver misreads `+` and `#` in a copy's source: those renames are
    // uploaded, the others moved without bytes.
    let (up, moved) = (
        s["uploaded"].as_u64().unwrap(),
        s["moved"].as_u64().unwrap(),
    );
    assert_eq!(up + moved, 4, "{s}");
    assert!(up >= 2 && moved >= 1, "{s}");
    assert_eq!(server.objects(), want, "the changes reached the bucket");

    let s = sync(&env).ok().json();
    assert_eq!(
        (s["uploaded"].as_u64(), s["bytes_uploaded"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );

    // Killed and back: a new photo waits, then arrives.
    server.kill();
    let late = bytes("late", 3000);
    env.write("Misc #2/late.jpg", &late);
    let r = sync(&env);
    assert_ne!(r.code, 0, "the pass says the server is down: {}", r.stdout);
    assert_eq!(r.json()["waiting"], 1, "{}", r.stdout);
    server.restart();
    let s = sync(&env).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    want.insert("Misc #2/late.jpg".into(), hash(&late));
    assert_eq!(server.objects(), want);
}
