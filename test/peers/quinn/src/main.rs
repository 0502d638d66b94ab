//! quinn interop peer for quicket: an echo server and a resuming 0-RTT client, ALPN "echo".
//!
//! Written against quinn 0.9's public API (quinn-proto's crypto traits, rustls 0.20). Every loop is
//! bounded in count and time; the program only talks to the address it is given.
//!
//!   server -addr 127.0.0.1:0 -cert server.pem -key server-key.pem [-duration 60s] [-max-conns 0]
//!   client -addr 127.0.0.1:PORT -ca ca.pem [-servername localhost] [-n 5] [-size 1024]
//!
//! Output is one JSON object a line on stdout; diagnostics go to stderr.

mod probe;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use probe::{Facts, ProbeData, ProbedClient, ProbedServer};
use quinn::{ConnectionError, Endpoint, IdleTimeout, TransportConfig, VarInt};

const ALPN: &[u8] = b"echo";

fn fatal(msg: &str) -> ! {
    eprintln!("quinn-peer: {}", msg);
    std::process::exit(2);
}

// ---- JSON out ---------------------------------------------------------------------------------

enum J {
    B(bool),
    N(f64),
    S(String),
}

fn emit(fields: &[(&str, J)]) {
    let mut line = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&quote(key));
        line.push(':');
        match value {
            J::B(b) => line.push_str(if *b { "true" } else { "false" }),
            J::N(n) if n.fract() == 0.0 && n.abs() < 1e15 => line.push_str(&format!("{}", *n as i64)),
            J::N(n) => line.push_str(&format!("{}", n)),
            J::S(s) => line.push_str(&quote(s)),
        }
    }
    line.push_str("}\n");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

// ---- flags ------------------------------------------------------------------------------------

struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: &[String], known: &[&str]) -> Flags {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].trim_start_matches('-');
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    i += 1;
                    match args.get(i) {
                        Some(v) => (arg.to_string(), v.clone()),
                        None => fatal(&format!("flag -{} needs a value", arg)),
                    }
                }
            };
            if !known.contains(&name.as_str()) {
                fatal(&format!("unknown flag -{} (known: -{})", name, known.join(" -")));
            }
            map.insert(name, value);
            i += 1;
        }
        Flags(map)
    }

    fn str(&self, name: &str, default: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| default.to_string())
    }

    fn num(&self, name: &str, default: u64) -> u64 {
        match self.0.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| fatal(&format!("-{}: not a number: {}", name, v))),
        }
    }

    fn duration(&self, name: &str, default: Duration) -> Duration {
        match self.0.get(name) {
            None => default,
            Some(v) => parse_duration(v).unwrap_or_else(|| fatal(&format!("-{}: not a duration: {}", name, v))),
        }
    }

    fn addr(&self, name: &str, default: &str) -> SocketAddr {
        let v = self.str(name, default);
        v.parse().unwrap_or_else(|_| fatal(&format!("-{}: not an IP:port address: {}", name, v)))
    }
}

/// Go-style durations with one unit: 500ms, 60s, 10m, 1h (a bare number is seconds).
fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    if !(0.0..=86400.0 * 365.0).contains(&secs) {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

// ---- TLS --------------------------------------------------------------------------------------

fn read_certs(path: &str) -> Vec<rustls::Certificate> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| fatal(&format!("{}: {}", path, e)));
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .unwrap_or_else(|e| fatal(&format!("{}: {}", path, e)));
    if certs.is_empty() {
        fatal(&format!("{}: no certificate", path));
    }
    certs.into_iter().map(rustls::Certificate).collect()
}

fn read_key(path: &str) -> rustls::PrivateKey {
    let file = std::fs::File::open(path).unwrap_or_else(|e| fatal(&format!("{}: {}", path, e)));
    let mut reader = std::io::BufReader::new(file);
    loop {
        match rustls_pemfile::read_one(&mut reader).unwrap_or_else(|e| fatal(&format!("{}: {}", path, e))) {
            Some(rustls_pemfile::Item::PKCS8Key(k))
            | Some(rustls_pemfile::Item::ECKey(k))
            | Some(rustls_pemfile::Item::RSAKey(k)) => return rustls::PrivateKey(k),
            Some(_) => continue,
            None => fatal(&format!("{}: no private key", path)),
        }
    }
}

fn transport() -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(30_000))));
    Arc::new(t)
}

// ---- main -------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        fatal("usage: quinn-peer server|client [flags]");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fatal(&format!("tokio: {}", e)));
    let code = match args[1].as_str() {
        "server" => runtime.block_on(run_server(&args[2..])),
        "client" => runtime.block_on(run_client(&args[2..])),
        other => fatal(&format!("unknown mode {:?} (want server or client)", other)),
    };
    drop(runtime);
    std::process::exit(code);
}

// ---- server -----------------------------------------------------------------------------------

/// An ending is clean when the peer (or we, on shutdown) closed the connection with code 0.
fn abnormal(err: &ConnectionError) -> Option<String> {
    match err {
        ConnectionError::ApplicationClosed(close) if close.error_code == VarInt::from_u32(0) => None,
        ConnectionError::ConnectionClosed(close) if u64::from(close.error_code) == 0 => None,
        ConnectionError::LocallyClosed => None,
        other => Some(other.to_string()),
    }
}

async fn run_server(args: &[String]) -> i32 {
    let flags = Flags::parse(args, &["addr", "cert", "key", "duration", "max-conns"]);
    let addr = flags.addr("addr", "127.0.0.1:4433");
    let cert = flags.str("cert", "");
    let key = flags.str("key", "");
    if cert.is_empty() || key.is_empty() {
        fatal("server: -cert and -key are required");
    }
    let duration = flags.duration("duration", Duration::from_secs(600));
    let max_conns = flags.num("max-conns", 0);

    let mut tls = rustls::ServerConfig::builder()
        .with_safe_default_cipher_suites()
        .with_safe_default_kx_groups()
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|e| fatal(&format!("tls: {}", e)))
        .with_no_client_auth()
        .with_single_cert(read_certs(&cert), read_key(&key))
        .unwrap_or_else(|e| fatal(&format!("server: cert/key: {}", e)));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // rustls 0.20 accepts 0-RTT only with stateful resumption: session ids kept in this store,
    // no stateless ticketer. QUIC needs max_early_data_size 0 or u32::MAX (RFC 9001 §4.6.1).
    // (The builder's default ticketer already produces no tickets; we keep it.)
    tls.session_storage = rustls::server::ServerSessionMemoryCache::new(1024);
    if tls.ticketer.enabled() {
        fatal("tls: expected rustls's default stateful resumption");
    }
    tls.max_early_data_size = u32::MAX;

    let mut config = quinn::ServerConfig::with_crypto(Arc::new(ProbedServer(Arc::new(tls))));
    config.transport = transport();
    let endpoint = match Endpoint::server(config, addr) {
        Ok(e) => e,
        Err(e) => fatal(&format!("server: listen {}: {}", addr, e)),
    };
    let local = endpoint.local_addr().unwrap_or(addr);
    emit(&[("listening", J::S(local.to_string()))]);

    let stop = Arc::new(tokio::sync::Notify::new());
    let ended = Arc::new(AtomicU64::new(0));
    let stats = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]); // resumed, early, failed
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fatal(&format!("signal: {}", e)));
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    let mut seq = 0u64;
    let mut tasks = Vec::new();
    loop {
        let connecting = tokio::select! {
            c = endpoint.accept() => match c { Some(c) => c, None => break },
            _ = &mut deadline => break,
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = stop.notified() => break,
        };
        seq += 1;
        let id = seq;
        let (stop, ended, stats) = (stop.clone(), ended.clone(), stats.clone());
        tasks.push(tokio::spawn(async move {
            let (conn, _) = match connecting.into_0rtt() {
                Ok(pair) => pair,
                Err(_) => unreachable!("a server's Connecting always converts"),
            };
            // Echo every bidirectional stream, from before the handshake completes on.
            let echo_conn = conn.clone();
            tokio::spawn(async move {
                while let Ok((mut send, mut recv)) = echo_conn.accept_bi().await {
                    tokio::spawn(async move {
                        loop {
                            match recv.read_chunk(64 * 1024, true).await {
                                Ok(Some(chunk)) => {
                                    if send.write_all(&chunk.bytes).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => {
                                    let _ = send.finish().await;
                                    return;
                                }
                                Err(_) => {
                                    let _ = send.reset(VarInt::from_u32(1));
                                    return;
                                }
                            }
                        }
                    });
                }
            });
            let reason = conn.closed().await;
            let facts = conn
                .handshake_data()
                .and_then(|d| d.downcast::<ProbeData>().ok())
                .map(|d| d.facts)
                .unwrap_or_else(|| Arc::new(Facts::default()));
            let mut line = vec![
                ("conn", J::N(id as f64)),
                ("resumed", J::B(facts.resumed())),
                ("earlyData", J::B(facts.early_data())),
            ];
            match abnormal(&reason) {
                Some(error) => {
                    stats[2].fetch_add(1, Ordering::SeqCst);
                    line.push(("error", J::S(error)));
                }
                None => {
                    if facts.resumed() {
                        stats[0].fetch_add(1, Ordering::SeqCst);
                    }
                    if facts.early_data() {
                        stats[1].fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            emit(&line);
            let n = ended.fetch_add(1, Ordering::SeqCst) + 1;
            if max_conns > 0 && n >= max_conns {
                stop.notify_one();
            }
        }));
    }
    endpoint.close(VarInt::from_u32(0), b"server stopping");
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    emit(&[
        ("summary", J::B(true)),
        ("connections", J::N(seq as f64)),
        ("resumed", J::N(stats[0].load(Ordering::SeqCst) as f64)),
        ("earlyData", J::N(stats[1].load(Ordering::SeqCst) as f64)),
        ("failed", J::N(stats[2].load(Ordering::SeqCst) as f64)),
    ]);
    0
}

// ---- client -----------------------------------------------------------------------------------

struct Outcome {
    resumed: bool,
    used0rtt: bool,
    sent0rtt: bool,
    got_ticket: bool,
    ms: f64,
    error: Option<String>,
}

async fn run_client(args: &[String]) -> i32 {
    let flags = Flags::parse(args, &["addr", "ca", "servername", "n", "size", "timeout", "ticket-wait"]);
    let addr = flags.addr("addr", "127.0.0.1:4433");
    let ca = flags.str("ca", "");
    let servername = flags.str("servername", "localhost");
    let n = flags.num("n", 10);
    let size = flags.num("size", 1024);
    let timeout = flags.duration("timeout", Duration::from_secs(10));
    let ticket_wait = flags.duration("ticket-wait", Duration::from_secs(2));
    if ca.is_empty() {
        fatal("client: -ca is required");
    }
    if !(1..=100_000).contains(&n) {
        fatal("client: -n must be 1..100000");
    }
    if size > 64 << 20 {
        fatal("client: -size must be 0..64 MiB");
    }

    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(&ca) {
        roots.add(&cert).unwrap_or_else(|e| fatal(&format!("{}: {}", ca, e)));
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_safe_default_cipher_suites()
        .with_safe_default_kx_groups()
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|e| fatal(&format!("tls: {}", e)))
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = true;
    // One cache for every connection; rustls keeps the newest ticket per server name.
    tls.session_storage = rustls::client::ClientSessionMemoryCache::new(32);
    let tls = Arc::new(tls);

    let bind: SocketAddr = if addr.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" }.parse().unwrap();
    let endpoint = Endpoint::client(bind).unwrap_or_else(|e| fatal(&format!("client: bind: {}", e)));
    let rng = ring::rand::SystemRandom::new();

    let (mut ok, mut failed, mut resumed, mut zero_rtt) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..n {
        let mut message = vec![0u8; size as usize];
        if ring::rand::SecureRandom::fill(&rng, &mut message).is_err() {
            fatal("rand failed");
        }
        let facts = Arc::new(Facts::default());
        let mut config = quinn::ClientConfig::new(Arc::new(ProbedClient { tls: tls.clone(), facts: facts.clone() }));
        config.transport_config(transport());
        let outcome = match tokio::time::timeout(
            timeout,
            one_connection(&endpoint, config, addr, &servername, &message, &facts, ticket_wait),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => Outcome {
                resumed: facts.resumed(),
                used0rtt: false,
                sent0rtt: false,
                got_ticket: false,
                ms: 0.0,
                error: Some(format!("timed out after {:?}", timeout)),
            },
        };
        let mut line = vec![
            ("i", J::N(i as f64)),
            ("resumed", J::B(outcome.resumed)),
            ("used0rtt", J::B(outcome.used0rtt)),
            ("ok", J::B(outcome.error.is_none())),
            ("sent0rtt", J::B(outcome.sent0rtt)),
            ("gotTicket", J::B(outcome.got_ticket)),
            ("ms", J::N((outcome.ms * 1000.0).round() / 1000.0)),
        ];
        if outcome.error.is_none() {
            ok += 1;
        } else {
            failed += 1;
        }
        resumed += outcome.resumed as u64;
        zero_rtt += outcome.used0rtt as u64;
        if let Some(e) = outcome.error {
            line.push(("error", J::S(e)));
        }
        emit(&line);
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    emit(&[
        ("summary", J::B(true)),
        ("n", J::N(n as f64)),
        ("ok", J::N(ok as f64)),
        ("failed", J::N(failed as f64)),
        ("resumed", J::N(resumed as f64)),
        ("used0rtt", J::N(zero_rtt as f64)),
    ]);
    if failed > 0 {
        1
    } else {
        0
    }
}

async fn one_connection(
    endpoint: &Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    servername: &str,
    message: &[u8],
    facts: &Arc<Facts>,
    ticket_wait: Duration,
) -> Outcome {
    let mut out = Outcome { resumed: false, used0rtt: false, sent0rtt: false, got_ticket: false, ms: 0.0, error: None };
    let start = Instant::now();
    let connecting = match endpoint.connect_with(config, addr, servername) {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(format!("connect: {}", e));
            return out;
        }
    };
    // With a cached ticket that allows early data, the stream opened below goes out as 0-RTT.
    let (conn, accepted) = match connecting.into_0rtt() {
        Ok((conn, accepted)) => {
            out.sent0rtt = true;
            (conn, Some(accepted))
        }
        Err(connecting) => match connecting.await {
            Ok(conn) => (conn, None),
            Err(e) => {
                out.error = Some(format!("handshake: {}", e));
                return out;
            }
        },
    };
    let echo = exchange(&conn, message).await;
    if let Some(accepted) = accepted {
        // Resolves once the handshake is complete: true if the server took our 0-RTT data.
        out.used0rtt = accepted.await;
        if !out.used0rtt {
            // quinn 0.9 discards the 0-RTT stream on rejection; the echo above then fails.
            if let Some(reason) = conn.close_reason() {
                out.error = Some(format!("handshake: {}", reason));
                return out;
            }
        }
    }
    out.resumed = facts.resumed();
    match echo {
        Err(e) => {
            out.error = Some(format!("echo: {}", e));
            conn.close(VarInt::from_u32(1), b"echo failed");
            return out;
        }
        Ok(echo) if echo != message => {
            out.error = Some(format!("echo mismatch: sent {} bytes, got {}", message.len(), echo.len()));
            conn.close(VarInt::from_u32(1), b"echo mismatch");
            return out;
        }
        Ok(_) => {}
    }
    out.ms = start.elapsed().as_secs_f64() * 1000.0;
    // Keep the connection until the server's NewSessionTicket arrives, so the next one resumes.
    let waited = tokio::time::timeout(ticket_wait, async {
        while facts.tickets() == 0 {
            facts.ticket_arrived.notified().await;
        }
    })
    .await;
    out.got_ticket = waited.is_ok();
    if out.resumed != facts.resumed() {
        out.resumed = facts.resumed();
    }
    conn.close(VarInt::from_u32(0), b"");
    out
}

/// Sends message on a new bidirectional stream, finishes it, and reads the whole reply.
async fn exchange(conn: &quinn::Connection, message: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, recv) = conn.open_bi().await.map_err(|e| format!("open: {}", e))?;
    let writer = async move {
        send.write_all(message).await.map_err(|e| format!("write: {}", e))?;
        send.finish().await.map_err(|e| format!("finish: {}", e))
    };
    let reader = async move { recv.read_to_end(message.len() + 1).await.map_err(|e| format!("read: {}", e)) };
    let (w, r) = tokio::join!(writer, reader);
    let echo = r?;
    w?;
    Ok(echo)
}
