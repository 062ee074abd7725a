//! Hashes files the way the engine does (streamed BLAKE3, fingerprint
//! checked before and after) and prints `<hash>  <path>` like b3sum.
//! Used by `bench/run` to compare the engine's hashing with b3sum.

fn main() -> std::process::ExitCode {
    let mut status = std::process::ExitCode::SUCCESS;
    for arg in std::env::args_os().skip(1) {
        let path = std::path::PathBuf::from(arg);
        match shoebox_core::content_hash(&path) {
            Ok(h) => println!("{}  {}", blake3::Hash::from(h).to_hex(), path.display()),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                status = std::process::ExitCode::FAILURE;
            }
        }
    }
    status
}
