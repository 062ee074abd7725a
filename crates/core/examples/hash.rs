//! Hashes files the way the engine does (streamed BLAKE3, fingerprint
//! checked before and after) and prints `<hash>  <path>` like b3sum.
//! Used by `bench/run` to compare the engine's hashing with b3sum.

use std::sync::atomic::{AtomicBool, AtomicU64};

fn main() -> std::process::ExitCode {
    let mut status = std::process::ExitCode::SUCCESS;
    for arg in std::env::args_os().skip(1) {
        let path = std::path::PathBuf::from(arg);
        let result = std::fs::metadata(&path)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                let fp = shoebox_core::platform::Fingerprint::of(&m);
                shoebox_core::hash::hash_file(
                    &path,
                    &fp,
                    &AtomicU64::new(0),
                    &AtomicBool::new(false),
                )
                .map_err(|e| e.to_string())
            });
        match result {
            Ok(h) => println!("{}  {}", blake3::Hash::from(h).to_hex(), path.display()),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                status = std::process::ExitCode::FAILURE;
            }
        }
    }
    status
}
