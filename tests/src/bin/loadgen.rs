//! loadgen: drives a VLESS-over-TLS server directly (no second proxy in the way) and
//! reports what the *server* spent, read from `/proc/PID/stat` and `/proc/PID/status`
//! before and after each load. Those figures (CPU-seconds per GB, CPU per connection,
//! RSS per idle connection) hold on a noisy machine where wall-clock ones do not.
//!
//! It starts its own targets on loopback: a source (sends as many bytes as asked), a
//! sink (counts what it gets), an echo and a web page. Scenarios: `download`,
//! `upload` (one stream), `streams` and `streams-up` (N at once), `mux-http` (the
//! Mux.Cool scenario that crashed Xray: 64 HTTP requests per tunnel, each sniffed and
//! routed on its own), `connect` (TLS handshake + VLESS header + a small
//! HTTP request echoed back, at a concurrency, with p50/p99 latency: the sniffers see
//! what they would on a real connection), `idle` (N such connections held open), `mux`
//! (N downloads over one Mux.Cool tunnel).
//!
//! ```sh
//! loadgen --server 127.0.0.1:8443 --pid $(pidof wasmray) --ca cert.pem \
//!     --uuid 27848739-7e62-4138-9fd3-098a63964b6b --scenarios download,connect,idle
//! ```
//! Prints one JSON object per scenario on stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use clap::Parser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wasmray::proto::mux::{Frame, MuxNetwork, Status};
use wasmray::proto::vless::{Addons, Command, RequestHeader};
use wasmray::proto::{Address, Destination};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server's VLESS-over-TLS address.
    #[arg(long)]
    server: SocketAddr,
    /// The server's process id (for /proc figures).
    #[arg(long)]
    pid: u32,
    /// PEM file of the server's certificate (or its CA).
    #[arg(long)]
    ca: std::path::PathBuf,
    #[arg(long, default_value = "localhost")]
    sni: String,
    #[arg(long, default_value = "27848739-7e62-4138-9fd3-098a63964b6b")]
    uuid: uuid::Uuid,
    /// Comma-separated: idle,download,upload,streams,streams-up,connect,mux,mux-http.
    /// `idle` goes first by default: after other loads a garbage-collected server (Go)
    /// reuses the heap they left and its per-connection growth reads as almost nothing.
    #[arg(
        long,
        default_value = "idle,download,upload,streams,streams-up,connect,mux,mux-http"
    )]
    scenarios: String,
    /// Bytes per throughput scenario.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Concurrent streams for `streams` and `mux`.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Connections for `connect`.
    #[arg(long, default_value_t = 2000)]
    conns: usize,
    /// Concurrency for `connect`.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Connections held for `idle`.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// Tunnels for `mux-http`, each with `mux_streams` HTTP requests at once.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    #[arg(long, default_value_t = 64)]
    mux_streams: usize,
    /// Give up on any scenario after this many seconds.
    #[arg(long, default_value_t = 300)]
    limit: u64,
}

type Tls = TlsStream<TcpStream>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let targets = Targets::start().await?;
    let client = Client::new(&args)?;
    for scenario in args.scenarios.split(',') {
        let limit = Duration::from_secs(args.limit);
        let run = run(scenario, &args, &client, &targets);
        // A scenario a server cannot serve (e.g. Mux.Cool on sing-box) is reported, and
        // the others still run.
        let report = match tokio::time::timeout(limit, run).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => serde_json::json!({"scenario": scenario, "error": format!("{e:#}")}),
            Err(_) => serde_json::json!({"scenario": scenario, "error": format!("over {limit:?}")}),
        };
        println!("{report}");
    }
    Ok(())
}

async fn run(
    scenario: &str,
    args: &Args,
    client: &Client,
    targets: &Targets,
) -> anyhow::Result<serde_json::Value> {
    let before = Usage::read(args.pid)?;
    let started = Instant::now();
    let mut extra = serde_json::Map::new();
    let bytes = match scenario {
        "download" => client.download(targets.source, args.bytes).await?,
        "upload" => client.upload(targets.sink, args.bytes).await?,
        "streams" => {
            client
                .streams(targets.source, args.bytes, args.streams)
                .await?
        }
        "streams-up" => {
            client
                .uploads(targets.sink, args.bytes, args.streams)
                .await?
        }
        "mux-http" => {
            let (subs, bad) = client
                .mux_http(targets.web, args.rounds, args.mux_streams)
                .await?;
            let cpu = Usage::read(args.pid)?.cpu_secs - before.cpu_secs;
            let secs = started.elapsed().as_secs_f64();
            extra.insert(
                "sub_streams_per_sec".into(),
                round(subs as f64 / secs).into(),
            );
            extra.insert(
                "server_cpu_ms_per_sub_stream".into(),
                round(cpu * 1000.0 / subs as f64).into(),
            );
            extra.insert("failed_sub_streams".into(), bad.into());
            0
        }
        "mux" => client.mux(targets.source, args.bytes, args.streams).await?,
        "connect" => {
            let latencies = client
                .connects(targets.echo, args.conns, args.concurrency)
                .await?;
            extra.insert("p50_ms".into(), percentile(&latencies, 50).into());
            extra.insert("p99_ms".into(), percentile(&latencies, 99).into());
            0
        }
        "idle" => {
            let held = client.hold(targets.echo, args.idle).await?;
            let during = Usage::read(args.pid)?;
            let per = (during.rss_kib - before.rss_kib) as f64 / held.len() as f64;
            extra.insert("rss_kib_per_conn".into(), round(per).into());
            0
        }
        other => anyhow::bail!("unknown scenario {other:?}"),
    };
    let secs = started.elapsed().as_secs_f64();
    let after = Usage::read(args.pid)?;
    let cpu = after.cpu_secs - before.cpu_secs;
    let mut report = serde_json::json!({
        "scenario": scenario,
        "secs": round(secs),
        "server_cpu_secs": round(cpu),
        "server_rss_kib": after.rss_kib,
    });
    if bytes > 0 {
        let gb = bytes as f64 / 1e9;
        report["mb_per_sec"] = round(bytes as f64 / 1e6 / secs).into();
        report["server_cpu_secs_per_gb"] = round(cpu / gb).into();
    }
    if scenario == "connect" {
        report["conns_per_sec"] = round(args.conns as f64 / secs).into();
        report["server_cpu_ms_per_conn"] = round(cpu * 1000.0 / args.conns as f64).into();
    }
    for (k, v) in extra {
        report[k] = v;
    }
    Ok(report)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn percentile(sorted_ms: &[f64], p: usize) -> f64 {
    let i = (sorted_ms.len() * p / 100).min(sorted_ms.len().saturating_sub(1));
    round(sorted_ms.get(i).copied().unwrap_or(0.0))
}

/// A process's CPU time and resident memory.
struct Usage {
    cpu_secs: f64,
    rss_kib: i64,
}

impl Usage {
    fn read(pid: u32) -> anyhow::Result<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the `(comm)`, which may hold spaces: utime and stime are the
        // 12th and 13th after it (fields 14 and 15 of the whole line).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
            anyhow::bail!("unreadable /proc/{pid}/stat");
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Ok(Usage {
            cpu_secs: (utime + stime) / clock_ticks(),
            rss_kib,
        })
    }
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The local targets the server relays to.
struct Targets {
    source: SocketAddr,
    sink: SocketAddr,
    echo: SocketAddr,
    web: SocketAddr,
}

impl Targets {
    async fn start() -> std::io::Result<Targets> {
        Ok(Targets {
            source: serve(source).await?,
            sink: serve(sink).await?,
            echo: serve(echo).await?,
            web: serve(web).await?,
        })
    }
}

async fn serve<F, Fut>(handler: F) -> std::io::Result<SocketAddr>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(handler(s));
        }
    });
    Ok(addr)
}

/// Reads an 8-byte size, sends that many bytes, closes.
async fn source(mut s: TcpStream) -> std::io::Result<()> {
    let mut left = s.read_u64().await?;
    let block = vec![0x5au8; 64 * 1024];
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await
}

/// Reads an 8-byte size and that many bytes, answers the count (no half-close
/// needed: not every server passes one on).
async fn sink(mut s: TcpStream) -> std::io::Result<()> {
    let size = s.read_u64().await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    while total < size {
        match s.read(&mut buf).await? {
            0 => break,
            n => total += n as u64,
        }
    }
    s.write_u64(total).await?;
    s.shutdown().await
}

/// HTTP: answers one request with a small page and closes.
async fn web(mut s: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await? {
            0 => return Ok(()),
            n => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .await?;
    s.shutdown().await
}

async fn echo(mut s: TcpStream) -> std::io::Result<()> {
    let (mut r, mut w) = s.split();
    tokio::io::copy(&mut r, &mut w).await?;
    Ok(())
}

struct Client {
    tls: TlsConnector,
    server: SocketAddr,
    sni: ServerName<'static>,
    uuid: [u8; 16],
}

impl Client {
    fn new(args: &Args) -> anyhow::Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&args.ca)? {
            roots.add(cert?)?;
        }
        // Go's cipher-suite order, as the real clients (Xray, v2ray, sing-box) offer.
        let provider = wasmray::security::client_provider();
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            server: args.server,
            sni: ServerName::try_from(args.sni.clone())?,
            uuid: *args.uuid.as_bytes(),
        })
    }

    /// A VLESS connection with `command`, `first` glued to the header.
    async fn open(&self, command: Command, first: &[u8]) -> anyhow::Result<Tls> {
        let tcp = TcpStream::connect(self.server).await?;
        tcp.set_nodelay(true)?;
        let mut tls = self.tls.connect(self.sni.clone(), tcp).await?;
        let header = RequestHeader {
            uuid: self.uuid,
            addons: Addons::default(),
            command,
        };
        let mut out = BytesMut::new();
        header.encode(&mut out)?;
        out.extend_from_slice(first);
        tls.write_all(&out).await?;
        tls.flush().await?;
        Ok(tls)
    }

    async fn download(&self, source: SocketAddr, bytes: u64) -> anyhow::Result<u64> {
        let mut s = self
            .open(Command::Tcp(dest(source)), &bytes.to_be_bytes())
            .await?;
        let got = drain(&mut s).await?.saturating_sub(2);
        anyhow::ensure!(got == bytes, "download: {got} of {bytes} bytes");
        Ok(got)
    }

    async fn upload(&self, sink: SocketAddr, bytes: u64) -> anyhow::Result<u64> {
        let mut s = self
            .open(Command::Tcp(dest(sink)), &bytes.to_be_bytes())
            .await?;
        let block = vec![0xa5u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            s.write_all(&block[..n]).await?;
            left -= n as u64;
        }
        s.flush().await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 64];
        while answer.len() < 10 {
            let n = s.read(&mut buf).await?;
            anyhow::ensure!(n > 0, "upload: closed before the count");
            answer.extend_from_slice(&buf[..n]);
        }
        Ok(bytes)
    }

    async fn streams(&self, source: SocketAddr, bytes: u64, n: usize) -> anyhow::Result<u64> {
        let each = bytes / n as u64;
        let mut tasks = Vec::new();
        for _ in 0..n {
            tasks.push(self.download(source, each));
        }
        let done = futures_join_all(tasks).await;
        done.into_iter().sum()
    }

    async fn uploads(&self, sink: SocketAddr, bytes: u64, n: usize) -> anyhow::Result<u64> {
        let each = bytes / n as u64;
        let tasks: Vec<_> = (0..n).map(|_| self.upload(sink, each)).collect();
        futures_join_all(tasks).await.into_iter().sum()
    }

    /// The Mux.Cool scenario that crashed Xray-core 24.9.30: tunnels of many HTTP
    /// requests at once, each a sub-stream the server sniffs and routes on its own.
    /// Returns the sub-streams served and how many did not get their page.
    async fn mux_http(
        &self,
        web: SocketAddr,
        rounds: usize,
        streams: usize,
    ) -> anyhow::Result<(u64, u64)> {
        let mut bad = 0u64;
        for round in 0..rounds {
            let mut frames = BytesMut::new();
            for id in 1..=streams as u16 {
                let request = format!(
                    "GET /{round}/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCache-Control: no-cache\r\n\r\n",
                    web.port()
                );
                Frame::new_session(id, MuxNetwork::Tcp, dest(web), Some(request.as_bytes()))
                    .encode(&mut frames)?;
            }
            let mut s = self.open(Command::Mux, &frames).await?;
            let pages = collect_pages(&mut s, streams).await?;
            bad += pages.iter().filter(|p| !p.ends_with(b"ok")).count() as u64;
            bad += streams.saturating_sub(pages.len()) as u64;
        }
        Ok(((rounds * streams) as u64, bad))
    }

    /// Connection rate: each one a TLS handshake, a header, one byte each way.
    async fn connects(
        &self,
        echo: SocketAddr,
        total: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<f64>> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let worker = async || -> anyhow::Result<Vec<f64>> {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let started = Instant::now();
                self.echo_once(echo).await?;
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(latencies)
        };
        let workers: Vec<_> = (0..concurrency).map(|_| worker()).collect();
        let mut all = Vec::new();
        for result in futures_join_all(workers).await {
            all.extend(result?);
        }
        all.sort_by(f64::total_cmp);
        Ok(all)
    }

    /// Opens `n` sessions (each proven live by a 1-byte echo) and returns them open.
    async fn hold(&self, echo: SocketAddr, n: usize) -> anyhow::Result<Vec<Tls>> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.echo_once(echo).await?);
        }
        // Let the server settle (buffers freed after the first exchange).
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(held)
    }

    /// One session: a small HTTP request (what the sniffers see on a real connection)
    /// sent with the header, echoed back whole.
    async fn echo_once(&self, echo: SocketAddr) -> anyhow::Result<Tls> {
        let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", echo.port());
        let mut s = self
            .open(Command::Tcp(dest(echo)), request.as_bytes())
            .await?;
        let mut reply = vec![0u8; 2 + request.len()];
        s.read_exact(&mut reply).await?;
        anyhow::ensure!(
            reply.get(2..) == Some(request.as_bytes()),
            "echo: {reply:?}"
        );
        Ok(s)
    }

    /// `n` downloads at once over one Mux.Cool tunnel.
    async fn mux(&self, source: SocketAddr, bytes: u64, n: usize) -> anyhow::Result<u64> {
        let each = bytes / n as u64;
        let mut frames = BytesMut::new();
        for id in 1..=n as u16 {
            let size = each.to_be_bytes();
            Frame::new_session(id, MuxNetwork::Tcp, dest(source), Some(&size))
                .encode(&mut frames)?;
        }
        let mut s = self.open(Command::Mux, &frames).await?;
        let mut buf = BytesMut::with_capacity(256 * 1024);
        let mut got = 0u64;
        let mut ended = 0;
        let mut header = 2usize;
        while ended < n {
            if s.read_buf(&mut buf).await? == 0 {
                anyhow::bail!("mux: tunnel closed after {ended} of {n} sub-streams");
            }
            let skip = header.min(buf.len());
            buf.advance(skip);
            header -= skip;
            while let Some((frame, used)) = Frame::decode(&buf)? {
                match frame.status {
                    Status::Keep { .. } => got += frame.data.map_or(0, |d| d.len() as u64),
                    Status::End { .. } => ended += 1,
                    _ => {}
                }
                buf.advance(used);
            }
            buf.reserve(64 * 1024);
        }
        anyhow::ensure!(got == each * n as u64, "mux: {got} bytes");
        Ok(got)
    }
}

/// Reads a tunnel until `n` sub-streams have ended; each one's bytes.
async fn collect_pages(s: &mut Tls, n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut pages: std::collections::HashMap<u16, Vec<u8>> = Default::default();
    let mut ended = 0;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut header = 2usize;
    while ended < n {
        if s.read_buf(&mut buf).await? == 0 {
            break;
        }
        let skip = header.min(buf.len());
        buf.advance(skip);
        header -= skip;
        while let Some((frame, used)) = Frame::decode(&buf)? {
            let page = pages.entry(frame.session_id).or_default();
            match frame.status {
                Status::Keep { .. } => page.extend_from_slice(frame.data.unwrap_or_default()),
                Status::End { .. } => ended += 1,
                _ => {}
            }
            buf.advance(used);
        }
    }
    Ok(pages.into_values().collect())
}

fn dest(addr: SocketAddr) -> Destination {
    Destination::new(Address::from_ip(addr.ip()), addr.port())
}

/// Reads to EOF; returns the byte count.
async fn drain<R: AsyncRead + Unpin>(s: &mut R) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if total > 0 && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(total);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in set.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
