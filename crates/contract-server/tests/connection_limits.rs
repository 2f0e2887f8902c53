//! No connection can hold the server: idle and slowloris connections are closed
//! by the header-read (and keep-alive idle) timeout, a trickling body by its
//! deadline, the cap on open connections keeps the descriptors bounded, and
//! `/health` on a fresh connection keeps answering throughout. Real TCP and
//! HTTP over 127.0.0.1 against the in-process server; timeouts are lowered
//! through `ServerOptions::limits` so the attacks finish in seconds.
//!
//! The attack tests open 3,000 client sockets in this process while the server
//! (same process) holds up to as many: they need about 6,100 descriptors, and
//! check the soft limit (which `Server::bind` raised to the hard one) first.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use opencode_sync_contract_server::{
    ConnectionLimits, DEFAULT_BODY_MIN_BYTES_PER_SEC, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_RESPONSE_WRITE_TIMEOUT, Fault,
    Server, ServerHandle, ServerOptions,
};
use rustix::process::{Resource, getrlimit};
use tokio::net::TcpStream;

use common::{Client, KEY};

/// The attacks run one at a time: each needs thousands of descriptors and the
/// probe's latency is the measurement.
static ATTACK: Mutex<()> = Mutex::new(());

const IDLE_CONNECTIONS: usize = 2_000;
const SLOWLORIS_CONNECTIONS: usize = 1_000;
/// The attack tests' header-read timeout.
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
/// How late after the timeout a connection may still be closed (scheduling on
/// a busy 2-core machine, accept backlog).
const CLOSE_MARGIN: Duration = Duration::from_secs(3);
const TRICKLE_EVERY: Duration = Duration::from_millis(900);
const PROBE_EVERY: Duration = Duration::from_millis(250);
const PROBE_MAX_LATENCY: Duration = Duration::from_secs(1);

fn server_with(limits: ConnectionLimits) -> ServerHandle {
    ServerHandle::start(ServerOptions {
        limits,
        ..ServerOptions::default().with_api_key(KEY)
    })
    .expect("server starts")
}

fn addr_of(server: &ServerHandle) -> SocketAddr {
    server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("http://IP:PORT")
}

/// `/health` on a fresh connection every 250 ms until stopped (at most 2 min):
/// each answer's status (0: no answer) and latency.
fn probe_health(
    url: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u16, Duration)>> {
    std::thread::spawn(move || {
        let client = Client::new(&url, None);
        let mut probes = Vec::new();
        for _ in 0..480 {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let started = Instant::now();
            let status = client.try_get("/health").map_or(0, |r| r.status);
            probes.push((status, started.elapsed()));
            std::thread::sleep(PROBE_EVERY);
        }
        probes
    })
}

/// Waits until the server closes the connection (EOF or reset; an answer such
/// as `408` may come first): how long after connecting, or `None` if still
/// open at `give_up`.
async fn closed_by_server(
    stream: &mut TcpStream,
    started: Instant,
    give_up: Instant,
) -> Option<Duration> {
    let mut buf = [0u8; 512];
    loop {
        if tokio::time::timeout_at(give_up.into(), stream.readable())
            .await
            .is_err()
        {
            return None;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                return Some(started.elapsed());
            }
            // An answer (such as `408`) before the close, or a spurious wake.
            Ok(_) | Err(_) => {}
        }
    }
}

/// Sends `bytes` without waiting (a fresh socket's send buffer takes them);
/// false once the server closed the connection.
async fn send(stream: &TcpStream, bytes: &[u8]) -> bool {
    match stream.try_write(bytes) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// Connects and sends nothing.
async fn idle(addr: SocketAddr, give_up_after: Duration) -> Option<Duration> {
    let started = Instant::now();
    let give_up = started + give_up_after;
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    closed_by_server(&mut stream, started, give_up).await
}

/// Sends part of a request head, then one more byte of it every 900 ms.
async fn slowloris(addr: SocketAddr, give_up_after: Duration) -> Option<Duration> {
    let started = Instant::now();
    let give_up = started + give_up_after;
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    if !send(
        &stream,
        b"POST /sync/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    )
    .await
    {
        return Some(started.elapsed());
    }
    // Bounded: at most one byte per tick until `give_up`.
    loop {
        let next_byte = Instant::now() + TRICKLE_EVERY;
        let closed = closed_by_server(&mut stream, started, next_byte.min(give_up)).await;
        if closed.is_some() {
            return closed;
        }
        if Instant::now() >= give_up {
            return None;
        }
        if !send(&stream, b"a").await {
            return Some(started.elapsed());
        }
    }
}

/// Opens 2,000 idle and 1,000 slowloris connections against a server with a
/// 3 s header-read timeout and this cap, probing `/health` throughout; asserts
/// every probe answered `200` within 1 s and every attacking connection was
/// closed within the timeout (+ margin). Returns when each was closed.
fn attack(max_connections: usize) -> Vec<Duration> {
    let _serial = ATTACK.lock().unwrap_or_else(|p| p.into_inner());
    let server = server_with(ConnectionLimits {
        header_read_timeout: HEADER_TIMEOUT,
        max_connections,
        ..ConnectionLimits::default()
    });
    let needed = (IDLE_CONNECTIONS + SLOWLORIS_CONNECTIONS) as u64 * 2 + 100;
    let fd_limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        fd_limit >= needed,
        "this test needs {needed} open files (the hard limit is {fd_limit}); raise it with ulimit -Hn"
    );
    let addr = addr_of(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe_health(server.url(), Arc::clone(&stop));

    let give_up_after = HEADER_TIMEOUT + CLOSE_MARGIN;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let closed = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..IDLE_CONNECTIONS + SLOWLORIS_CONNECTIONS {
            if i % 2 == 0 && i / 2 < SLOWLORIS_CONNECTIONS {
                tasks.spawn(slowloris(addr, give_up_after));
            } else {
                tasks.spawn(idle(addr, give_up_after));
            }
            // About 3,000 connections a second: an attacker's pace that the
            // accept backlog absorbs.
            if i % 30 == 29 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut closed = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            closed.push(outcome.expect("connection task"));
        }
        closed
    });
    // A few more probes after the attack, then stop.
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::Release);
    let probes = probe.join().expect("probe thread");

    assert!(probes.len() >= 8, "too few probes: {probes:?}");
    let slowest = probes.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let failed: Vec<_> = probes.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "/health did not answer 200: {failed:?}");
    assert!(
        slowest < PROBE_MAX_LATENCY,
        "/health took {slowest:?} at worst: {probes:?}"
    );
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        open,
        0,
        "{open} of {} connections still open {give_up_after:?} after they connected",
        closed.len()
    );
    closed.into_iter().flatten().collect()
}

#[test]
fn idle_and_slowloris_connections_are_closed_by_the_header_timeout_while_health_answers() {
    // A cap above the attack: only the timeouts close the connections.
    let closed = attack(4_096);
    let earliest = closed.iter().min().copied().unwrap_or_default();
    assert!(
        earliest >= HEADER_TIMEOUT - Duration::from_millis(100),
        "a connection was closed after {earliest:?}, before the {HEADER_TIMEOUT:?} timeout"
    );
}

#[test]
fn beyond_the_cap_the_oldest_idle_connections_make_room_and_health_answers() {
    // The production cap, far below the attack: the server holds at most 512
    // of them (1,024 while closing), the oldest make room for new ones, and
    // /health still gets in.
    let closed = attack(DEFAULT_MAX_CONNECTIONS);
    let early = closed
        .iter()
        .filter(|d| **d < HEADER_TIMEOUT - Duration::from_millis(100))
        .count();
    let attackers = IDLE_CONNECTIONS + SLOWLORIS_CONNECTIONS;
    assert!(
        early >= attackers - DEFAULT_MAX_CONNECTIONS - 100,
        "only {early} of {attackers} connections were closed early to make room"
    );
}

/// Reads one HTTP response (head and `Content-Length` body) from a blocking
/// stream: the status and the raw head.
fn read_response(stream: &mut StdTcpStream) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buf).expect("response arrives");
        assert!(n > 0, "closed before a response: {data:?}");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).expect("body arrives");
        assert!(n > 0, "closed inside the body");
        data.extend_from_slice(&buf[..n]);
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    (status, head)
}

/// Blocks until the server closes `stream`: how long that took from `since`.
fn wait_closed(stream: &mut StdTcpStream, since: Instant, give_up_after: Duration) -> Duration {
    stream
        .set_read_timeout(Some(give_up_after))
        .expect("read timeout");
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => since.elapsed(),
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => since.elapsed(),
        Err(e) => panic!("still open after {give_up_after:?}: {e}"),
    }
}

#[test]
fn a_kept_alive_connection_is_reused_and_closed_once_idle_for_the_header_timeout() {
    let idle_timeout = Duration::from_millis(1_500);
    let server = server_with(ConnectionLimits {
        header_read_timeout: idle_timeout,
        ..ConnectionLimits::default()
    });
    let mut stream = StdTcpStream::connect(addr_of(&server)).expect("connects");
    let request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(request).expect("first request");
    assert_eq!(read_response(&mut stream).0, 200);
    // Idle for most of the timeout, then reuse: each response restarts it.
    std::thread::sleep(idle_timeout / 2);
    stream.write_all(request).expect("second request");
    assert_eq!(read_response(&mut stream).0, 200);
    let answered = Instant::now();
    let closed_after = wait_closed(&mut stream, answered, idle_timeout * 4);
    assert!(
        closed_after >= idle_timeout - Duration::from_millis(100)
            && closed_after < idle_timeout + Duration::from_secs(2),
        "closed {closed_after:?} after the last response (timeout {idle_timeout:?})"
    );
}

#[test]
fn a_trickling_body_is_answered_408_and_closed_at_its_deadline() {
    let body_timeout = Duration::from_secs(1);
    let server = server_with(ConnectionLimits {
        body_read_timeout: body_timeout,
        ..ConnectionLimits::default()
    });
    let mut stream = StdTcpStream::connect(addr_of(&server)).expect("connects");
    let head = format!(
        "POST /sync/session HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).expect("head");
    let started = Instant::now();
    // One byte every 100 ms (far below 64 KiB/s) from another thread, for at
    // most 10 s or until the server closes.
    let mut writer = stream.try_clone().expect("clone");
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            if done_rx.recv_timeout(Duration::from_millis(100)).is_ok()
                || writer.write_all(b" ").is_err()
            {
                return;
            }
        }
    });
    let (status, response_head) = read_response(&mut stream);
    let answered_after = started.elapsed();
    let _ = done_tx.send(());
    trickle.join().expect("trickle thread");
    assert_eq!(status, 408, "{response_head}");
    assert!(
        answered_after >= body_timeout && answered_after < body_timeout + Duration::from_secs(2),
        "answered after {answered_after:?} (deadline {body_timeout:?})"
    );
    wait_closed(&mut stream, Instant::now(), Duration::from_secs(3));
    let logged = server.requests();
    assert!(
        logged
            .iter()
            .any(|r| r.status == 408
                && r.error.as_deref() == Some("Request body not received in time")),
        "{logged:?}"
    );
}

#[test]
fn a_client_that_never_reads_its_responses_is_cut_off_after_the_write_timeout() {
    let write_timeout = Duration::from_secs(1);
    let server = server_with(ConnectionLimits {
        header_read_timeout: Duration::from_secs(60),
        response_write_timeout: write_timeout,
        ..ConnectionLimits::default()
    });
    let addr = addr_of(&server);
    // A small receive window, so the server's writes stall soon.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(addr).await.expect("connects")
    });
    let mut stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    // 600 pipelined requests for a 25 KB asset: 15 MB of answers, far more
    // than the socket buffers between us hold.
    const REQUESTS: usize = 600;
    let request = "GET /assets/app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(REQUESTS);
    stream.write_all(request.as_bytes()).expect("requests sent");
    std::thread::sleep(write_timeout + Duration::from_secs(1));
    // Now read: what the server still sends, then the close.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
        if received > REQUESTS * 30_000 {
            break false;
        }
    };
    assert!(ended, "still open after {received} bytes");
    assert!(
        received < REQUESTS * 25_000 / 2,
        "the server kept writing: {received} bytes"
    );
}

#[test]
fn when_every_connection_is_busy_a_new_one_is_answered_503_with_retry_after() {
    let server = server_with(ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    });
    server
        .set_faults(vec![Fault::hang().with_paths(["/sync/session"])])
        .expect("faults");
    let held: Vec<_> = (0..2)
        .map(|_| {
            let client = Client::with_key(&server.url(), KEY);
            std::thread::spawn(move || client.try_post_raw("/sync/session", "{}").map(|r| r.status))
        })
        .collect();
    let client = Client::new(&server.url(), None);
    // Bounded wait until both requests are held (then /health is refused).
    let mut refused = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let resp = client.get("/health");
        if resp.status == 503 {
            refused = Some(resp);
            break;
        }
    }
    let refused = refused.expect("a third connection is refused while two requests are held");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(
        refused.error(),
        "Too many open connections; try again shortly"
    );
    server.clear_faults().expect("faults cleared");
    for request in held {
        let status = request
            .join()
            .expect("client thread")
            .expect("held request answered");
        assert_ne!(
            status, 503,
            "a held request was answered normally once released"
        );
    }
    assert_eq!(client.get("/health").status, 200);
}

#[test]
fn the_production_defaults_are_the_documented_ones() {
    let limits = ConnectionLimits::default();
    assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(limits.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
    assert_eq!(limits.body_read_timeout, Duration::from_secs(10));
    assert_eq!(limits.body_read_timeout, DEFAULT_BODY_READ_TIMEOUT);
    assert_eq!(limits.body_min_bytes_per_sec, 64 * 1024);
    assert_eq!(
        limits.body_min_bytes_per_sec,
        DEFAULT_BODY_MIN_BYTES_PER_SEC
    );
    assert_eq!(limits.response_write_timeout, Duration::from_secs(30));
    assert_eq!(
        limits.response_write_timeout,
        DEFAULT_RESPONSE_WRITE_TIMEOUT
    );
    assert_eq!(limits.max_connections, 512);
    assert_eq!(limits.max_connections, DEFAULT_MAX_CONNECTIONS);
    assert_eq!(ServerOptions::default().limits, limits);

    let readme = include_str!("../../server/README.md");
    for row in [
        "| request head (header-read and keep-alive idle timeout) | 10 s |",
        "| request body | 10 s + 1 s per 64 KiB received |",
        "| response the client does not read | 30 s without progress |",
        "| open connections | 512 (at most a quarter of the open-file limit) |",
    ] {
        assert!(
            readme.contains(row),
            "crates/server/README.md lacks {row:?}"
        );
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cap = runtime.block_on(async {
        Server::bind(ServerOptions::default())
            .await
            .expect("binds")
            .max_connections()
    });
    let fd_limit = getrlimit(Resource::Nofile).current;
    let expected = fd_limit.map_or(512, |n| {
        usize::try_from(n / 4).unwrap_or(usize::MAX).clamp(8, 512)
    });
    assert_eq!(cap, expected, "soft open-file limit {fd_limit:?}");
}
