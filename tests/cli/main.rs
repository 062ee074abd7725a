//! Integration tests of the `shoebox` binary: real files in temp dirs, the
//! real binary, `--home` pointing into the temp dir.

mod hostile;
mod immich;
// Shared with the app suite and the thumbnail tests (some makers are theirs).
#[allow(dead_code)]
#[path = "../common/media.rs"]
mod media;
mod proxy;
mod support;

mod albums;
mod bad_input;
#[path = "../common/bounded.rs"]
mod bounded;
mod changes;
mod cli_contract;
mod conditions;
mod crash;
mod dav_servers;
mod encryption;
mod live;
mod local_api;
mod odd_input;
mod photos;
mod restore;
mod s3;
mod s3_servers;
mod security;
mod service;
mod sftp;
mod silent_loss;
#[path = "../common/sshd.rs"]
mod sshd;
mod store_damage;
#[path = "../common/system_bus.rs"]
mod system_bus;
mod user_folders;
mod verify;
mod webdav;
