//! Build script of the desktop app: tauri.conf.json lives at the repository
//! root; capabilities live in src-tauri/capabilities. The app manifest lists
//! the commands the UI may call: nothing else is exposed.

fn main() {
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    println!("cargo:rerun-if-changed=ui");
    let attrs = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(&[
            "get_state",
            "list_destinations",
            "preview_albums",
            "add_watch",
            "remove_watch",
            "sync_now",
            "set_paused",
            "confirm_deletions",
            "keep_files",
            "retry_failed",
            "list_ignored",
            "pick_folder",
            "set_autostart",
            "set_workers",
            "set_config",
            "back_up_now_anyway",
            "answer_autostart_question",
            "open_location",
            "add_destination",
            "edit_destination",
            "test_destination",
            "remove_destination",
            "restore_destination",
            "export_key",
            "thumbnail",
        ]));
    tauri_build::try_build(attrs).expect("tauri-build failed");
}
