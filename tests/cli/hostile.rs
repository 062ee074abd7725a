//! Servers that break the protocol on purpose, for the destination tests:
//! one that answers 200 to every request (a catch-all web application, a
//! login page) and one that accepts connections and never answers. Both
//! count what they get and stop when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Every request gets `200 OK` and a small HTML page; nothing is stored.
    OkToEverything,
    /// Connections are accepted and held open; nothing is ever answered.
    NeverAnswers,
    /// A WebDAV server that says yes to everything and keeps nothing:
    /// PUT and MOVE succeed, and a HEAD never finds the file.
    StoresNothing,
    /// Every request is redirected elsewhere (a login page on another
    /// server), which never sees the credentials.
    Redirects,
}

pub struct Hostile {
    pub port: u16,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

const PAGE: &str = "<html><body>Please log in</body></html>";

impl Hostile {
    pub fn start(behaviour: Behaviour) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (r, st, h) = (requests.clone(), stop.clone(), held.clone());
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                match behaviour {
                    Behaviour::NeverAnswers => {
                        r.fetch_add(1, Ordering::SeqCst);
                        h.lock().unwrap().push(conn);
                    }
                    other => {
                        let r = r.clone();
                        std::thread::spawn(move || answer(conn, other, &r));
                    }
                }
            }
        });
        Hostile {
            port,
            requests,
            stop,
            held,
            acceptor: Some(acceptor),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/dav/", self.port)
    }

    /// Requests (or, for `NeverAnswers`, connections) received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Answers every request on a keep-alive connection as `behaviour` says.
fn answer(conn: TcpStream, behaviour: Behaviour, requests: &AtomicU64) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let head = line.starts_with("HEAD ");
        let mut len = 0u64;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        if std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink()).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let method = line.split(' ').next().unwrap_or_default();
        let status = match (behaviour, method) {
            (Behaviour::Redirects, _) => "302 Found\r\nLocation: http://127.0.0.1:9/login",
            (Behaviour::StoresNothing, "PROPFIND") => "207 Multi-Status",
            (Behaviour::StoresNothing, "HEAD" | "GET") => "404 Not Found",
            (Behaviour::StoresNothing, "PUT" | "MOVE" | "COPY" | "MKCOL") => "201 Created",
            _ => "200 OK",
        };
        let body = if head { "" } else { PAGE };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            PAGE.len()
        );
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        self.held.lock().unwrap().clear();
    }
}
