//! S3 servers beyond Garage (`s3.rs`), each started on loopback by the
//! test: s3rver, the Node.js S3 server (npm, found through
//! `SHOEBOX_S3RVER`), and moto, the AWS mock Python projects test against
//! (PyPI, through `SHOEBOX_MOTO`); scripts/install-deps installs both
//! beside Garage. What the bucket holds is read back with rclone, an S3
//! client of its own.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// The credentials both servers take (s3rver's fixed ones; moto takes any).
const KEY: &str = "S3RVER";
const BUCKET: &str = "photos";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    S3rver,
    /// Keeps everything in memory: a restart loses the bucket.
    Moto,
}

struct S3Server {
    kind: Server,
    child: Child,
    port: u16,
    data: PathBuf,
}

impl S3Server {
    fn start(kind: Server, dir: &Path) -> S3Server {
        let data = dir.join("s3-server");
        fs::create_dir_all(&data).unwrap();
        let mut s = S3Server {
            kind,
            child: Command::new("true").spawn().unwrap(),
            port: free_port(),
            data,
        };
        s.restart();
        if kind == Server::Moto {
            let r = s.rclone(&["mkdir", &format!("s:{BUCKET}")]);
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        }
        s
    }

    fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            Server::S3rver => {
                let bin = std::env::var_os("SHOEBOX_S3RVER").unwrap_or_else(|| "s3rver".into());
                let mut c = Command::new(bin);
                c.arg("--directory").arg(&self.data);
                c.args(["--address", "127.0.0.1", "--port", &port]);
                c.args(["--configure-bucket", BUCKET, "--silent"]);
                c
            }
            Server::Moto => {
                let bin = std::env::var_os("SHOEBOX_MOTO").unwrap_or_else(|| "moto_server".into());
                let mut c = Command::new(bin);
                c.args(["-H", "127.0.0.1", "-p", &port]);
                c
            }
        };
        self.child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{:?} is installed (scripts/install-deps): {e}", self.kind));
        let deadline = std::time::Instant::now() + SECS(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after 30 s waiting for {:?} to listen",
                self.kind
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// rclone with an S3 remote `s:` for this server, run to its end.
    fn rclone(&self, args: &[&str]) -> std::process::Output {
        Command::new("rclone")
            .args(args)
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_S_TYPE", "s3")
            .env("RCLONE_CONFIG_S_PROVIDER", "Other")
            .env(
                "RCLONE_CONFIG_S_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port),
            )
            .env("RCLONE_CONFIG_S_ACCESS_KEY_ID", KEY)
            .env("RCLONE_CONFIG_S_SECRET_ACCESS_KEY", KEY)
            .env("RCLONE_CONFIG_S_REGION", "us-east-1")
            .env("RCLONE_CONFIG_S_FORCE_PATH_STYLE", "true")
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .expect("rclone is installed (scripts/install-deps)")
    }

    /// Every object in the bucket but Shoebox's staging, read back with
    /// rclone: key → hash.
    fn objects(&self) -> BTreeMap<String, String> {
        let out = self.data.join(format!("download-{}", free_port()));
        let r = self.rclone(&["copy", &format!("s:{BUCKET}"), out.to_str().unwrap()]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let objects = files_below(&out)
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".shoebox"))
            .collect();
        fs::remove_dir_all(&out).unwrap();
        objects
    }
}

impl Drop for S3Server {
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

/// The whole scenario against one S3 server: odd names in two albums and
/// a multipart video; an edit, renames, a move and a deletion; a pass with
/// nothing to do; the server killed and back (s3rver, which keeps its
/// bucket on disk).
fn the_whole_scenario_against(kind: Server) {
    let env = Env::new();
    let mut server = S3Server::start(kind, env.tmp.path());
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
    match kind {
        Server::S3rver => assert!(up >= 2 && moved >= 1, "{s}"),
        Server::Moto => assert_eq!((up, moved), (1, 3), "{s}"),
    }
    assert_eq!(server.objects(), want, "the changes reached the bucket");

    let s = sync(&env).ok().json();
    assert_eq!(
        (s["uploaded"].as_u64(), s["bytes_uploaded"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );

    // Killed and back: a new photo waits, then arrives.
    if kind == Server::Moto {
        return; // a restarted moto has lost the bucket
    }
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

#[test]
fn s3rver_passes_the_whole_scenario_and_a_copy_it_misreads_is_uploaded_instead() {
    the_whole_scenario_against(Server::S3rver);
}

#[test]
fn moto_passes_the_whole_scenario() {
    the_whole_scenario_against(Server::Moto);
}
