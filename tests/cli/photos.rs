//! Photos, not files: what a copy keeps besides its bytes (its date, and
//! permissions a media server running as another user can read).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::*;

#[test]
fn copies_keep_the_source_date_and_are_readable_like_cp_makes_them() {
    let env = Env::new();
    let a = env.write("Trip/IMG_1.jpg", &bytes("1", 5000));
    let b = env.write("Home/IMG_2.jpg", &bytes("2", 5000));
    set_mtime(&a, old_date());
    set_mtime(&b, old_date());
    env.watch(&["--mode", "per-folder"]);
    env.sync().ok();
    let lib = env.library();
    let copy = lib.join("Trip/IMG_1.jpg");
    assert_eq!(mtime(&copy), old_date(), "the copy keeps the source's date");
    let mode = fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o666 & !umask(),
        "readable by others like a copy made with cp: {mode:o}"
    );

    // A move to another album sends no bytes and keeps the date.
    fs::rename(&a, env.src.join("Home/IMG_1.jpg")).unwrap();
    let s = env.sync().ok().json();
    assert_eq!(s["moved"], 1);
    assert_eq!(mtime(&lib.join("Home/IMG_1.jpg")), old_date());

    // An edit brings the edit's date.
    fs::write(&b, bytes("2 edited", 6000)).unwrap();
    let edited = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    set_mtime(&b, edited);
    let s = env.sync().ok().json();
    assert_eq!(s["uploaded"], 1);
    assert_eq!(mtime(&lib.join("Home/IMG_2.jpg")), edited);
}
