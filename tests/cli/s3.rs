//! The S3 destination against a real single-node Garage on loopback,
//! started by each test (`garage` from scripts/install-deps). What is in the
//! bucket is read back with rclone (an independent S3 client), so content
//! hashes are compared end to end. A counting, fault-injecting proxy sits
//! in front of Garage where a test needs to see or disturb the traffic.
//! No keyring service runs here, so secrets take the documented
//! environment-variable path.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::{EVERY_FAULT, Fault, Proxy};
use crate::support::*;

pub const KEY_ID: &str = "GK31c2f218a2e44f485b94239e";
pub const SECRET: &str = "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f93d36da6b94e7e2b";
pub const BUCKET: &str = "photos";

fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SHOEBOX_GARAGE") {
        return p.into();
    }
    let cached = Path::new("/var/cache/shoebox-ci/tools/bin/garage");
    if cached.exists() {
        return cached.into();
    }
    "garage".into()
}

/// A single-node Garage with one bucket and one key.
pub struct Garage {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
    pub s3_port: u16,
}

impl Garage {
    pub fn start(dir: &Path) -> Garage {
        fs::create_dir_all(dir).unwrap();
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.join("garage.toml");
        fs::write(
            &config,
            format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#,
                meta = dir.join("meta").display(),
                data = dir.join("data").display(),
                rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6",
            ),
        )
        .unwrap();
        let mut g = Garage {
            child: None,
            dir: dir.to_path_buf(),
            config,
            s3_port,
        };
        g.resume();
        let node = g.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", BUCKET]);
        g.cli(&["key", "import", "--yes", "-n", "shoebox", KEY_ID, SECRET]);
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "shoebox",
        ]);
        // The bucket answers once the layout is live.
        g.wait_until_serving();
        g
    }

    /// Runs a `garage` admin command, which must succeed; returns stdout.
    fn cli(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(garage_bin())
                .arg("-c")
                .arg(&self.config)
                .args(args)
                .output()
                .expect("garage is installed (scripts/install-deps)");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            // The daemon may still be starting: its RPC port comes up late.
            assert!(
                Instant::now() < deadline,
                "garage {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !rclone(self.s3_port, &["lsf", &format!("g:{BUCKET}")])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "Garage does not serve the bucket"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server (kill), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server (again) on the same ports and data.
    pub fn resume(&mut self) {
        let log = fs::File::create(self.dir.join("garage.log")).unwrap();
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage is installed (scripts/install-deps)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(Instant::now() < deadline, "garage did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every object in the bucket: key → BLAKE3 of its content.
    pub fn objects(&self) -> BTreeMap<String, String> {
        let out = self.dir.join(format!("download-{}", free_port()));
        let r = rclone(
            self.s3_port,
            &["copy", &format!("g:{BUCKET}"), out.to_str().unwrap()],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let mut files = BTreeMap::new();
        let mut todo = vec![out.clone()];
        while let Some(d) = todo.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    let rel = e
                        .path()
                        .strip_prefix(&out)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    files.insert(rel, hash(&fs::read(e.path()).unwrap()));
                }
            }
        }
        fs::remove_dir_all(&out).ok();
        files
    }

    /// Every object's modification time as rclone reads it (the `mtime`
    /// metadata, else the upload time): key → RFC 3339.
    pub fn modified(&self) -> BTreeMap<String, String> {
        let r = rclone(
            self.s3_port,
            &["lsjson", "-R", "--files-only", &format!("g:{BUCKET}")],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&r.stdout).unwrap();
        listed
            .iter()
            .map(|o| {
                let key = o["Path"].as_str().unwrap().to_string();
                (key, o["ModTime"].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// Gives `key` another date, as rclone would.
    pub fn touch(&self, key: &str, rfc3339: &str) {
        let target = format!("g:{BUCKET}/{key}");
        let r = rclone(self.s3_port, &["touch", "--timestamp", rfc3339, &target]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn unfinished_uploads(&self) -> String {
        let r = rclone(
            self.s3_port,
            &["backend", "list-multipart-uploads", &format!("g:{BUCKET}")],
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let text = String::from_utf8_lossy(&r.stdout).into_owned();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v.as_object()
            .map(|m| {
                m.values()
                    .filter(|l| l.as_array().is_some_and(|a| !a.is_empty()))
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The rclone path of an object of the test bucket.
pub fn object(album: &str, name: &str) -> String {
    format!("g:{BUCKET}/{album}/{name}")
}

/// rclone with an S3 remote `g:` for the Garage on `port`, run to its end.
pub fn rclone(port: u16, args: &[&str]) -> std::process::Output {
    rclone_command(port, args)
        .output()
        .expect("rclone is installed (scripts/install-deps)")
}

/// The rclone command with an S3 remote `g:` for the Garage on `port`.
pub fn rclone_command(port: u16, args: &[&str]) -> Command {
    let mut c = Command::new("rclone");
    c.args(args)
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_G_TYPE", "s3")
        .env("RCLONE_CONFIG_G_PROVIDER", "Other")
        .env(
            "RCLONE_CONFIG_G_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("RCLONE_CONFIG_G_ACCESS_KEY_ID", KEY_ID)
        .env("RCLONE_CONFIG_G_SECRET_ACCESS_KEY", SECRET)
        .env("RCLONE_CONFIG_G_REGION", "garage")
        .env("RCLONE_CONFIG_G_FORCE_PATH_STYLE", "true")
        .env_remove("AWS_CA_BUNDLE");
    c
}

/// `dest add garage s3 …` pointing at `port` (Garage or a proxy in front of it).
pub fn add_dest(env: &Env, port: u16, extra: &[&str]) -> Run {
    let mut child = env
        .cmd()
        .args([
            "dest",
            "add",
            "garage",
            "s3",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--bucket",
            BUCKET,
            "--region",
            "garage",
            "--path-style",
            "--access-key-id",
            KEY_ID,
            "--secret-stdin",
        ])
        .args(extra)
        .env("SHOEBOX_SECRET_GARAGE", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{SECRET}").unwrap();
    let out = child.wait_with_output().unwrap();
    Run::from(out)
}

/// `sync --json` with the secret in the environment (no keyring here).
pub fn sync_s3(env: &Env, secret: &str) -> Run {
    Run::from(
        env.cmd()
            .env("SHOEBOX_SECRET_GARAGE", secret)
            .args(["sync", "--json", "--settle", "100ms"])
            .output()
            .unwrap(),
    )
}

/// `key`, stored with the source's date, given another as a release
/// before dates were kept left it: the upgrade gives it the source's date
/// back without sending a byte.
fn dated_at_the_upgrade(env: &Env, garage: &Garage, key: &str) {
    garage.touch(key, "2023-11-14T22:13:20");
    assert_ne!(garage.modified()[key], OLD_DATE_RFC3339);
    back_to_schema_v9(&env.home);
    let s = sync_s3(env, SECRET).ok().json();
    assert_eq!(s["bytes_uploaded"], 0, "{s}");
    assert_eq!(garage.modified()[key], OLD_DATE_RFC3339);
}

pub fn setup() -> (Env, Garage) {
    let env = Env::new();
    let garage = Garage::start(&env.tmp.path().join("garage"));
    (env, garage)
}

pub fn map(items: &[(&str, &[u8])]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), hash(v)))
        .collect()
}

#[test]
fn both_album_modes_reach_the_bucket_with_the_right_content() {
    let (env, garage) = setup();
    add_dest(
        &env,
        garage.s3_port,
        &["--allow-insecure-http", "--prefix", "laptop"],
    )
    .ok();
    let (p1, p2, r1, t) = (
        bytes("p1", 3_000_000),
        bytes("p2", 1000),
        bytes("r1", 1000),
        bytes("t", 0),
    );
    env.write("Paris/IMG_1.jpg", &p1);
    env.write("Paris/IMG 2 (été)+x.jpg", &p2);
    env.write("Rome/IMG_1.jpg", &r1);
    env.write("top.jpg", &t);
    env.watch(&["--mode", "per-folder", "--dest", "garage"]);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 4, "{s}");
    // Keys are <prefix><album>/<name>, exactly as in the local library.
    assert_eq!(
        garage.objects(),
        map(&[
            ("laptop/Paris/IMG 2 (été)+x.jpg", &p2),
            ("laptop/Paris/IMG_1.jpg", &p1),
            ("laptop/Photos/top.jpg", &t),
            ("laptop/Rome/IMG_1.jpg", &r1),
        ])
    );

    // Single mode, another watch into one album on the same bucket.
    let other = env.tmp.path().join("Phone");
    fs::create_dir_all(other.join("DCIM")).unwrap();
    fs::write(other.join("DCIM/a.jpg"), bytes("a", 5000)).unwrap();
    fs::write(other.join("b.jpg"), bytes("b", 5000)).unwrap();
    env.run([
        "watch",
        "add",
        other.to_str().unwrap(),
        "--album",
        "Phone 2024",
        "--dest",
        "garage",
    ])
    .ok();
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 2, "{s}");
    let objects = garage.objects();
    assert_eq!(objects["laptop/Phone 2024/a.jpg"], hash(&bytes("a", 5000)));
    assert_eq!(objects["laptop/Phone 2024/b.jpg"], hash(&bytes("b", 5000)));
    assert_eq!(
        objects.len(),
        6,
        "nothing else is in the bucket: {objects:?}"
    );
}

#[test]
fn edits_replace_renames_copy_server_side_and_deletes_follow_the_policy() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    let photo = bytes("photo", 4_000_000);
    env.write("a.jpg", &photo);
    env.write("gone.jpg", &bytes("gone", 1000));
    env.watch(&[
        "--album",
        "Trip",
        "--dest",
        "garage",
        "--on-delete",
        "remove",
    ]);
    sync_s3(&env, SECRET).ok();
    assert_eq!(garage.objects()["Trip/a.jpg"], hash(&photo));

    // Edit: the object is replaced under the same key.
    let edited = bytes("edited", 2_000_000);
    env.write("a.jpg", &edited);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    assert_eq!(garage.objects()["Trip/a.jpg"], hash(&edited));

    // Rename: a server-side copy and a delete; the 2 MB are not sent again.
    let before = proxy.body_bytes();
    fs::rename(env.src.join("a.jpg"), env.src.join("b.jpg")).unwrap();
    fs::remove_file(env.src.join("gone.jpg")).unwrap();
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["moved"], 1, "{s}");
    let sent = proxy.body_bytes() - before;
    assert!(sent < 10_000, "a rename sent {sent} body bytes");
    assert_eq!(
        garage.objects(),
        map(&[("Trip/b.jpg", &edited)]),
        "renamed, and the deleted file removed (--on-delete remove)"
    );
}

#[test]
fn a_200_mib_video_goes_up_in_parts_and_leaves_no_unfinished_upload() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let video = bytes("video", 200 * 1024 * 1024);
    let clip = env.write("clip.mov", &video);
    set_mtime(&clip, old_date());
    env.watch(&["--album", "Videos", "--dest", "garage"]);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    assert_eq!(garage.objects(), map(&[("Videos/clip.mov", &video)]));
    assert_eq!(
        garage.unfinished_uploads(),
        "",
        "the multipart upload was completed"
    );
    assert_eq!(
        garage.modified()["Videos/clip.mov"],
        OLD_DATE_RFC3339,
        "a multipart upload keeps the source's date too"
    );
}

#[test]
fn a_video_above_5_gib_keeps_its_date_when_renamed_and_when_dated_at_the_upgrade() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    // Above the 5 GiB one CopyObject takes: sparse here, and stored once
    // by Garage (its blocks are deduplicated and compressed).
    let len: u64 = (5 << 30) + (1 << 20);
    let clip = env.src.join("clip.mov");
    let f = fs::File::create(&clip).unwrap();
    (&f).write_all(b"a very long video").unwrap();
    f.set_len(len).unwrap();
    drop(f);
    set_mtime(&clip, old_date());
    env.watch(&["--album", "Videos", "--dest", "garage"]);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");

    // A rename is a copy part by part, then a delete: the copy keeps the
    // source's date.
    fs::rename(&clip, env.src.join("trip.mov")).unwrap();
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(
        (&s["moved"], &s["bytes_uploaded"]),
        (&1.into(), &0.into()),
        "{s}"
    );
    let dates = garage.modified();
    assert_eq!(dates.keys().collect::<Vec<_>>(), ["Videos/trip.mov"]);
    assert_eq!(dates["Videos/trip.mov"], OLD_DATE_RFC3339, "{dates:?}");

    // Dated at the upgrade: a copy onto itself, part by part, with the
    // new date.
    dated_at_the_upgrade(&env, &garage, "Videos/trip.mov");
    assert_eq!(garage.unfinished_uploads(), "", "every copy was completed");
}

/// `config set bandwidth 2MB/s`: four photos of 5 MiB, uploaded by four
/// workers at once, share one limit. Measured where the bytes reach the
/// server: 20 MiB take 10.5 s ± 10 %, and no 2 s window carries more than
/// the limit's 4 MB by over 10 %.
#[test]
fn the_bandwidth_limit_holds_for_all_uploads_together() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    let set = env.run(["config", "set", "bandwidth", "2MB/s"]).ok().stdout;
    assert!(set.contains("bandwidth is now 2 MB/s"), "{set}");
    let got = env
        .run(["config", "get", "bandwidth", "--json"])
        .ok()
        .json();
    assert_eq!(got["value"], "2 MB/s", "{got}");
    let listed = env.run(["config", "list"]).ok().stdout;
    assert!(listed.contains("bandwidth = 2 MB/s"), "{listed}");
    let unknown = env.run(["config", "get", "speed"]);
    assert!(
        unknown.stderr.contains("the settings are: bandwidth"),
        "{}",
        unknown.stderr
    );
    let refused = env.run(["config", "set", "bandwidth", "fast"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("2MB/s"), "{}", refused.stderr);
    for i in 0..4 {
        env.write(&format!("IMG_{i}.jpg"), &bytes(&i.to_string(), 5 << 20));
    }
    env.watch(&["--album", "Trip", "--dest", "garage"]);

    // The bytes that reached the server, every 50 ms, while it runs.
    let (mut child, _) = {
        let mut cmd = env.cmd();
        cmd.env("SHOEBOX_SECRET_GARAGE", SECRET)
            .args(["sync", "--json", "--settle", "100ms"])
            .stdout(Stdio::null());
        (cmd.spawn().unwrap(), ())
    };
    let start = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let total = 20u64 << 20;
    loop {
        let n = proxy.body_bytes();
        samples.push((start.elapsed().as_secs_f64(), n));
        if n >= total || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            start.elapsed() < SECS(120),
            "the upload did not end within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(proxy.body_bytes(), total, "each byte sent once");
    let first = samples.iter().find(|(_, n)| *n > 0).unwrap().0;
    let last = samples.iter().find(|(_, n)| *n >= total).unwrap().0;
    let took = last - first;
    let want = total as f64 / 2e6;
    assert!(
        (took - want).abs() <= want * 0.1,
        "20 MiB took {took:.2} s at 2 MB/s (want {want:.2} s ± 10 %)"
    );
    for (i, (t, n)) in samples.iter().enumerate() {
        let Some((_, later)) = samples[i..].iter().rev().find(|(u, _)| *u <= t + 2.0) else {
            continue;
        };
        assert!(
            (later - n) as f64 <= 4e6 * 1.1,
            "{} bytes in the 2 s from {t:.2} s",
            later - n
        );
    }
    let s = env.status();
    assert_eq!(s["watches"][0]["uploaded"], 4, "{s}");
    assert_eq!(s["bandwidth_limit"], 2_000_000, "{s}");
    env.run(["config", "set", "bandwidth", "off"]).ok();
    assert!(env.status().get("bandwidth_limit").is_none());
}

#[test]
fn identical_content_under_another_name_is_a_server_side_copy() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let photo = bytes("cover", 300_000);
    env.write("IMG_0001.JPG", &photo);
    env.write("Selects/Cover.jpg", &photo);
    env.watch(&["--album", "Trip", "--dest", "garage"]);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["bytes_uploaded"], 300_000, "sent once: {s}");
    assert_eq!(
        garage.objects(),
        map(&[("Trip/IMG_0001.JPG", &photo), ("Trip/Cover.jpg", &photo)]),
        "no name the user had is missing"
    );
}

#[test]
fn objects_keep_the_source_date_as_rclone_reads_it() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    // One small file (a PUT from memory), one streamed.
    let small = env.write("IMG_1.jpg", &bytes("1", 5000));
    let streamed = env.write("IMG_2.jpg", &bytes("2", 20 << 20));
    set_mtime(&small, old_date());
    set_mtime(&streamed, old_date());
    env.watch(&["--album", "Trip", "--dest", "garage"]);
    sync_s3(&env, SECRET).ok();
    fs::rename(&small, env.src.join("Beach.jpg")).unwrap();
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["moved"], 1, "{s}");
    let dates = garage.modified();
    for key in ["Trip/Beach.jpg", "Trip/IMG_2.jpg"] {
        assert_eq!(dates[key], OLD_DATE_RFC3339, "{key}: {dates:?}");
    }
}

#[test]
fn a_multipart_upload_killed_midway_continues_after_a_restart() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    let len = 200 * 1024 * 1024;
    let video = bytes("long video", len);
    env.write("clip.mov", &video);
    env.watch(&["--album", "Videos", "--dest", "garage"]);

    // Kill it once a good part of the file has reached the server.
    kill_sync_after(&env, &proxy, (len / 2) as u64);
    assert!(
        garage.objects().is_empty(),
        "nothing is visible before the upload completes"
    );

    let before = proxy.body_bytes();
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    let resent = proxy.body_bytes() - before;
    // Killed after half the bytes passed: at most the 3 parts in flight
    // (8 MiB each) were not acknowledged, so at most those are sent again.
    let part = 8 << 20;
    assert!(
        resent <= (len as u64) / 2 + 4 * part,
        "the restarted upload sent {resent} of {len} bytes; acknowledged parts must not be sent again"
    );
    assert_eq!(garage.objects(), map(&[("Videos/clip.mov", &video)]));
    assert_eq!(garage.unfinished_uploads(), "");
}

/// Starts `shoebox sync` and kills it once `proxy` forwarded `bytes`.
fn kill_sync_after(env: &Env, proxy: &Proxy, bytes: u64) {
    let mut child = env
        .cmd()
        .env("SHOEBOX_SECRET_GARAGE", SECRET)
        .args(["sync", "--json", "--settle", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.body_bytes() < bytes {
        assert!(Instant::now() < deadline, "the upload did not progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "sync ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// An unfinished upload that no record of this store explains may be
/// another program's, or another computer's, in progress: it is left
/// alone. The engine that started it finishes it.
#[test]
fn unfinished_uploads_of_others_are_left_alone() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    env.write("clip.mov", &bytes("clip", 100 * 1024 * 1024));
    env.watch(&["--album", "Videos", "--dest", "garage"]);
    kill_sync_after(&env, &proxy, 20 * 1024 * 1024);
    assert_ne!(
        garage.unfinished_uploads(),
        "",
        "the killed sync left an unfinished upload"
    );
    let theirs = garage.unfinished_uploads();
    // Another home on the same bucket (another computer) knows nothing of
    // it: it must not abort it.
    let other = Env::new();
    add_dest(&other, garage.s3_port, &["--allow-insecure-http"]).ok();
    other.write("a.jpg", &bytes("a", 100));
    other.watch(&["--album", "Other", "--dest", "garage"]);
    sync_s3(&other, SECRET).ok();
    assert_eq!(
        garage.unfinished_uploads(),
        theirs,
        "another engine's upload in progress is untouched"
    );
    // Its own engine resumes and completes it.
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    assert_eq!(garage.unfinished_uploads(), "");
    assert!(garage.objects().contains_key("Videos/clip.mov"));
}

#[test]
fn wrong_credentials_give_a_clear_message_and_no_retry_loop() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    for i in 0..5 {
        env.write(&format!("{i}.jpg"), &bytes(&i.to_string(), 1000));
    }
    env.watch(&["--album", "A", "--dest", "garage"]);
    let wrong = "0".repeat(64);
    let r = sync_s3(&env, &wrong);
    assert_eq!(
        r.code, 1,
        "a pass that could not reach its destination fails"
    );
    let why = r.json()["unavailable_destinations"][0].to_string();
    assert!(
        why.contains("refused the credentials") && why.contains(KEY_ID),
        "the message says what to fix: {why}"
    );
    assert!(
        proxy.requests() <= 3,
        "the destination is stopped at the first refusal, not tried per file: {} requests",
        proxy.requests()
    );
    assert!(garage.objects().is_empty());
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(
        s["uploaded"], 5,
        "with the right secret everything goes up: {s}"
    );
}

#[test]
fn every_file_arrives_exactly_once_through_resets_5xx_429_stalls_and_cut_answers() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    let mut want = BTreeMap::new();
    for i in 0..40 {
        let data = bytes(&format!("f{i}"), 50_000 + i * 7_919);
        env.write(&format!("f{i:02}.jpg"), &data);
        want.insert(format!("A/f{i:02}.jpg"), hash(&data));
    }
    let video = bytes("faulty video", 70 * 1024 * 1024);
    env.write("clip.mov", &video);
    want.insert("A/clip.mov".into(), hash(&video));
    env.watch(&["--album", "A", "--dest", "garage"]);
    proxy.inject(25, EVERY_FAULT, Duration::from_secs(4));
    sync_until_clean(env.cmd().env("SHOEBOX_SECRET_GARAGE", SECRET));
    assert!(
        proxy.faults_by_kind().len() == EVERY_FAULT.len(),
        "every kind of fault was injected: {:?}",
        proxy.faults_by_kind()
    );
    env.assert_retries_logged_and_bounded(proxy.faults());
    assert_exactly(&garage.objects(), &want);
    assert_eq!(garage.unfinished_uploads(), "");
}

#[test]
fn a_server_that_is_down_makes_files_wait_until_it_is_back() {
    let (env, mut garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    env.write("a.jpg", &bytes("a", 1000));
    env.watch(&["--album", "A", "--dest", "garage"]);
    garage.stop();
    let r = sync_s3(&env, SECRET);
    assert_eq!(r.code, 1);
    let why = r.json()["unavailable_destinations"][0].to_string();
    assert!(
        why.contains("cannot reach") && why.contains("server is up"),
        "{why}"
    );
    // Under `shoebox run`, the file waits and goes up once the server is back.
    let run = env.spawn_run_with_env(
        &["--poll-every", "1s"],
        &[("SHOEBOX_SECRET_GARAGE", SECRET)],
    );
    garage.resume();
    run.wait_until(Duration::from_secs(60), || {
        garage.objects().contains_key("A/a.jpg")
    });
    assert_eq!(garage.objects(), map(&[("A/a.jpg", &bytes("a", 1000))]));
}

#[test]
fn plain_http_is_refused_without_the_flag_and_bad_settings_are_explained() {
    let env = Env::new();
    let r = add_dest(&env, 9, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--allow-insecure-http"), "{}", r.stderr);
    let mut child = env
        .cmd()
        .args([
            "dest",
            "add",
            "bad",
            "s3",
            "--endpoint",
            "https://s3.example.com",
            "--bucket",
            "Bad_Bucket",
            "--access-key-id",
            KEY_ID,
            "--secret-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{SECRET}").unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a valid bucket name"), "{}", r.stderr);
    assert!(
        env.run(["dest", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
            == 1,
        "nothing was added (only the embedded library is listed)"
    );
}

#[test]
fn dest_test_checks_reachability_credentials_and_writing_and_the_secret_stays_secret() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let r = Run::from(
        env.cmd()
            .env("SHOEBOX_SECRET_GARAGE", SECRET)
            .args(["dest", "test", "garage"])
            .output()
            .unwrap(),
    )
    .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("ok") && lines[0].contains("reachable"));
    assert!(lines[1].starts_with("ok") && lines[1].contains("credentials"));
    assert!(lines[2].starts_with("ok") && lines[2].contains("write permission"));
    assert!(garage.objects().is_empty(), "the test object was removed");

    env.write("a.jpg", &bytes("a", 1000));
    env.watch(&["--album", "A", "--dest", "garage"]);
    sync_s3(&env, SECRET).ok();
    let status = env.run(["status", "--json"]).ok().stdout;
    let list = env.run(["dest", "list", "--json"]).ok().stdout;
    assert!(!status.contains(SECRET) && !list.contains(SECRET));
    assert_nowhere_in(&env.home, SECRET);
}

/// The secret goes to a real Secret Service (gnome-keyring in a private
/// D-Bus session) when one runs, and Shoebox reads it back from there: no
/// environment variable is set, and the secret is nowhere in the data folder.
#[test]
fn the_secret_key_lives_in_a_real_secret_service_keyring() {
    let (env, garage) = setup();
    env.write("a.jpg", &bytes("a", 1000));
    let user_home = env.tmp.path().join("user");
    fs::create_dir_all(user_home.join("run")).unwrap();
    let script = r#"
        set -e
        chmod 700 "$XDG_RUNTIME_DIR"
        printf unlock | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
        printf '%s\n' "$SECRET" | "$SHOEBOX" --home "$SB_HOME" dest add garage s3 \
            --endpoint "$ENDPOINT" --bucket photos --region garage --path-style \
            --access-key-id "$KEY_ID" --secret-stdin --allow-insecure-http
        unset SECRET
        "$SHOEBOX" --home "$SB_HOME" watch add "$SRC" --album A --dest garage
        "$SHOEBOX" --home "$SB_HOME" sync --settle 100ms
        printf 'keyring holds: %s\n' "$(secret-tool lookup service app.shoebox username destination:garage)"
    "#;
    let out = Command::new("dbus-run-session")
        .args(["--", "bash", "-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &user_home)
        .env("XDG_RUNTIME_DIR", user_home.join("run"))
        .env("XDG_DATA_HOME", user_home.join("data"))
        .env("SHOEBOX", BIN)
        .env("SB_HOME", &env.home)
        .env("SRC", &env.src)
        .env("ENDPOINT", format!("http://127.0.0.1:{}", garage.s3_port))
        .env("KEY_ID", KEY_ID)
        .env("SECRET", SECRET)
        .output()
        .expect("dbus-run-session is installed (scripts/install-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("SHOEBOX_SECRET_GARAGE"),
        "a keyring was available, so no environment variable is asked for: {stderr}"
    );
    assert!(
        stdout.contains(&format!("keyring holds: {SECRET}")),
        "the secret is in the Secret Service: {stdout}"
    );
    assert_eq!(
        garage.objects(),
        map(&[("A/a.jpg", &bytes("a", 1000))]),
        "sync read the secret back from the keyring"
    );
    assert_nowhere_in(&env.home, SECRET);
}

/// A destination added with a wrong address is fixed with `dest edit`, and
/// a running engine picks the change up without a restart.
#[test]
fn editing_a_destination_reaches_the_running_engine() {
    let (env, garage) = setup();
    let dead = free_port();
    add_dest(&env, dead, &["--allow-insecure-http"]).ok();
    env.write("a.jpg", &bytes("a", 1000));
    env.watch(&["--album", "A", "--dest", "garage"]);
    let run = env.spawn_run_with_env(&[], &[("SHOEBOX_SECRET_GARAGE", SECRET)]);
    let r = env.run([
        "dest",
        "edit",
        "garage",
        "--endpoint",
        &format!("http://127.0.0.1:{}", garage.s3_port),
    ]);
    r.ok();
    run.wait_until(Duration::from_secs(60), || {
        garage.objects().contains_key("A/a.jpg")
    });
    let list = env.run(["dest", "list", "--json"]).ok().json();
    assert!(
        list.to_string()
            .contains(&format!("127.0.0.1:{}", garage.s3_port)),
        "the new endpoint is saved: {list}"
    );
    // Where the albums live cannot be edited, and a folder has nothing to edit.
    let r = env.run(["dest", "edit", "library", "--url", "http://x"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no connection settings"), "{}", r.stderr);
}

/// A full destination (507) stops that destination for the pass instead of
/// failing file after file; the files wait and go up once there is room.
#[test]
fn a_full_destination_pauses_instead_of_failing_every_file() {
    let (env, garage) = setup();
    let proxy = Proxy::start(garage.s3_port);
    add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    for i in 0..10 {
        env.write(&format!("{i}.jpg"), &bytes(&format!("full{i}"), 10_000));
    }
    env.watch(&["--album", "A", "--dest", "garage"]);
    proxy.inject(100, &[Fault::Full], Duration::ZERO);
    let r = sync_s3(&env, SECRET);
    assert_eq!(r.code, 1);
    let s = r.json();
    assert_eq!(
        s["failed"], 0,
        "no file is failed for a full destination: {s}"
    );
    assert!(
        s["unavailable_destinations"][0]
            .to_string()
            .contains("full"),
        "the message says the destination is full: {s}"
    );
    assert!(
        proxy.faults() <= 4,
        "uploads stop at the first 507 (one per worker at most): {} answered",
        proxy.faults()
    );
    proxy.inject(0, &[], Duration::ZERO);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["uploaded"], 10, "{s}");
}

#[test]
fn a_lost_store_set_up_again_recognises_the_bucket_s_objects_and_uploads_nothing_twice() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let (a, b) = (bytes("a", 40_000), bytes("b", 20_000_000));
    env.write("a.jpg", &a);
    env.write("b.mov", &b);
    env.watch(&["--dest", "garage"]);
    sync_s3(&env, SECRET).ok();
    // The data folder is lost (a new laptop, a deleted profile).
    fs::remove_dir_all(&env.home).unwrap();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    env.watch(&["--dest", "garage"]);
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(
        s["uploaded"], 0,
        "both objects are read back and adopted: {s}"
    );
    assert_eq!(s["linked"], 2, "{s}");
    assert_eq!(
        garage.objects(),
        map(&[("Photos/a.jpg", &a), ("Photos/b.mov", &b)]),
        "no `(2)` copies beside the originals"
    );
}

#[test]
fn thirty_kills_and_power_losses_during_a_2000_file_backup_to_garage_lose_and_duplicate_nothing() {
    use crate::crash::{Chaos, CrashTree, assert_store_intact, kill_repeatedly};
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let tree = CrashTree::new(&env);
    // A video above the multipart threshold, so kills land between parts.
    tree.add(&env, "VID_0002.mp4", bytes("video", 70 << 20));
    env.watch(&["--dest", "garage"]);
    let mut chaos = Chaos::from_env();
    let with_secret = || {
        let mut c = env.cmd();
        c.env("SHOEBOX_SECRET_GARAGE", SECRET);
        c
    };
    let report = kill_repeatedly(&env, &tree, &mut chaos, with_secret, || {});
    assert!(report.power_losses > 0, "{report:?}");
    let s = sync_s3(&env, SECRET).ok().json();
    assert_eq!(s["complete"], true, "{s}");
    assert_exactly(&garage.objects(), &tree.want("Photos"));
    assert_eq!(
        garage.unfinished_uploads(),
        "",
        "no multipart upload is left behind by the kills"
    );
    assert_store_intact(&env);
}

#[test]
fn hostile_names_stay_inside_the_album_on_s3() {
    let (env, garage) = setup();
    add_dest(
        &env,
        garage.s3_port,
        &["--allow-insecure-http", "--prefix", "laptop"],
    )
    .ok();
    let names = [
        "x\\..\\..\\y.jpg",
        "%2e%2e%2fy.jpg",
        "a%2Fb.jpg",
        "q?x=1#frag.jpg",
        "~root.jpg",
    ];
    for (i, name) in names.iter().enumerate() {
        env.write(name, &bytes(&i.to_string(), 100));
    }
    env.watch(&["--album", "../../../escape", "--dest", "garage"]);
    sync_s3(&env, SECRET).ok();
    let objects = garage.objects();
    assert_eq!(objects.len(), names.len(), "{objects:?}");
    for key in objects.keys() {
        let name = key.strip_prefix("laptop/_.._.._escape/");
        assert!(
            name.is_some_and(|n| !n.contains('/')),
            "{key} is one object inside the album"
        );
    }
}

/// Two computers backing up into one bucket at the same moment: each name
/// is claimed before it is written (and the PUT is conditional where the
/// server honours `If-None-Match`), so neither overwrites the other.
#[test]
fn two_computers_backing_up_into_one_bucket_both_end_complete() {
    let (a, garage) = setup();
    let b = Env::new();
    let mut want = std::collections::BTreeSet::new();
    for (env, who) in [(&a, "laptop"), (&b, "desktop")] {
        for i in 0..150 {
            let data = bytes(&format!("{who} {i}"), 3000);
            want.insert(hash(&data));
            env.write(&format!("IMG_{i:04}.jpg"), &data);
        }
        add_dest(env, garage.s3_port, &["--allow-insecure-http"]).ok();
        env.watch(&["--album", "Family", "--dest", "garage"]);
    }
    let sync = |env: &Env| {
        env.cmd()
            .env("SHOEBOX_SECRET_GARAGE", SECRET)
            .args(["sync", "--json", "--settle", "100ms", "--workers", "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // What a sync that did not complete said, for the log.
    let complete = |run: std::process::Output| {
        let out = String::from_utf8_lossy(&run.stdout);
        let summary = out
            .lines()
            .rfind(|l| l.contains("\"summary\""))
            .unwrap_or("");
        if !run.status.success() {
            eprintln!(
                "a sync did not complete: {summary}\n{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
        run.status.success()
    };
    let (ca, cb) = (sync(&a), sync(&b));
    let done = [
        complete(ca.wait_with_output().unwrap()),
        complete(cb.wait_with_output().unwrap()),
    ];
    // A file that failed in the crush (two engines and a loaded machine
    // against one server) is the next sync's to send; each ends complete
    // within two more.
    for (env, first) in [(&a, done[0]), (&b, done[1])] {
        let finished = first || (0..2).any(|_| complete(sync(env).wait_with_output().unwrap()));
        assert!(
            finished,
            "a computer's backup did not complete in three syncs"
        );
    }
    let objects = garage.objects();
    assert_eq!(objects.len(), 300, "{} objects", objects.len());
    assert_eq!(
        objects
            .into_values()
            .collect::<std::collections::BTreeSet<_>>(),
        want,
        "neither computer overwrote the other's photos"
    );
}

/// Another program's multipart upload in progress in the same bucket (here
/// a real `rclone copyto`, slowed down) is not aborted when Shoebox opens
/// the destination: rclone's upload completes.
#[test]
fn a_concurrent_rclone_multipart_upload_is_left_to_finish() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    env.write("a.jpg", &bytes("a", 1000));
    env.watch(&["--album", "A", "--dest", "garage"]);
    let big = env.tmp.path().join("archive.bin");
    fs::write(&big, bytes("archive", 12 * 1024 * 1024)).unwrap();
    let mut upload = rclone_command(
        garage.s3_port,
        &[
            "copyto",
            big.to_str().unwrap(),
            &format!("g:{BUCKET}/other-program/archive.bin"),
            "--s3-upload-cutoff",
            "5M",
            "--s3-chunk-size",
            "5M",
            "--bwlimit",
            "2M",
            // One try: an upload aborted under it fails instead of being
            // sent again from the start.
            "--retries",
            "1",
            "--low-level-retries",
            "1",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while garage.unfinished_uploads().is_empty() {
        assert!(
            Instant::now() < deadline,
            "rclone's multipart upload did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sync_s3(&env, SECRET).ok();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = upload.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = upload.kill();
            panic!("rclone's upload did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut upload.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "rclone's upload was not disturbed: {err}");
    assert!(garage.objects().contains_key("other-program/archive.bin"));
}

#[test]
fn objects_stored_before_dates_were_kept_get_them_at_the_upgrade_without_sending_bytes() {
    let (env, garage) = setup();
    add_dest(&env, garage.s3_port, &["--allow-insecure-http"]).ok();
    let photo = env.write("IMG_1.jpg", &bytes("1", 300_000));
    set_mtime(&photo, old_date());
    env.watch(&["--album", "Trip", "--dest", "garage"]);
    sync_s3(&env, SECRET).ok();
    // As a release before dates were kept left it: the object's date is
    // another, and the store is at schema v9.
    dated_at_the_upgrade(&env, &garage, "Trip/IMG_1.jpg");
    assert_eq!(
        garage.objects(),
        map(&[("Trip/IMG_1.jpg", &bytes("1", 300_000))]),
        "the same bytes, one object"
    );
}
