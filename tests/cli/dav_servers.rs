//! The WebDAV servers people run, each started on loopback by the test
//! with Basic authentication and the folder it serves on disk as the
//! ground truth: Apache's mod_dav, nginx's dav with dav-ext, and WsgiDAV
//! (Debian packages; WsgiDAV from PyPI, in the venv scripts/install-deps
//! makes, found through `SHOEBOX_WSGIDAV`). `rclone serve webdav` lives
//! in `webdav.rs`. Each runs as one process, so killing it stops it whole.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::*;
use crate::webdav::{PASS, USER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Apache,
    Nginx,
    WsgiDav,
    /// WsgiDAV accepting Digest authentication only.
    WsgiDavDigest,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Apache => "apache",
            Server::Nginx => "nginx",
            Server::WsgiDav => "wsgidav",
            Server::WsgiDavDigest => "wsgidav-digest",
        })
    }
}

/// A running server serving `root` (its `photos/` folder is the
/// destination).
pub struct DavServer {
    child: Child,
    port: u16,
    pub root: PathBuf,
    pub kind: Server,
    /// Its configuration and logs.
    conf: PathBuf,
    /// nginx's `client_max_body_size`.
    body_limit: String,
}

impl DavServer {
    /// Starts `kind` serving a new folder `dir/served`, configured in
    /// `dir/conf`.
    pub fn start(kind: Server, dir: &Path) -> DavServer {
        DavServer::start_with_body_limit(kind, dir, "1g")
    }

    /// nginx with this `client_max_body_size` (its default is `1m`).
    pub fn start_with_body_limit(kind: Server, dir: &Path, body_limit: &str) -> DavServer {
        let root = dir.join("served");
        let conf = dir.join("conf");
        fs::create_dir_all(root.join("photos")).unwrap();
        fs::create_dir_all(&conf).unwrap();
        let mut server = DavServer {
            child: Command::new("true").spawn().unwrap(),
            port: free_port(),
            root,
            kind,
            conf,
            body_limit: body_limit.to_string(),
        };
        server.restart();
        server
    }

    /// Restarts nginx with another `client_max_body_size`.
    pub fn set_body_limit(&mut self, limit: &str) {
        self.body_limit = limit.to_string();
        self.restart();
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, serving the same folder.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where nginx keeps a request body while it arrives.
    pub fn nginx_body_folder(&self) -> PathBuf {
        self.conf.join("body")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/photos", self.port)
    }

    /// The server's log, for a failure's message.
    pub fn log(&self) -> String {
        fs::read_to_string(self.conf.join("server.log")).unwrap_or_default()
    }

    /// Every file in the albums on the server's disk: path → hash (what
    /// Shoebox stages is left out).
    pub fn albums(&self) -> std::collections::BTreeMap<String, String> {
        files_below(&self.root.join("photos"))
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".shoebox"))
            .collect()
    }
}

impl Drop for DavServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the server and waits until it listens.
fn spawn(server: &DavServer) -> Child {
    let (kind, root, conf, port) = (server.kind, &server.root, &server.conf, server.port);
    let mut cmd = match kind {
        Server::Apache => apache(root, conf, port),
        Server::Nginx => nginx(root, conf, port, &server.body_limit),
        Server::WsgiDav => wsgidav(root, conf, port, false),
        Server::WsgiDavDigest => wsgidav(root, conf, port, true),
    };
    let log = fs::File::create(conf.join("server.log")).unwrap();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{kind} is installed (scripts/install-deps): {e}"));
    wait_until_tcp(port, &format!("{kind} to listen on port {port}"));
    child
}

fn wait_until_tcp(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + SECS(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after 20 s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An htpasswd file for `USER` (Apache's `htpasswd`, from apache2-utils).
fn htpasswd(conf: &Path) -> PathBuf {
    let file = conf.join("htpasswd");
    if !file.exists() {
        let st = Command::new("htpasswd")
            .args(["-b", "-c", "-B"])
            .arg(&file)
            .args([USER, PASS])
            .output()
            .expect("htpasswd is installed (apache2-utils, scripts/install-deps)");
        assert!(st.status.success(), "htpasswd failed");
    }
    file
}

fn apache(root: &Path, conf: &Path, port: u16) -> Command {
    let modules = "/usr/lib/apache2/modules";
    let load = [
        "mpm_event",
        "authz_core",
        "authn_core",
        "authn_file",
        "auth_basic",
        "authz_user",
        "dav",
        "dav_fs",
        "dir",
        "mime",
    ]
    .iter()
    .map(|m| format!("LoadModule {m}_module {modules}/mod_{m}.so\n"))
    .collect::<String>();
    let text = format!(
        "{load}ServerName localhost
Listen 127.0.0.1:{port}
PidFile {conf}/apache.pid
ErrorLog /dev/stderr
DavLockDB {conf}/davlock
TypesConfig /etc/mime.types
DocumentRoot \"{root}\"
<Directory \"{root}\">
    Dav On
    AuthType Basic
    AuthName \"photos\"
    AuthUserFile {passwd}
    Require valid-user
</Directory>
",
        conf = conf.display(),
        root = root.display(),
        passwd = htpasswd(conf).display(),
    );
    let file = conf.join("apache.conf");
    fs::write(&file, text).unwrap();
    let mut cmd = Command::new("/usr/sbin/apache2");
    // -X: one process, in the foreground.
    cmd.arg("-X").arg("-f").arg(file);
    cmd
}

/// What every nginx of these tests starts with: one foreground process
/// keeping its files in `conf`, up to the opening of `http {`.
fn nginx_preamble(conf: &Path) -> String {
    format!(
        "daemon off;
master_process off;
user root;
pid {conf}/nginx.pid;
error_log stderr;
events {{}}
http {{
    access_log off;
    client_body_temp_path {conf}/body;
    proxy_temp_path {conf}/proxy;
    fastcgi_temp_path {conf}/fastcgi;
    uwsgi_temp_path {conf}/uwsgi;
    scgi_temp_path {conf}/scgi;
",
        conf = conf.display()
    )
}

fn nginx(root: &Path, conf: &Path, port: u16, body_limit: &str) -> Command {
    let text = format!(
        "load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
{preamble}    server {{
        listen 127.0.0.1:{port};
        root \"{root}\";
        client_max_body_size {body_limit};
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS;
            create_full_put_path on;
            auth_basic \"photos\";
            auth_basic_user_file {passwd};
        }}
    }}
}}
",
        preamble = nginx_preamble(conf),
        root = root.display(),
        passwd = htpasswd(conf).display(),
    );
    let file = conf.join("nginx.conf");
    fs::write(&file, text).unwrap();
    let mut cmd = Command::new("/usr/sbin/nginx");
    cmd.arg("-c").arg(file).arg("-p").arg(conf);
    cmd
}

fn wsgidav(root: &Path, conf: &Path, port: u16, digest_only: bool) -> Command {
    let text = format!(
        "host: 127.0.0.1
port: {port}
verbose: 1
logging:
    enable_loggers: []
provider_mapping:
    \"/\": \"{root}\"
http_authenticator:
    accept_basic: {basic}
    accept_digest: {digest}
    default_to_digest: {digest}
# As for rclone and Nextcloud clients: X-OC-Mtime dates uploads.
honor_mtime_header: true
simple_dc:
    user_mapping:
        \"*\":
            \"{USER}\":
                password: \"{PASS}\"
",
        root = root.display(),
        basic = !digest_only,
        digest = digest_only,
    );
    let file = conf.join("wsgidav.yaml");
    fs::write(&file, text).unwrap();
    let bin = std::env::var_os("SHOEBOX_WSGIDAV").unwrap_or_else(|| "wsgidav".into());
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(file);
    cmd
}

/// `dest add dav webdav` for `server`, with the secret in the environment
/// as every later command gets it.
pub fn add_dest(env: &Env, server: &DavServer) {
    env.cmd()
        .env("SHOEBOX_SECRET_DAV", PASS)
        .args(["dest", "add", "dav", "webdav", "--url", &server.url()])
        .args(["--user", USER, "--allow-insecure-http"])
        .output()
        .map(Run::from)
        .unwrap()
        .ok();
}

fn shoebox(env: &Env, secret: &str, args: &[&str]) -> Run {
    Run::from(
        env.cmd()
            .env("SHOEBOX_SECRET_DAV", secret)
            .args(args)
            .output()
            .unwrap(),
    )
}

fn sync(env: &Env) -> Run {
    shoebox(env, PASS, &["sync", "--json", "--settle", "100ms"])
}

/// Names that servers and URL encoders get wrong: spaces, NFC and NFD
/// accents, `# % + ? & [ ] ;` and emoji. A `?` is stored as its full-width
/// look-alike, as on every destination (see README).
pub const ODD_NAMES: &[&str] = &[
    "a b.jpg",
    "caf\u{e9}.jpg",
    "cafe\u{301} 2.jpg",
    "50% off.jpg",
    "#1.jpg",
    "a+b.jpg",
    "a?1.jpg",
    "a?2.jpg",
    "b;c.jpg",
    "x&y=z.jpg",
    "[raw] 1.jpg",
    "\u{1f4f7} sunset.jpg",
];
pub const FOLDERS: &[&str] = &["Trip one", "Z\u{fc}rich", "Misc #2"];

/// The name `name` has on `server`: a `?` becomes its full-width
/// look-alike everywhere, and a `;` on a server that cuts MOVE's
/// Destination at one (WsgiDAV).
fn stored(server: Server, name: &str) -> String {
    let name = name.replace('?', "\u{ff1f}");
    match server {
        Server::WsgiDav | Server::WsgiDavDigest => name.replace(';', "\u{ff1b}"),
        Server::Apache | Server::Nginx => name,
    }
}

/// The whole scenario of a user's first week against one server: odd
/// names in three albums and a 3 MiB video; an edit, a rename, a move and
/// a deletion; a sync with nothing to do; a wrong password; the server
/// killed and back.
fn the_whole_scenario_against(kind: Server) {
    let env = Env::new();
    let mut server = DavServer::start(kind, &env.tmp.path().join(kind.to_string()));
    add_dest(&env, &server);
    let mut want = std::collections::BTreeMap::new();
    for (i, folder) in FOLDERS.iter().enumerate() {
        for (j, name) in ODD_NAMES.iter().enumerate() {
            let data = bytes(&format!("{folder}/{name}"), 2000 + 100 * (i * 20 + j));
            env.write(&format!("{folder}/{name}"), &data);
            want.insert(format!("{folder}/{}", stored(kind, name)), hash(&data));
        }
    }
    let video = bytes("video", 3 << 20);
    env.write("Trip one/clip.mov", &video);
    want.insert("Trip one/clip.mov".into(), hash(&video));
    env.watch(&[
        "--mode",
        "per-folder",
        "--dest",
        "dav",
        "--on-delete",
        "remove",
    ]);
    let dated = env.src.join("Trip one/a b.jpg");
    set_mtime(&dated, old_date());
    let s = sync(&env).ok().json();
    assert_eq!(s["uploaded"], want.len(), "{kind}: {s}\n{}", server.log());
    assert_eq!(server.albums(), want, "{kind}: every name arrives whole");
    // The date: WsgiDAV keeps it (X-OC-Mtime, whole seconds); Apache and
    // nginx keep none (docs/RELIABILITY.md).
    if matches!(kind, Server::WsgiDav | Server::WsgiDavDigest) {
        let copy = server.root.join("photos/Trip one/a b.jpg");
        assert_eq!(
            mtime(&copy)
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            old_date()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            "{kind}: the copy keeps the photo's date"
        );
    }

    // An edit, a rename, a move to another album and a deletion.
    let trip = env.src.join("Trip one");
    let edited = bytes("edited", 2500);
    fs::write(trip.join("a+b.jpg"), &edited).unwrap();
    want.insert("Trip one/a+b.jpg".into(), hash(&edited));
    for moved in [
        ("Trip one/#1.jpg", "Trip one/#1 renamed;x.jpg"),
        ("Trip one/50% off.jpg", "Misc #2/50% moved.jpg"),
    ] {
        rename_expected(&env, &mut want, moved, |p| stored(kind, p));
    }
    fs::remove_file(trip.join("a?1.jpg")).unwrap();
    want.remove(&format!("Trip one/{}", stored(kind, "a?1.jpg")));
    let s = sync(&env).ok().json();
    assert_eq!(
        (
            s["uploaded"].as_u64(),
            s["moved"].as_u64(),
            s["removed"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{kind}: {s}"
    );
    assert_eq!(
        s["bytes_uploaded"],
        edited.len(),
        "{kind}: only the edit is sent"
    );
    assert_eq!(
        server.albums(),
        want,
        "{kind}: the changes reached the server"
    );

    // Nothing to do: nothing is sent.
    let s = sync(&env).ok().json();
    assert_eq!(
        (s["uploaded"].as_u64(), s["bytes_uploaded"].as_u64()),
        (Some(0), Some(0)),
        "{kind}: {s}"
    );

    // A wrong password is named as such, and nothing is touched.
    let r = shoebox(&env, "not-the-password", &["dest", "test", "dav"]);
    assert_ne!(r.code, 0, "{kind}");
    assert!(
        r.stdout.contains("credentials") || r.stderr.contains("credentials"),
        "{kind}: {}{}",
        r.stdout,
        r.stderr
    );

    // The server dies: a new photo waits and nothing is lost; it is sent
    // once the server is back.
    server.kill();
    let late = bytes("late", 3000);
    env.write("Z\u{fc}rich/late.jpg", &late);
    let r = sync(&env);
    assert!(
        r.stdout.contains("dest") || r.stderr.contains("reach"),
        "{kind}: the pass says the server cannot be reached: {}{}",
        r.stdout,
        r.stderr
    );
    server.restart();
    let s = sync(&env).ok().json();
    assert_eq!(s["uploaded"], 1, "{kind}: {s}");
    want.insert("Z\u{fc}rich/late.jpg".into(), hash(&late));
    assert_eq!(server.albums(), want, "{kind}");
}

#[test]
fn apache_mod_dav_passes_the_whole_scenario() {
    the_whole_scenario_against(Server::Apache);
}

#[test]
fn nginx_dav_passes_the_whole_scenario() {
    the_whole_scenario_against(Server::Nginx);
}

#[test]
fn wsgidav_passes_the_whole_scenario() {
    the_whole_scenario_against(Server::WsgiDav);
}

#[test]
fn wsgidav_with_digest_authentication_only_passes_the_whole_scenario() {
    the_whole_scenario_against(Server::WsgiDavDigest);
}

#[test]
fn a_server_killed_in_the_middle_of_an_upload_makes_the_video_wait_not_fail() {
    let env = Env::new();
    let mut server = DavServer::start(Server::Nginx, &env.tmp.path().join("nginx"));
    add_dest(&env, &server);
    // 256 MiB: long enough on loopback to be caught in the middle.
    let chunk = bytes("video", 1 << 20);
    let video: Vec<u8> = (0..256u32)
        .flat_map(|i| {
            let mut c = chunk.clone();
            c[..4].copy_from_slice(&i.to_le_bytes());
            c
        })
        .collect();
    env.write("clip.mov", &video);
    env.watch(&["--dest", "dav"]);

    // nginx is killed as soon as the upload's body starts to arrive.
    let (body, pid) = (server.nginx_body_folder(), server.pid());
    let killer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + SECS(60);
        loop {
            let arriving = fs::read_dir(&body)
                .map(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
                .unwrap_or(false);
            if arriving {
                let killed = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .unwrap();
                return killed.success();
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    let mut cmd = env.cmd();
    cmd.env("SHOEBOX_SECRET_DAV", PASS)
        .args(["sync", "--json", "--settle", "100ms"]);
    let run = run_within(&mut cmd, SECS(120), "the sync whose server is killed");
    assert!(
        killer.join().unwrap(),
        "timed out after 60 s waiting for nginx to receive the upload"
    );
    let s = run.json();
    assert_eq!(s["failed"], 0, "the video is not the server's fault: {s}");
    assert_eq!(s["waiting"], 1, "it waits for the server: {s}");
    assert!(
        !s["unavailable_destinations"].as_array().unwrap().is_empty(),
        "{s}"
    );

    server.restart();
    let s = sync(&env).ok().json();
    assert_eq!(s["uploaded"], 1, "{s}");
    assert_eq!(server.albums()["Photos/clip.mov"], hash(&video));
}

#[test]
fn a_photo_refused_as_too_large_is_tried_again_on_its_schedule_under_run() {
    let env = Env::new();
    // nginx's default limit: a 2 MiB photo is refused with 413.
    let mut server =
        DavServer::start_with_body_limit(Server::Nginx, &env.tmp.path().join("nginx"), "1m");
    add_dest(&env, &server);
    let big = bytes("big", 2 << 20);
    env.write("small.jpg", &bytes("small", 100_000));
    env.write("big.jpg", &big);
    env.watch(&["--dest", "dav"]);
    let run = env.spawn_run_with_env(&[], &[("SHOEBOX_SECRET_DAV", PASS)]);
    let failed = run.wait_for(0, SECS(60), |e| {
        e["event"] == "file_failed" && e["path"].as_str().unwrap().ends_with("big.jpg")
    });
    let why = failed["error"].as_str().unwrap();
    assert!(why.contains("413"), "the reason is given: {why}");
    wait_until(SECS(30), "the small photo to arrive", || {
        server.albums().contains_key("Photos/small.jpg")
    });

    // The limit is raised. Nothing else happens: the photo's own retry
    // (a minute after its failure) sends it, under its own name.
    server.set_body_limit("1g");
    run.wait_for(0, SECS(150), |e| {
        e["event"] == "file_done" && e["path"].as_str().unwrap().ends_with("big.jpg")
    });
    let albums = server.albums();
    assert_eq!(
        albums.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Photos/big.jpg", "Photos/small.jpg"],
        "no `big (2).jpg` beside its own stale reservation"
    );
    assert_eq!(albums["Photos/big.jpg"], hash(&big));
}

/// nginx answering every request as an IIS or SharePoint server set to
/// Windows authentication does: 401 with `WWW-Authenticate: NTLM` and
/// `Negotiate` only.
fn nginx_asking_for_ntlm(conf: &Path, port: u16) -> Command {
    let text = format!(
        "{preamble}    server {{
        listen 127.0.0.1:{port};
        location / {{
            add_header WWW-Authenticate Negotiate always;
            add_header WWW-Authenticate NTLM always;
            return 401;
        }}
    }}
}}
",
        preamble = nginx_preamble(conf),
    );
    let file = conf.join("nginx.conf");
    fs::write(&file, text).unwrap();
    let mut cmd = Command::new("/usr/sbin/nginx");
    cmd.arg("-c").arg(file).arg("-p").arg(conf);
    cmd
}

#[test]
fn a_server_that_asks_for_ntlm_is_named_with_what_to_do() {
    let env = Env::new();
    let conf = env.tmp.path().join("ntlm");
    fs::create_dir_all(&conf).unwrap();
    let port = free_port();
    let mut nginx = nginx_asking_for_ntlm(&conf, port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_tcp(port, "nginx to listen");
    let url = format!("http://127.0.0.1:{port}/photos");
    shoebox(
        &env,
        PASS,
        &[
            "dest",
            "add",
            "iis",
            "webdav",
            "--url",
            &url,
            "--user",
            USER,
            "--allow-insecure-http",
        ],
    )
    .ok();
    let mut cmd = env.cmd();
    cmd.env("SHOEBOX_SECRET_IIS", PASS)
        .args(["dest", "test", "iis"]);
    let r = run_within(&mut cmd, SECS(60), "dest test against the NTLM server");
    let _ = nginx.kill();
    let _ = nginx.wait();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("asks for Negotiate or NTLM authentication")
            && r.stdout.contains("Basic and Digest")
            && !r.stdout.contains("refused the credentials"),
        "the scheme is named, not blamed on the password: {}",
        r.stdout
    );
}
