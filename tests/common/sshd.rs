//! A real OpenSSH `sshd` (Debian's openssh-server) for the SFTP tests,
//! started on a loopback port for a test account that is not root. The
//! account (`shoebox`, uid 65534, with a password) exists only inside
//! sshd's own mount namespace, where the test's passwd and shadow files are
//! bind-mounted over the system's; sshd is PID 1 of its own PID namespace,
//! so killing it ends every session too, as a crash of the server would.
//! This needs root, as CI has. Shared by the CLI and GUI suites.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test account's password.
pub const PASSWORD: &str = "sftp pass word";
/// The account's uid and gid (those of `nobody` outside the namespace).
pub const UID: u32 = 65534;

/// A running sshd; `served/photos` is the destination's folder.
pub struct SshServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    /// The account's home folder.
    pub served: PathBuf,
}

impl SshServer {
    /// Starts sshd configured in `dir`, with a new host key and a new key
    /// pair for the account (`dir/user_key`).
    pub fn start(dir: &Path) -> SshServer {
        assert!(
            is_root(),
            "the SFTP tests start sshd for a test account in a private mount namespace, which \
             needs root (CI runs as root)"
        );
        fs::create_dir_all(dir).unwrap();
        // The account must reach its folders.
        let mut up = Some(dir);
        while let Some(d) = up {
            if d == Path::new("/") || d == std::env::temp_dir() {
                break;
            }
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
            up = d.parent();
        }
        let served = dir.join("served");
        fs::create_dir_all(served.join("photos")).unwrap();
        for d in [&served, &served.join("photos")] {
            std::os::unix::fs::chown(d, Some(UID), Some(UID)).unwrap();
        }
        keygen(&dir.join("host_key"), "");
        keygen(&dir.join("user_key"), "");
        fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        write_accounts(dir, &served);
        fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile none\nUsePAM no\n\
                 StrictModes no\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut server = SshServer {
            child: Command::new("true").spawn().unwrap(),
            port: free_port(),
            dir: dir.to_path_buf(),
            served,
        };
        server.restart();
        server
    }

    /// Stops the server and all its sessions, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "timed out after 20 s waiting for sshd to stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        let d = self.dir.display();
        let script = format!(
            "mount --bind {d}/passwd /etc/passwd && mount --bind {d}/shadow /etc/shadow && \
             mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f {d}/sshd_config -p {}",
            self.port
        );
        let log = fs::File::create(self.dir.join("sshd.log")).unwrap();
        self.child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--pid", "--fork"])
            .args(["--kill-child=SIGKILL", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("unshare (util-linux) runs: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "timed out after 20 s waiting for sshd to listen on port {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Gives the server a new host key (as a reinstall would).
    pub fn new_host_key(&mut self) {
        fs::remove_file(self.dir.join("host_key")).unwrap();
        fs::remove_file(self.dir.join("host_key.pub")).unwrap();
        keygen(&self.dir.join("host_key"), "");
        self.restart();
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.join("host_key.pub"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().nth(1).unwrap().to_string()
    }

    /// The host key as a known_hosts line.
    pub fn known_hosts_line(&self) -> String {
        let key = fs::read_to_string(self.dir.join("host_key.pub")).unwrap();
        let mut parts = key.split_whitespace();
        let (algo, blob) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[127.0.0.1]:{} {algo} {blob}\n", self.port)
    }

    /// The process that holds sshd's namespaces: killing it kills sshd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn user_key(&self) -> PathBuf {
        self.dir.join("user_key")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Every file in the albums on the server's disk: path → hash.
    pub fn albums(&self) -> BTreeMap<String, String> {
        files_below(&self.served.join("photos"))
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".shoebox"))
            .collect()
    }

    /// What the engine left in its staging folders.
    pub fn staged(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk_all(&self.served.join("photos/.shoebox-staging"), &mut out);
        out.retain(|p| p.is_file());
        out
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key pair at `path`, protected by `passphrase`.
pub fn keygen(path: &Path, passphrase: &str) {
    let st = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "shoebox-test",
            "-N",
            passphrase,
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen made a key");
}

/// passwd and shadow files with root, sshd's privilege separation user
/// and the test account.
fn write_accounts(dir: &Path, home: &Path) {
    let hash = Command::new("openssl")
        .args(["passwd", "-6", PASSWORD])
        .output()
        .unwrap();
    assert!(hash.status.success(), "openssl hashes the password");
    let hash = String::from_utf8(hash.stdout).unwrap();
    fs::write(
        dir.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nsshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n\
             shoebox:x:{UID}:{UID}::{}:/bin/sh\n",
            home.display()
        ),
    )
    .unwrap();
    fs::write(
        dir.join("shadow"),
        format!(
            "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\nshoebox:{}:19000:0:99999:7:::\n",
            hash.trim()
        ),
    )
    .unwrap();
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every file below `dir` (staging and marker left out): path → BLAKE3.
fn files_below(dir: &Path) -> BTreeMap<String, String> {
    let mut files = Vec::new();
    walk_all(dir, &mut files);
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (
                rel,
                blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string(),
            )
        })
        .filter(|(rel, _)| !rel.starts_with(".shoebox"))
        .collect()
}

/// Every entry below `dir`.
fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_all(&p, out);
        }
    }
}
