//! The local API over a local socket (the `interprocess` crate): on Unix
//! the socket file `<data folder>/engine.sock`, on Windows a named pipe
//! named after the data folder (`\\.\pipe\shoebox-<hash>`).
//!
//! Only the owner can connect. On Unix the socket is bound under a
//! temporary name, made readable and writable by its owner only, and only
//! then renamed into place, and each connection's peer is checked too (its
//! effective user id must be this process's). On Windows the pipe's
//! security descriptor grants access to its owner and the system alone,
//! and remote clients are refused. One thread accepts; each connection is
//! served on a thread of its own, at most [`MAX_CONNECTIONS`] at once. The
//! engine never waits for a client: a follower whose queue fills is
//! dropped, and every read and write has a time bound.

use std::io::{self, BufRead, BufReader, Read, Write};
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use interprocess::local_socket::prelude::*;
use interprocess::local_socket::{Listener, ListenerOptions, Name, Stream};

use super::{Activity, Message, Request};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::home::Home;
use crate::watcher::Hint;

/// How long one request or one answer may take on the wire.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// A follower hears at least this often (the activity again), so that it
/// can tell a quiet engine from one that stopped answering.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// A follower that heard nothing for this long gives up.
const FOLLOW_SILENCE: Duration = Duration::from_secs(90);
/// Messages queued for one follower; one that falls this far behind is
/// dropped rather than ever holding up the engine.
const FOLLOW_QUEUE: usize = 4096;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 32;
/// The longest request read.
const MAX_REQUEST: u64 = 4096;
/// Uploads kept for a follower that asks for the recent ones.
const RECENT_KEPT: usize = 200;

/// The running engine's end: serves the socket until dropped.
pub(crate) struct Server {
    shared: Arc<Shared>,
    /// Where it answers; on Unix also the socket file it removes.
    endpoint: Endpoint,
    accept: Option<JoinHandle<()>>,
}

/// Where the engine of a data folder answers.
struct Endpoint {
    name: Name<'static>,
    /// Shown in messages: the socket's path, or the pipe's name.
    shown: String,
    #[cfg(unix)]
    path: PathBuf,
}

impl Endpoint {
    #[cfg(unix)]
    fn of(home: &Home) -> io::Result<Endpoint> {
        use interprocess::local_socket::GenericFilePath;
        let path = home.api_path();
        Ok(Endpoint {
            name: path.clone().to_fs_name::<GenericFilePath>()?,
            shown: path.display().to_string(),
            path,
        })
    }

    /// Pipes live in one namespace of their own: the name is made from
    /// the data folder's path.
    #[cfg(windows)]
    fn of(home: &Home) -> io::Result<Endpoint> {
        use interprocess::local_socket::GenericNamespaced;
        let hash = blake3::hash(home.dir().as_os_str().as_encoded_bytes());
        let pipe = format!("shoebox-{}", &hash.to_hex()[..24]);
        Ok(Endpoint {
            shown: format!(r"\\.\pipe\{pipe}"),
            name: std::ffi::OsString::from(pipe).to_ns_name::<GenericNamespaced>()?,
        })
    }

    fn connect(&self) -> io::Result<Stream> {
        Stream::connect(self.name.borrow())
    }
}

struct Shared {
    hints: Sender<Hint>,
    activity: Mutex<Activity>,
    followers: Mutex<Vec<Sender<Arc<str>>>>,
    /// The last uploads (`file_done` events, serialised), oldest first.
    recent: Mutex<std::collections::VecDeque<Arc<str>>>,
    stopping: AtomicBool,
    connections: AtomicUsize,
}

impl Shared {
    fn activity(&self) -> Activity {
        self.activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Queues a line for every follower; made only when someone follows.
    fn broadcast<L: Into<Arc<str>>>(&self, line: impl FnOnce() -> L) {
        let mut followers = self
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if followers.is_empty() {
            return;
        }
        let line: Arc<str> = line().into();
        followers.retain(|f| f.try_send(line.clone()).is_ok());
    }
}

impl Server {
    /// Binds the socket and starts serving it; `None` (logged) where it
    /// cannot be, and the engine runs on without it.
    pub(crate) fn start(home: &Home, hints: Sender<Hint>) -> Option<Server> {
        let bound = Endpoint::of(home).and_then(|endpoint| Ok((bind(&endpoint)?, endpoint)));
        let (listener, endpoint) = match bound {
            Ok(bound) => bound,
            Err(e) => {
                tracing::warn!(
                    "the engine's local API could not start for {}: {e}. `shoebox` commands \
                     reach this engine only when it starts again (a data folder with a \
                     shorter path avoids a socket path that is too long)",
                    home.dir().display()
                );
                return None;
            }
        };
        let shared = Arc::new(Shared {
            hints,
            activity: Mutex::new(Activity::default()),
            followers: Mutex::new(Vec::new()),
            recent: Mutex::new(std::collections::VecDeque::new()),
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let serving = shared.clone();
        let accept = std::thread::Builder::new()
            .name("local-api".into())
            .spawn(move || accept_all(&listener, &serving));
        match accept {
            Ok(accept) => Some(Server {
                shared,
                endpoint,
                accept: Some(accept),
            }),
            Err(e) => {
                tracing::warn!("the engine's local API could not start a thread: {e}");
                #[cfg(unix)]
                let _ = std::fs::remove_file(&endpoint.path);
                None
            }
        }
    }

    /// What the engine does now, for `status` and for followers.
    pub(crate) fn publish(&self, activity: &Activity) {
        *self
            .shared
            .activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = activity.clone();
        self.shared
            .broadcast(|| line_of(&Message::Activity(activity.clone())));
    }

    /// An event, for followers.
    pub(crate) fn event(&self, event: &Event) {
        if !matches!(event, Event::FileDone { .. }) {
            self.shared
                .broadcast(|| line_of(&Message::Event(event.clone())));
            return;
        }
        // Uploads are kept for followers to come.
        let line = line_of(&Message::Event(event.clone()));
        let mut recent = self
            .shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if recent.len() == RECENT_KEPT {
            recent.pop_front();
        }
        recent.push_back(line.clone());
        drop(recent);
        self.shared.broadcast(|| line);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Followers hear the end of their stream.
        self.shared
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        // Wakes the accepting thread, which then sees `stopping`.
        if self.endpoint.connect().is_ok()
            && let Some(accept) = self.accept.take()
        {
            let _ = accept.join();
        }
        #[cfg(unix)]
        let _ = std::fs::remove_file(&self.endpoint.path);
    }
}

/// Binds under a temporary name, makes the socket its owner's only, then
/// renames it into place (over a socket a crashed engine left: the caller
/// holds the engine lock, so no other engine serves it).
#[cfg(unix)]
fn bind(endpoint: &Endpoint) -> io::Result<Listener> {
    use interprocess::local_socket::GenericFilePath;
    use std::os::unix::fs::PermissionsExt;
    let path = &endpoint.path;
    let temp = path.with_file_name(format!("engine.sock.{}", crate::platform::random_hex(4)));
    let listener = ListenerOptions::new()
        .name(temp.clone().to_fs_name::<GenericFilePath>()?)
        .reclaim_name(false)
        .create_sync()?;
    let private = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = private {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(listener)
}

/// Creates the pipe with a security descriptor that lets its owner and the
/// system in, and no one else (`P`: nothing inherited).
#[cfg(windows)]
fn bind(endpoint: &Endpoint) -> io::Result<Listener> {
    use interprocess::os::windows::local_socket::ListenerOptionsExt;
    use interprocess::os::windows::security_descriptor::SecurityDescriptor;
    let owner_only =
        SecurityDescriptor::deserialize(widestring::u16cstr!("D:P(A;;GA;;;OW)(A;;GA;;;SY)"))?;
    ListenerOptions::new()
        .name(endpoint.name.borrow())
        .security_descriptor(owner_only)
        .create_sync()
}

/// Whether the process at the other end runs as this process's user: the
/// second lock, behind the socket file's owner-only mode. On Windows the
/// pipe's security descriptor is the lock.
#[cfg(unix)]
fn peer_is_owner(stream: &Stream) -> bool {
    // SAFETY: geteuid cannot fail.
    #[allow(unsafe_code)]
    let own = unsafe { libc::geteuid() };
    stream.peer_creds().is_ok_and(|c| c.euid() == Some(own))
}

#[cfg(windows)]
fn peer_is_owner(_stream: &Stream) -> bool {
    true
}

fn accept_all(listener: &Listener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors, say: give the process a moment
                // rather than spinning.
                tracing::warn!("the engine's local API could not accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if !peer_is_owner(&stream) {
            tracing::warn!("the engine's local API refused a connection from another user");
            continue;
        }
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let busy = Message::Error {
                code: "busy".into(),
                message: format!(
                    "the engine already serves {MAX_CONNECTIONS} connections; try again"
                ),
            };
            let _ = stream.set_send_timeout(Some(ANSWER_WITHIN));
            let _ = send(&mut &stream, &busy);
            continue;
        }
        let serving = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("local-api-client".into())
            .spawn(move || {
                if let Err(e) = serve(&stream, &serving) {
                    tracing::debug!("a local API client went away: {e}");
                }
                serving.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve(stream: &Stream, shared: &Shared) -> io::Result<()> {
    stream.set_recv_timeout(Some(ANSWER_WITHIN))?;
    stream.set_send_timeout(Some(ANSWER_WITHIN))?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line)?;
    let mut out = stream;
    let request = match serde_json::from_str::<Request>(line.trim()) {
        Ok(request) => request,
        Err(e) => {
            let refused = Message::Error {
                code: "bad_request".into(),
                message: format!(
                    "the engine did not understand the request ({e}); it takes one JSON \
                     object per line, such as {{\"op\":\"activity\"}}"
                ),
            };
            return send(&mut out, &refused);
        }
    };
    match request {
        Request::Changed => {
            let _ = shared.hints.send(Hint::Control);
            send(&mut out, &Message::Ok)
        }
        Request::Activity => send(&mut out, &Message::Activity(shared.activity())),
        Request::Follow { recent } => follow_for(out, shared, recent),
    }
}

/// Streams to one follower until the engine stops or the follower goes.
fn follow_for(mut out: &Stream, shared: &Shared, recent: usize) -> io::Result<()> {
    let (tx, rx) = bounded(FOLLOW_QUEUE);
    // Taken as the follower is added, under the same lock, so that no
    // upload is missed or told twice.
    let past: Vec<Arc<str>> = {
        let kept = shared.recent.lock().unwrap_or_else(PoisonError::into_inner);
        shared
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        let skip = kept.len().saturating_sub(recent);
        kept.iter().skip(skip).cloned().collect()
    };
    for line in past {
        write_line(&mut out, &line)?;
    }
    send(&mut out, &Message::Activity(shared.activity()))?;
    loop {
        match rx.recv_timeout(KEEPALIVE) {
            Ok(line) => write_line(&mut out, &line)?,
            Err(RecvTimeoutError::Timeout) => {
                send(&mut out, &Message::Activity(shared.activity()))?
            }
            Err(RecvTimeoutError::Disconnected) if shared.stopping.load(Ordering::SeqCst) => {
                return Ok(());
            }
            Err(RecvTimeoutError::Disconnected) => {
                let dropped = Message::Error {
                    code: "too_slow".into(),
                    message: format!(
                        "this follower fell {FOLLOW_QUEUE} messages behind the engine and was \
                         dropped; follow again"
                    ),
                };
                return send(&mut out, &dropped);
            }
        }
    }
}

fn line_of(message: &Message) -> Arc<str> {
    serde_json::to_string(message).expect("serialisable").into()
}

fn send(out: &mut impl Write, message: &Message) -> io::Result<()> {
    write_line(out, &serde_json::to_string(message).expect("serialisable"))
}

fn write_line(out: &mut impl Write, line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    out.write_all(&bytes)
}

/// A connection to the running engine, if one serves this data folder.
fn connect(home: &Home) -> Option<Stream> {
    let stream = Endpoint::of(home).ok()?.connect().ok()?;
    stream.set_recv_timeout(Some(ANSWER_WITHIN)).ok()?;
    stream.set_send_timeout(Some(ANSWER_WITHIN)).ok()?;
    Some(stream)
}

/// One request and its answer; `None` without a running engine or an
/// answer in time.
fn ask(home: &Home, request: Request) -> Option<Message> {
    let stream = connect(home)?;
    write_line(
        &mut &stream,
        &serde_json::to_string(&request).expect("serialisable"),
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// Tells a running engine, if any, that the configuration changed.
pub(crate) fn changed(home: &Home) {
    if let Some(Message::Error { message, .. }) = ask(home, Request::Changed) {
        tracing::warn!("the running engine refused a change notice: {message}");
    }
}

/// What the running engine does now; `None` if none answers.
pub(crate) fn activity(home: &Home) -> Option<Activity> {
    match ask(home, Request::Activity)? {
        Message::Activity(activity) => Some(activity),
        _ => None,
    }
}

/// Follows the running engine, handing each message to `each`, until it
/// stops (`Ok`).
pub(crate) fn follow(home: &Home, recent: usize, each: &mut dyn FnMut(Message)) -> Result<()> {
    let gone = |why: String| Error::Invalid(why);
    let endpoint =
        Endpoint::of(home).map_err(|e| Error::io("cannot follow the engine of", home.dir(), e))?;
    let stream = endpoint.connect().map_err(|e| {
        gone(format!(
            "no running engine answers at {} ({e}). `shoebox status --follow` follows \
             `shoebox run` or the tray app; start one of them",
            endpoint.shown
        ))
    })?;
    let io = |e: io::Error| Error::io("cannot follow the engine of", home.dir(), e);
    stream.set_send_timeout(Some(ANSWER_WITHIN)).map_err(io)?;
    stream.set_recv_timeout(Some(FOLLOW_SILENCE)).map_err(io)?;
    let request = Request::Follow { recent };
    let request = serde_json::to_string(&request).expect("serialisable");
    write_line(&mut &stream, &request).map_err(io)?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => match serde_json::from_str::<Message>(&line) {
                Ok(Message::Error { message, .. }) => return Err(gone(message)),
                Ok(message) => each(message),
                Err(e) => {
                    return Err(gone(format!(
                        "the running engine sent what this `shoebox` does not read ({e}); \
                         is it another version? Restart it"
                    )));
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(gone(format!(
                    "the running engine stopped answering: nothing heard for {} s",
                    FOLLOW_SILENCE.as_secs()
                )));
            }
            Err(e) => return Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Outcome;

    fn uploaded(name: &str) -> Event {
        Event::FileDone {
            path: format!("/photos/{name}"),
            album: "Trip".into(),
            name: name.into(),
            outcome: Outcome::Uploaded,
            bytes: 10,
            size: 10,
            taken: None,
            note: None,
        }
    }

    fn names(messages: &[Message]) -> Vec<String> {
        messages
            .iter()
            .map(|m| match m {
                Message::Event(Event::FileDone { name, .. }) => name.clone(),
                Message::Event(other) => format!("{other:?}"),
                Message::Activity(a) => format!("activity settling={}", a.settling),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// A follower asking for the recent uploads gets the last ones, oldest
    /// first, then the activity, then what happens; the engine stopping
    /// ends its stream. Over the real socket.
    #[test]
    fn a_follower_gets_the_recent_uploads_then_what_happens_until_the_engine_stops() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(Some(dir.path().join("home"))).unwrap();
        let (hints, _hinted) = crossbeam_channel::unbounded();
        let server = Server::start(&home, hints).expect("the socket is served");
        for name in ["a.jpg", "b.jpg", "c.jpg"] {
            server.event(&uploaded(name));
        }
        let activity = Activity {
            settling: 2,
            ..Activity::default()
        };
        server.publish(&activity);

        let (got_tx, got) = crossbeam_channel::unbounded();
        let follower = {
            let home = home.clone();
            std::thread::spawn(move || {
                follow(&home, 2, &mut |m| {
                    let _ = got_tx.send(m);
                })
            })
        };
        let mut seen = Vec::new();
        while seen.len() < 3 {
            seen.push(
                got.recv_timeout(Duration::from_secs(10))
                    .expect("the follower hears within 10 s"),
            );
        }
        assert_eq!(names(&seen), ["b.jpg", "c.jpg", "activity settling=2"]);
        server.event(&uploaded("d.jpg"));
        let next = got
            .recv_timeout(Duration::from_secs(10))
            .expect("the next upload within 10 s");
        assert_eq!(names(&[next]), ["d.jpg"]);
        drop(server);
        follower
            .join()
            .unwrap()
            .expect("the stream ends cleanly when the engine stops");
        #[cfg(unix)]
        assert!(!home.api_path().exists(), "the socket goes with the engine");
    }
}
