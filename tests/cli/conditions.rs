//! Battery and metered networks, followed as the running engine follows
//! them on a real computer: through D-Bus signals, from UPower and
//! NetworkManager mocks on a private bus (`tests/common/system_bus.rs`),
//! flipped while `shoebox run` uploads.

use std::fs;
use std::time::Instant;

use crate::proxy::Proxy;
use crate::support::*;
use crate::system_bus::SystemBus;
use crate::webdav::{Dav, PASS, USER};

fn video(seed: &str, len: usize) -> Vec<u8> {
    // An MP4's `ftyp` box, then filler: a video by its name and content.
    let mut v = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    v.extend(bytes(seed, len));
    v
}

fn waiting(env: &Env) -> serde_json::Value {
    env.status()["waiting"].clone()
}

/// On battery, with the default rule (photos only), photos go and videos
/// wait for power; status and the tray line say how many. Plugged in, the
/// videos go. "Back up now anyway" lifts the battery rule until it
/// changes.
#[test]
fn on_battery_photos_go_and_videos_wait_for_power() {
    let bus = SystemBus::with_services();
    let env = Env::new();
    env.watch(&[]);
    assert_eq!(
        env.run(["config", "get", "on-battery"]).ok().stdout.trim(),
        "photos-only",
        "the default"
    );
    bus.on_battery(true);
    let run = env.spawn_run_with_env(&[], &bus.env());
    assert_eq!(env.status()["on_battery"], true, "read at start");
    assert_eq!(env.status()["metered"], false);
    let m = run.mark();
    env.write("IMG_1.jpg", &bytes("p1", 2000));
    env.write("CLIP_1.mp4", &video("v1", 3000));
    env.write("CLIP_2.mp4", &video("v2", 3000));
    run.wait_for(m, SECS(20), done_for("IMG_1.jpg"));
    wait_until(SECS(20), "the two videos held on battery", || {
        let w = waiting(&env);
        w["reason"] == "on_battery" && w["holds"] == "videos" && w["held"] == 2
    });
    assert_eq!(
        env.library_files().keys().collect::<Vec<_>>(),
        ["Photos/IMG_1.jpg"],
        "no video uploaded on battery"
    );
    let line = env.run(["status"]).ok().stdout;
    assert!(
        line.contains("Waiting: on battery — 2 videos held"),
        "{line}"
    );

    // Plugged in: the videos go.
    let m = run.mark();
    bus.on_battery(false);
    run.wait_count(m, 2, SECS(20), |v| v["event"] == "file_done");
    assert!(env.status().get("waiting").is_none());
    assert_eq!(env.library_files().len(), 3);

    // On battery again; "back up now anyway" sends the next video at once.
    bus.on_battery(true);
    wait_until(SECS(20), "on battery again", || {
        env.write("CLIP_3.mp4", &video("v3", 3000));
        waiting(&env)["held"] == 1
    });
    let m = run.mark();
    env.run(["resume", "--anyway"]).ok();
    run.wait_for(m, SECS(20), done_for("CLIP_3.mp4"));
    assert!(env.status().get("waiting").is_none(), "lifted");
    // Still on battery, a new video goes too (lifted until it changes)...
    let m = run.mark();
    env.write("CLIP_4.mp4", &video("v4", 3000));
    run.wait_for(m, SECS(20), done_for("CLIP_4.mp4"));
    // ...and once plugged in and unplugged again, the rule holds again.
    bus.on_battery(false);
    wait_until(SECS(20), "the engine to see the power plugged in", || {
        env.status()["on_battery"] == false
    });
    bus.on_battery(true);
    env.write("CLIP_5.mp4", &video("v5", 3000));
    wait_until(SECS(20), "the next video held on the next battery", || {
        waiting(&env)["held"] == 1
    });
    assert!(!env.library().join("Photos/CLIP_5.mp4").exists());
}

/// A metered network pauses uploads to a server (the default rule): the
/// upload in flight stops at once and stays queued; a local disk goes on.
/// Off the metered network, the upload goes again and arrives once.
#[test]
fn a_metered_network_stops_uploads_to_servers_at_once_and_they_resume_after() {
    let bus = SystemBus::with_services();
    let env = Env::new();
    let served = env.tmp.path().join("server");
    fs::create_dir_all(served.join("photos")).unwrap();
    let dav = Dav::start_plain(&served);
    let proxy = Proxy::start(dav.port());
    let url = format!("http://127.0.0.1:{}/photos", proxy.port);
    let mut add = env.cmd();
    add.env("SHOEBOX_SECRET_DAV", PASS).args([
        "dest",
        "add",
        "dav",
        "webdav",
        "--url",
        &url,
        "--user",
        USER,
        "--password-stdin",
        "--allow-insecure-http",
    ]);
    run_fed(&mut add, Some(PASS.as_bytes()), SECS(30), "dest add").ok();
    // A slow link, so that the upload is still on its way when the
    // network turns metered.
    env.run(["config", "set", "bandwidth", "200kB/s"]).ok();
    let to_server = env.tmp.path().join("ToServer");
    fs::create_dir_all(&to_server).unwrap();
    env.run([
        "watch".as_ref(),
        "add".as_ref(),
        to_server.as_os_str(),
        "--album".as_ref(),
        "Trip".as_ref(),
        "--dest".as_ref(),
        "dav".as_ref(),
    ])
    .ok();
    env.watch(&[]); // Photos → the local library
    let mut vars = bus.env().to_vec();
    vars.push(("SHOEBOX_SECRET_DAV", PASS));
    let run = env.spawn_run_with_env(&[], &vars);

    let big = bytes("big", 3_000_000);
    fs::write(to_server.join("BIG.jpg"), &big).unwrap();
    wait_until(SECS(30), "the upload to be under way", || {
        proxy.body_bytes() > 200_000
    });
    let m = run.mark();
    let signalled = Instant::now();
    bus.metered(true);
    run.wait_for(m, SECS(10), |v| {
        v["event"] == "uploads_waiting" && v["waiting"]["reason"] == "metered"
    });
    eprintln!("uploads held {:?} after the signal", signalled.elapsed());
    // What reached the server by 1 s after the signal is all it gets: the
    // bytes counted then, and once the engine recorded the cancel, agree.
    std::thread::sleep((signalled + SECS(1)).saturating_duration_since(Instant::now()));
    let sent = proxy.body_bytes();
    wait_until(SECS(10), "the upload in flight to be cancelled", || {
        env.status()["uploading"]
            .as_array()
            .is_some_and(|u| u.is_empty())
    });
    eprintln!("cancel recorded {:?} after the signal", signalled.elapsed());
    assert_eq!(
        proxy.body_bytes(),
        sent,
        "no byte sent later than 1 s after the signal"
    );
    assert!(sent < big.len() as u64, "stopped before the end");

    // A local disk is not held by a metered network.
    let m = run.mark();
    env.write("IMG_local.jpg", &bytes("local", 1000));
    run.wait_for(m, SECS(20), done_for("IMG_local.jpg"));
    let w = waiting(&env);
    assert_eq!(w["reason"], "metered", "{w}");
    assert_eq!(w["holds"], "servers", "{w}");
    assert_eq!(w["held"], 1, "{w}");
    assert!(
        env.run(["status"])
            .ok()
            .stdout
            .contains("Paused: metered network"),
        "the status line says why"
    );
    assert!(!served.join("photos/Trip/BIG.jpg").exists());

    // Off the metered network: it goes again, and arrives once, whole.
    let m = run.mark();
    bus.metered(false);
    run.wait_for(m, SECS(60), done_for("BIG.jpg"));
    assert_eq!(fs::read(served.join("photos/Trip/BIG.jpg")).unwrap(), big);
    assert!(env.status().get("waiting").is_none());
    drop(run);
    assert!(
        env.run(["config", "set", "on-metered", "keep-going"])
            .ok()
            .stdout
            .contains("on-metered is now keep-going")
    );
}

/// With the services missing from the bus (a desktop PC with no UPower,
/// no NetworkManager) the conditions are unknown: uploads go on, and the
/// log says so once for each.
#[test]
fn with_no_power_or_network_service_uploads_go_on() {
    let bus = SystemBus::empty();
    let env = Env::new();
    env.watch(&[]);
    env.run(["config", "set", "on-battery", "pause"]).ok();
    let run = env.spawn_run_with_env(&[], &bus.env());
    let m = run.mark();
    env.write("CLIP.mp4", &video("v", 3000));
    env.write("IMG.jpg", &bytes("p", 1000));
    run.wait_count(m, 2, SECS(20), |v| v["event"] == "file_done");
    let s = env.status();
    assert!(s.get("waiting").is_none(), "{s}");
    assert!(s.get("on_battery").is_none(), "unknown: {s}");
    drop(run);
    let logged = |what: &str| env.log_lines(what).len();
    assert_eq!(logged("runs on battery (UPower) cannot be told"), 1);
    assert_eq!(logged("metered (NetworkManager) cannot be told"), 1);
}

/// On battery, a video's multipart upload to S3 stops where it is (photos
/// only: videos wait for power), and once plugged in it goes on from the
/// parts the server acknowledged: at most the parts in flight are sent
/// again.
#[test]
fn a_video_held_on_battery_continues_its_multipart_upload_when_plugged_in() {
    let bus = SystemBus::with_services();
    let (env, garage) = crate::s3::setup();
    let proxy = Proxy::start(garage.s3_port);
    crate::s3::add_dest(&env, proxy.port, &["--allow-insecure-http"]).ok();
    // Slow enough that the upload is half-way when the power goes.
    env.run(["config", "set", "bandwidth", "16MB/s"]).ok();
    let len = 96 << 20;
    let clip = video("long clip", len);
    env.write("clip.mov", &clip);
    env.watch(&["--album", "Videos", "--dest", "garage"]);
    let mut vars = bus.env().to_vec();
    vars.push(("SHOEBOX_SECRET_GARAGE", crate::s3::SECRET));
    let run = env.spawn_run_with_env(&[], &vars);
    wait_until(SECS(60), "half the video on the server", || {
        proxy.body_bytes() >= (len / 2) as u64
    });
    bus.on_battery(true);
    wait_until(SECS(20), "the video held on battery", || {
        let w = waiting(&env);
        w["reason"] == "on_battery" && w["held"] == 1
    });
    let before = proxy.body_bytes();
    assert!(before < len as u64, "stopped before the end");
    assert!(garage.objects().is_empty(), "nothing visible yet");

    let m = run.mark();
    bus.on_battery(false);
    run.wait_for(m, SECS(60), done_for("clip.mov"));
    let resent = proxy.body_bytes() - before;
    let remaining = len as u64 - (len / 2) as u64;
    // At most the parts in flight (3 of 8 MiB) were not acknowledged when
    // it stopped; starting over would send all 96 MiB.
    assert!(
        resent <= remaining + 3 * (8 << 20),
        "after the battery {resent} bytes were sent of the {remaining} left"
    );
    assert_eq!(
        garage.objects(),
        crate::s3::map(&[("Videos/clip.mov", &clip)])
    );
    assert_eq!(garage.unfinished_uploads(), "");
}
