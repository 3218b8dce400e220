//! A DNS server for the tests, on loopback: UDP, TCP and DNS over HTTPS (HTTP/2 POST,
//! its own certificate for 127.0.0.1), answering A and AAAA questions from a table
//! and counting the questions it was asked, so a test can tell a cached answer from
//! a second lookup. Only what the resolver under test sends is understood.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// What the server knows and what it was asked.
#[derive(Default)]
pub struct Zone {
    names: HashMap<String, Vec<IpAddr>>,
    /// Names that answer only after this delay.
    slow: HashMap<String, Duration>,
    asked: Mutex<Vec<String>>,
    questions: AtomicUsize,
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    /// `name` (without the final dot) answers `ips`.
    pub fn with(mut self, name: &str, ips: &[&str]) -> Zone {
        let ips = ips.iter().map(|ip| ip.parse().expect("ip")).collect();
        self.names.insert(name.to_ascii_lowercase(), ips);
        self
    }

    /// `name` answers `ips`, but only after `delay`.
    pub fn slow(mut self, name: &str, ips: &[&str], delay: Duration) -> Zone {
        self.slow.insert(name.to_ascii_lowercase(), delay);
        self.with(name, ips)
    }
}

pub struct DnsServer {
    pub zone: Arc<Zone>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// DNS over HTTPS, at `/dns-query`.
    pub https: SocketAddr,
    /// The certificate the DNS-over-HTTPS listener presents (for 127.0.0.1).
    pub cert_der: Vec<u8>,
}

impl DnsServer {
    pub async fn start(zone: Zone) -> DnsServer {
        let zone = Arc::new(zone);
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
        let https = TcpListener::bind("127.0.0.1:0").await.expect("bind https");
        let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let https_addr = https.local_addr().unwrap();
        tokio::spawn(serve_udp(udp, zone.clone()));
        tokio::spawn(serve_tcp(tcp, zone.clone()));
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
        let cert_der = cert.cert.der().to_vec();
        tokio::spawn(serve_https(https, zone.clone(), cert));
        DnsServer {
            zone,
            udp: udp_addr,
            tcp: tcp_addr,
            https: https_addr,
            cert_der,
        }
    }

    /// Questions asked so far (A and AAAA count one each).
    pub fn questions(&self) -> usize {
        self.zone.questions.load(Ordering::SeqCst)
    }

    /// The names asked about, in order, lower-case, without the final dot.
    pub fn asked(&self) -> Vec<String> {
        self.zone.asked.lock().unwrap().clone()
    }

    /// A client config trusting the DNS-over-HTTPS certificate.
    pub fn tls(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert_der.clone()))
            .expect("root");
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

async fn serve_udp(socket: UdpSocket, zone: Arc<Zone>) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 4096];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let query = buf[..n].to_vec();
        let (socket, zone) = (socket.clone(), zone.clone());
        tokio::spawn(async move {
            if let Some(reply) = answer(&zone, &query).await {
                let _ = socket.send_to(&reply, from).await;
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Zone>) {
    while let Ok((mut tcp, _)) = listener.accept().await {
        let zone = zone.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if tcp.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                if tcp.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&zone, &query).await else {
                    return;
                };
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                if tcp.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn serve_https(
    listener: TcpListener,
    zone: Arc<Zone>,
    cert: rcgen::CertifiedKey<rcgen::KeyPair>,
) {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, zone) = (acceptor.clone(), zone.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut h2) = h2::server::handshake(tls).await else {
                return;
            };
            while let Some(Ok((request, respond))) = h2.accept().await {
                tokio::spawn(doh_request(zone.clone(), request, respond));
            }
        });
    }
}

async fn doh_request(
    zone: Arc<Zone>,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let ok = request.method() == http::Method::POST && request.uri().path() == "/dns-query";
    let mut body = request.into_body();
    let mut query = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        query.extend_from_slice(&chunk);
    }
    let reply = if ok {
        answer(&zone, &query).await
    } else {
        None
    };
    let Some(reply) = reply else {
        let response = http::Response::builder().status(400).body(()).unwrap();
        let _ = respond.send_response(response, true);
        return;
    };
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/dns-message")
        .header("content-length", reply.len())
        .body(())
        .unwrap();
    if let Ok(mut stream) = respond.send_response(response, false) {
        let _ = stream.send_data(Bytes::from(reply), true);
    }
}

/// The reply to one query: its question answered from the zone (NXDOMAIN for a name
/// it does not know), or `None` for bytes that are not a query it understands.
async fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    let (name, qtype, question_end) = question(query)?;
    zone.questions.fetch_add(1, Ordering::SeqCst);
    zone.asked.lock().unwrap().push(name.clone());
    if let Some(delay) = zone.slow.get(&name) {
        tokio::time::sleep(*delay).await;
    }
    let ips: Vec<&IpAddr> = match zone.names.get(&name) {
        Some(ips) => ips
            .iter()
            .filter(|ip| match qtype {
                TYPE_A => ip.is_ipv4(),
                TYPE_AAAA => ip.is_ipv6(),
                _ => false,
            })
            .collect(),
        None => Vec::new(),
    };
    let rcode = if zone.names.contains_key(&name) { 0 } else { 3 };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&header[..2]); // id
    out.extend_from_slice(&[0x81, 0x80 | rcode]); // response, RD, RA, rcode
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(ips.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    for ip in ips {
        out.extend_from_slice(&[0xc0, 12]); // the question's name
        let (rtype, data) = match ip {
            IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
            IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1]); // IN
        out.extend_from_slice(&300u32.to_be_bytes()); // TTL
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    Some(out)
}

/// The first question: (name lower-case without the final dot, type, end offset).
fn question(query: &[u8]) -> Option<(String, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        let label = query.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    Some((labels.join("."), qtype, at + 4))
}
