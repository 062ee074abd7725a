//! The tray menu over D-Bus: items, the status line while files upload,
//! Pause / Resume really pausing the engine, Open, close-to-tray, Quit.

use crate::support::*;
use crate::system_bus::SystemBus;

#[test]
fn the_tray_menu_shows_progress_and_drives_the_app() {
    let sb = Sandbox::new();
    for i in 0..400 {
        sb.write(
            &format!("card/IMG_{i:04}.jpg"),
            &bytes(&i.to_string(), 512 * 1024),
        );
    }
    sb.watch(&sb.photos);
    // Start paused, so the upload run is seen from its start.
    sb.engine().set_paused(true).unwrap();
    let _watcher = start_tray_watcher();
    let mut app = sb.launch_tray();
    let tray = Tray::find();

    wait_until(secs(20), "the status line to say Paused", || {
        tray.status_line() == "Paused"
    });
    let labels = tray.labels();
    for item in ["Open Shoebox", "Add folder…", "Resume syncing", "Quit"] {
        assert!(
            labels.iter().any(|l| l == item),
            "menu item {item:?} missing from {labels:?}"
        );
    }
    assert!(
        shoebox_windows().is_empty(),
        "--minimized starts hidden in the tray"
    );

    // Resume: the status line follows the upload run, then settles.
    tray.click("Resume syncing");
    wait_until(secs(10), "the menu item to flip back to Pause", || {
        tray.labels().iter().any(|l| l == "Pause syncing")
    });
    let mut seen_uploading = None;
    wait_until(
        secs(60),
        "\"Uploading … of 400\" in the status line",
        || {
            let line = tray.status_line();
            if line.starts_with("Uploading") {
                seen_uploading = Some(line);
            }
            seen_uploading.is_some()
        },
    );
    assert!(
        seen_uploading.unwrap().contains(" of 400"),
        "counts the whole run"
    );
    wait_until(secs(120), "Up to date after the run", || {
        tray.status_line() == "Up to date"
    });
    assert_eq!(
        sb.library_files().len(),
        400,
        "the engine really uploaded everything"
    );

    // Pause really pauses the engine.
    tray.click("Pause syncing");
    wait_until(secs(10), "the menu to offer Resume", || {
        tray.labels().iter().any(|l| l == "Resume syncing")
    });
    assert!(sb.status().paused, "the pause is recorded for the engine");
    sb.write("later.jpg", &bytes("later", 1000));
    // Nothing signals "did not upload": give it the settle window and more.
    std::thread::sleep(secs(4));
    assert!(
        !sb.library_files().contains_key("Photos/later.jpg"),
        "paused: nothing uploaded"
    );
    tray.click("Resume syncing");
    wait_until(secs(15), "the file written while paused to arrive", || {
        sb.library_files().contains_key("Photos/later.jpg")
    });

    // Open shows the window; closing it keeps the app in the tray.
    tray.click("Open Shoebox");
    let mut shown = Vec::new();
    wait_until(secs(20), "the window to appear", || {
        shown = shoebox_windows();
        shown.len() == 1
    });
    // The window seen, not a second listing (which a busy X server may
    // answer before the window is mapped again).
    close_window(&shown[0]);
    wait_until(secs(10), "the window to go away", || {
        shoebox_windows().is_empty()
    });
    assert!(app.alive(), "closing the window must not quit the tray");
    tray.click("Open Shoebox");
    wait_until(secs(20), "the window to come back", || {
        shoebox_windows().len() == 1
    });

    tray.click("Quit");
    let status = app
        .wait_exit(secs(20))
        .expect("the app still runs 20 s after Quit");
    assert!(status.success(), "Quit exits 0, got {status:?}");
    assert_eq!(sb.status().engine, None, "the engine lock is released");
}

/// The window is a process of its own, started on demand: at login
/// (`--minimized`) only the tray starts, the first launch opens the window,
/// a second one hands over to it, and closing the window ends its process
/// while the tray and the engine go on.
#[test]
fn the_window_is_started_on_demand_and_a_second_launch_focuses_it() {
    let sb = Sandbox::new();
    let _watcher = start_tray_watcher();
    let mut login = sb.launch(&["--minimized"]);
    let st = login
        .wait_exit(secs(30))
        .expect("at login the window program starts the tray and ends");
    assert!(st.success(), "{st:?}");
    let _tray = Tray::find();
    assert!(shoebox_windows().is_empty(), "no window at login");
    let engine = sb.status().engine.expect("the tray runs the engine");
    assert!(engine.starts_with("Shoebox app"), "{engine}");

    let mut first = sb.launch(&[]);
    let mut shown = Vec::new();
    wait_until(secs(30), "the window to show", || {
        shown = shoebox_windows();
        shown.len() == 1
    });
    let mut second = sb.launch(&[]);
    let st = second
        .wait_exit(secs(20))
        .expect("the second launch hands over and exits");
    assert!(st.success());
    assert_eq!(shoebox_windows().len(), 1, "still one window");
    assert!(first.alive());

    close_window(&shown[0]);
    let st = first
        .wait_exit(secs(20))
        .expect("the window's process ends with its window");
    assert!(st.success(), "{st:?}");
    assert_eq!(
        sb.status().engine.as_deref(),
        Some(engine.as_str()),
        "the tray's engine runs on"
    );
}

/// A headless engine (what `shoebox run` runs: the real engine, on a
/// thread of this test) owns the data folder. The app follows it through
/// its local API, controls it from the tray, and runs the engine itself
/// once that one stops.
#[test]
fn the_app_controls_a_headless_engine_and_takes_over_when_it_stops() {
    let sb = Sandbox::new();
    sb.watch(&sb.photos);
    let headless = sb.run_headless();
    let _watcher = start_tray_watcher();
    // As at login: the window program starts a tray beside the headless
    // engine, and ends.
    let mut login = sb.launch(&["--minimized"]);
    let st = login
        .wait_exit(secs(30))
        .expect("at login the window program starts the tray and ends");
    assert!(st.success(), "{st:?}");
    let home = shoebox_core::Home::open(Some(sb.data.clone())).unwrap();
    let tray_pid = shoebox_host::TrayLock::holder(&home).expect("a tray runs");
    let tray = Tray::find();
    wait_until(
        secs(20),
        "the tray to show the headless engine's state",
        || tray.status_line() == "Up to date",
    );

    // The tray's Pause reaches the headless engine, and its state comes
    // back to the tray.
    tray.click("Pause syncing");
    wait_until(secs(10), "the status line to say Paused", || {
        tray.status_line() == "Paused"
    });
    tray.click("Resume syncing");
    wait_until(secs(10), "the status line to leave Paused", || {
        tray.status_line() != "Paused"
    });

    // What the headless engine uploads is followed: the status line goes
    // through the upload and back without the app reading on its own.
    sb.write("IMG_1.jpg", &bytes("1", 4000));
    wait_until(secs(30), "the headless engine to upload IMG_1", || {
        sb.library_files().len() == 1
    });
    assert!(
        sb.status()
            .engine
            .is_some_and(|e| e.starts_with("shoebox run")),
        "the headless engine uploaded it"
    );

    // It stops: the app runs the engine itself.
    drop(headless);
    wait_until(secs(30), "the app to run the engine", || {
        sb.status()
            .engine
            .is_some_and(|e| e.starts_with("Shoebox app"))
    });
    sb.write("IMG_2.jpg", &bytes("2", 4000));
    wait_until(secs(30), "the app's engine to upload IMG_2", || {
        sb.library_files().len() == 2
    });
    wait_until(secs(20), "the tray to say up to date", || {
        tray.status_line() == "Up to date"
    });
    assert_eq!(
        shoebox_host::TrayLock::holder(&home),
        Some(tray_pid),
        "the same tray all along"
    );
    tray.click("Quit");
    wait_until(secs(20), "Quit to end the tray", || {
        shoebox_host::TrayLock::holder(&home).is_none()
    });
    assert_eq!(sb.status().engine, None, "and its engine");
}

/// On battery with the rule "pause", the tray says so; "Back up now
/// anyway" uploads through it; plugged in, it says nothing of the battery.
#[test]
fn the_tray_says_when_the_battery_holds_uploads() {
    let bus = SystemBus::with_services();
    bus.on_battery(true);
    let sb = Sandbox::new();
    sb.watch(&sb.photos);
    sb.engine().config_set("on-battery", "pause").unwrap();
    sb.write("IMG.jpg", &bytes("x", 1000));
    let _watcher = start_tray_watcher();
    let mut app = sb.launch_tray_with_env(&bus.env());
    let tray = Tray::find();
    wait_until(secs(30), "the status line to name the battery", || {
        tray.status_line() == "Paused: on battery"
    });
    assert!(sb.library_files().is_empty(), "nothing uploaded on battery");
    tray.click("Back up now anyway");
    wait_until(secs(15), "the photo to arrive", || {
        sb.library_files().len() == 1
    });
    wait_until(secs(15), "the status line to be up to date", || {
        tray.status_line() == "Up to date"
    });
    tray.click("Quit");
    assert!(app.wait_exit(secs(20)).is_some(), "Quit ends the app");
}

/// Quiet hours in the tray: the status line says until when, and "Back up
/// now anyway" uploads through them.
#[test]
fn the_tray_backs_up_now_anyway_through_quiet_hours() {
    let sb = Sandbox::new();
    let from = sb.photo_in_quiet_hours();
    let _watcher = start_tray_watcher();
    let mut app = sb.launch_tray();
    let tray = Tray::find();
    wait_until(secs(30), "the status line to name the quiet hours", || {
        tray.status_line() == format!("Quiet hours until {from}")
    });
    assert!(
        sb.library_files().is_empty(),
        "nothing uploaded in quiet hours"
    );
    tray.click("Back up now anyway");
    wait_until(secs(15), "the photo to arrive", || {
        sb.library_files().len() == 1
    });
    tray.click("Quit");
    assert!(app.wait_exit(secs(20)).is_some(), "Quit ends the app");
}
