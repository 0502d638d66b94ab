//! What the TLS handshake actually did, read from the server's own handshake messages.
//!
//! quinn 0.9 tells neither side whether TLS resumed a session, nor the server whether it took
//! 0-RTT. So both sides wrap quinn's rustls session (`quinn_proto::crypto::Session`, a public
//! trait) in `Probe`, which passes every call through unchanged and also reads the plaintext TLS
//! handshake messages the server sends (the server's probe sees them in `write_handshake`, the
//! client's in `read_handshake`):
//!
//! - `resumed`: a ServerHello carried the `pre_shared_key` extension (41): the server chose a PSK
//!   from a ticket (RFC 8446 §4.2.11), so no certificate was sent.
//! - `early_data`: the EncryptedExtensions carried the `early_data` extension (42): the server
//!   accepted the client's 0-RTT data (RFC 8446 §4.2.10).
//! - `tickets`: how many NewSessionTicket messages (type 4) the server sent (client: received, and
//!   by then rustls has stored them in its session cache).

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use quinn_proto::crypto::{
    self, ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey, UnsupportedVersion,
};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectError, ConnectionId, Side, TransportError};

#[derive(Default)]
pub struct Facts {
    pub resumed: AtomicBool,
    pub early_data: AtomicBool,
    pub tickets: AtomicUsize,
    pub ticket_arrived: tokio::sync::Notify,
}

impl Facts {
    pub fn resumed(&self) -> bool {
        self.resumed.load(Ordering::SeqCst)
    }
    pub fn early_data(&self) -> bool {
        self.early_data.load(Ordering::SeqCst)
    }
    pub fn tickets(&self) -> usize {
        self.tickets.load(Ordering::SeqCst)
    }
}

/// What `Connection::handshake_data()` returns for a probed session: rustls's own handshake data
/// (`quinn::crypto::rustls::HandshakeData`) and the facts.
pub struct ProbeData {
    #[allow(dead_code)]
    pub inner: Box<dyn Any>,
    pub facts: Arc<Facts>,
}

/// Reassembles the server's handshake messages (type u8, length u24, body) from the byte stream.
struct Reader {
    buf: Vec<u8>,
    facts: Arc<Facts>,
}

const SERVER_HELLO: u8 = 2;
const NEW_SESSION_TICKET: u8 = 4;
const ENCRYPTED_EXTENSIONS: u8 = 8;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_EARLY_DATA: u16 = 42;

impl Reader {
    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            if self.buf.len() < 4 {
                return;
            }
            let len = (usize::from(self.buf[1]) << 16) | (usize::from(self.buf[2]) << 8) | usize::from(self.buf[3]);
            if self.buf.len() < 4 + len {
                return;
            }
            let typ = self.buf[0];
            let body: Vec<u8> = self.buf[4..4 + len].to_vec();
            self.buf.drain(..4 + len);
            self.message(typ, &body);
        }
    }

    fn message(&mut self, typ: u8, body: &[u8]) {
        match typ {
            SERVER_HELLO => {
                // legacy_version(2) random(32) legacy_session_id<0..32> cipher_suite(2)
                // legacy_compression_method(1) extensions<..>
                let sid_len = match body.get(34) {
                    Some(&n) => usize::from(n),
                    None => return,
                };
                let at = 35 + sid_len + 3;
                if has_extension(body.get(at..).unwrap_or(&[]), EXT_PRE_SHARED_KEY) {
                    self.facts.resumed.store(true, Ordering::SeqCst);
                }
            }
            ENCRYPTED_EXTENSIONS => {
                if has_extension(body, EXT_EARLY_DATA) {
                    self.facts.early_data.store(true, Ordering::SeqCst);
                }
            }
            NEW_SESSION_TICKET => {
                self.facts.tickets.fetch_add(1, Ordering::SeqCst);
                self.facts.ticket_arrived.notify_one();
            }
            _ => {}
        }
    }
}

/// `block` is an extensions list: a u16 length, then (type u16, length u16, data) entries.
fn has_extension(block: &[u8], wanted: u16) -> bool {
    if block.len() < 2 {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([block[0], block[1]]));
    let list = &block[2..block.len().min(2 + total)];
    let mut i = 0;
    while i + 4 <= list.len() {
        let typ = u16::from_be_bytes([list[i], list[i + 1]]);
        let len = usize::from(u16::from_be_bytes([list[i + 2], list[i + 3]]));
        if typ == wanted {
            return true;
        }
        i += 4 + len;
    }
    false
}

pub struct Probe {
    inner: Box<dyn crypto::Session>,
    side: Side,
    reader: Reader,
}

impl Probe {
    fn new(inner: Box<dyn crypto::Session>, side: Side, facts: Arc<Facts>) -> Self {
        Probe { inner, side, reader: Reader { buf: Vec::new(), facts } }
    }
}

impl crypto::Session for Probe {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }

    fn handshake_data(&self) -> Option<Box<dyn Any>> {
        let inner = self.inner.handshake_data()?;
        Some(Box::new(ProbeData { inner, facts: self.reader.facts.clone() }))
    }

    fn peer_identity(&self) -> Option<Box<dyn Any>> {
        self.inner.peer_identity()
    }

    fn early_crypto(&self) -> Option<(Box<dyn HeaderKey>, Box<dyn PacketKey>)> {
        self.inner.early_crypto()
    }

    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.early_data_accepted()
    }

    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }

    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        let result = self.inner.read_handshake(buf);
        if self.side == Side::Client && result.is_ok() {
            self.reader.feed(buf);
        }
        result
    }

    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }

    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        let start = buf.len();
        let keys = self.inner.write_handshake(buf);
        if self.side == Side::Server {
            self.reader.feed(&buf[start..]);
        }
        keys
    }

    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        self.inner.next_1rtt_keys()
    }

    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner.is_valid_retry(orig_dst_cid, header, payload)
    }

    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> Result<(), ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}

/// Server side: every session gets its own `Facts`, reachable through `handshake_data()`.
pub struct ProbedServer(pub Arc<rustls::ServerConfig>);

impl crypto::ServerConfig for ProbedServer {
    fn initial_keys(&self, version: u32, dst_cid: &ConnectionId, side: Side) -> Result<Keys, UnsupportedVersion> {
        crypto::ServerConfig::initial_keys(&*self.0, version, dst_cid, side)
    }

    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        crypto::ServerConfig::retry_tag(&*self.0, version, orig_dst_cid, packet)
    }

    fn start_session(self: Arc<Self>, version: u32, params: &TransportParameters) -> Box<dyn crypto::Session> {
        let inner = crypto::ServerConfig::start_session(self.0.clone(), version, params);
        Box::new(Probe::new(inner, Side::Server, Arc::new(Facts::default())))
    }
}

/// Client side: one `ProbedClient` per connection (all sharing one rustls config, hence one
/// session cache), so the caller keeps that connection's `Facts`.
pub struct ProbedClient {
    pub tls: Arc<rustls::ClientConfig>,
    pub facts: Arc<Facts>,
}

impl crypto::ClientConfig for ProbedClient {
    fn start_session(
        self: Arc<Self>,
        version: u32,
        server_name: &str,
        params: &TransportParameters,
    ) -> Result<Box<dyn crypto::Session>, ConnectError> {
        let inner = crypto::ClientConfig::start_session(self.tls.clone(), version, server_name, params)?;
        Ok(Box::new(Probe::new(inner, Side::Client, self.facts.clone())))
    }
}
