//! A fault-injecting HTTP/1.1 proxy for the destination tests, put between
//! the `shoebox` binary and a real server (Garage, rclone serve webdav). It
//! counts requests and the request-body bytes it forwards, and on a chosen
//! share of requests (deterministic, seeded) it resets the connection,
//! answers 503 or 429 with `Retry-After: 1` or a bare 500, stalls without
//! answering, or lets the server do the work and then cuts its answer
//! short (the client cannot know whether the request took effect).
//! Each request is forwarded on its own upstream connection and answered
//! with `Connection: close`, which keeps the framing simple and valid.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection abruptly (TCP reset) after reading the request.
    Reset,
    /// Answer 503 Service Unavailable with Retry-After: 1.
    Unavailable,
    /// Read the request, answer nothing for `stall`, then close.
    Stall,
    /// Answer uploads (PUT) with 507 Insufficient Storage.
    Full,
    /// Answer 429 Too Many Requests with Retry-After: 1.
    Throttled,
    /// Answer 500 Internal Server Error.
    ServerError,
    /// Forward the request, then relay only part of the server's answer
    /// and reset the connection.
    Truncated,
}

/// Every fault a server or network can inflict on any request (Full only
/// applies to uploads and is tested on its own).
pub const EVERY_FAULT: &[Fault] = &[
    Fault::Reset,
    Fault::Unavailable,
    Fault::Stall,
    Fault::Throttled,
    Fault::ServerError,
    Fault::Truncated,
];

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    /// Request-body bytes forwarded to the server.
    pub body_bytes: AtomicU64,
    pub faults: AtomicU64,
    /// Faults injected, by kind.
    pub by_kind: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Every request byte the client sent (heads and bodies), once
    /// [`Proxy::record`] was called.
    pub recorded: Mutex<Option<Vec<u8>>>,
}

struct Plan {
    /// Percentage of requests that get a fault.
    percent: u64,
    kinds: Vec<Fault>,
    rng: u64,
    stall: Duration,
}

pub struct Proxy {
    pub port: u16,
    pub stats: Arc<Stats>,
    plan: Arc<Mutex<Plan>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let plan = Arc::new(Mutex::new(Plan {
            percent: 0,
            kinds: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            stall: Duration::from_secs(5),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p, st) = (stats.clone(), plan.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (s, p) = (s.clone(), p.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &s, &p);
                });
            }
        });
        Proxy {
            port,
            stats,
            plan,
            stop,
        }
    }

    /// From now on, `percent` % of requests get one of `kinds` (in turn,
    /// chosen by a seeded generator so runs are repeatable).
    pub fn inject(&self, percent: u64, kinds: &[Fault], stall: Duration) {
        let mut plan = self.plan.lock().unwrap();
        plan.percent = percent;
        plan.kinds = kinds.to_vec();
        plan.stall = stall;
    }

    /// From now on, keeps every byte of every request the client sends.
    pub fn record(&self) {
        *self.stats.recorded.lock().unwrap() = Some(Vec::new());
    }

    /// The request bytes kept since [`Proxy::record`].
    pub fn recorded(&self) -> Vec<u8> {
        self.stats
            .recorded
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default()
    }

    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    pub fn body_bytes(&self) -> u64 {
        self.stats.body_bytes.load(Ordering::Relaxed)
    }

    pub fn faults(&self) -> u64 {
        self.stats.faults.load(Ordering::Relaxed)
    }

    /// How many faults of each kind were injected.
    pub fn faults_by_kind(&self) -> std::collections::BTreeMap<String, u64> {
        self.stats.by_kind.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn next_fault(plan: &Mutex<Plan>) -> Option<(Fault, Duration)> {
    let mut p = plan.lock().unwrap();
    if p.percent == 0 || p.kinds.is_empty() {
        return None;
    }
    // xorshift64*: repeatable, good enough to spread faults.
    p.rng ^= p.rng >> 12;
    p.rng ^= p.rng << 25;
    p.rng ^= p.rng >> 27;
    let r = p.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
    if r % 100 >= p.percent {
        return None;
    }
    let kind = p.kinds[((r / 100) % p.kinds.len() as u64) as usize];
    Some((kind, p.stall))
}

/// Reads one request head; `None` at a clean end of the connection.
fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn content_length(head: &[String]) -> u64 {
    head.iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The head with `Connection: close` in place of any Connection header.
fn closing(head: &[String]) -> String {
    let mut out = String::new();
    for l in head {
        if l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn serve(client: TcpStream, upstream: u16, stats: &Stats, plan: &Mutex<Plan>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let len = content_length(&head);
    let recording = stats.recorded.lock().unwrap().is_some();
    // A recorded request's body is read whole first (test files are small).
    let mut body = Vec::new();
    if recording {
        (&mut reader).take(len).read_to_end(&mut body)?;
        if let Some(all) = stats.recorded.lock().unwrap().as_mut() {
            all.extend_from_slice(head.join("\r\n").as_bytes());
            all.extend_from_slice(&body);
        }
    }
    let mut reader = io::Cursor::new(body).chain(reader);
    let is_put = head.first().is_some_and(|l| l.starts_with("PUT "));
    let fault = next_fault(plan).filter(|(f, _)| *f != Fault::Full || is_put);
    if let Some((fault, _)) = fault {
        stats.faults.fetch_add(1, Ordering::Relaxed);
        *stats
            .by_kind
            .lock()
            .unwrap()
            .entry(format!("{fault:?}"))
            .or_default() += 1;
    }
    if let Some((fault, stall)) = fault.filter(|(f, _)| *f != Fault::Truncated) {
        let answer = |status: &str, extra: &str| {
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
        };
        match fault {
            Fault::Reset => {
                // Linger 0: close() sends a reset, as a crashed peer would.
                linger_zero(&client);
                return Ok(());
            }
            Fault::Unavailable => {
                io::copy(&mut (&mut reader).take(len), &mut io::sink())?;
                client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
            Fault::Full => {
                io::copy(&mut (&mut reader).take(len), &mut io::sink())?;
                client.write_all(
                    b"HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
            Fault::Stall => {
                io::copy(&mut (&mut reader).take(len), &mut io::sink())?;
                std::thread::sleep(stall);
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Throttled | Fault::ServerError => {
                io::copy(&mut (&mut reader).take(len), &mut io::sink())?;
                let text = if fault == Fault::Throttled {
                    answer("429 Too Many Requests", "Retry-After: 1\r\n")
                } else {
                    answer("500 Internal Server Error", "")
                };
                client.write_all(text.as_bytes())?;
                return Ok(());
            }
            Fault::Truncated => unreachable!("filtered out above"),
        }
    }
    let truncate = fault.is_some();
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(closing(&head).as_bytes())?;
    // Counted as it passes, so a test can see the rate over time.
    let mut counted = Counting {
        inner: &mut up,
        count: &stats.body_bytes,
    };
    io::copy(&mut (&mut reader).take(len), &mut counted)?;
    // The answer: its head gets Connection: close, the rest is relayed.
    let mut up_reader = BufReader::new(up);
    let Some(resp_head) = read_head(&mut up_reader)? else {
        return Ok(());
    };
    if truncate {
        // The server has done the work; the client gets half an answer.
        let head = closing(&resp_head);
        let body = content_length(&resp_head);
        if body > 1 {
            client.write_all(head.as_bytes())?;
            io::copy(&mut (&mut up_reader).take(body / 2), &mut client)?;
        } else {
            client.write_all(&head.as_bytes()[..head.len() / 2])?;
        }
        client.flush()?;
        linger_zero(&client);
        return Ok(());
    }
    client.write_all(closing(&resp_head).as_bytes())?;
    io::copy(&mut up_reader, &mut client)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// Sets SO_LINGER to zero so that closing the socket resets the connection.
fn linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized linger struct.
    #[allow(unsafe_code)]
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A writer that adds what it passes on to a counter.
struct Counting<'a, W> {
    inner: W,
    count: &'a AtomicU64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
