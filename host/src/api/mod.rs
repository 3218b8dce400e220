//! Xray's management API over gRPC (tonic), so a panel that drives Xray (3x-ui,
//! Remnawave, Marzban, PasarGuard) drives wasmray unchanged: the `HandlerService`
//! manages VLESS users at runtime and the `StatsService` reads the traffic counters,
//! each also under its v2ray name, as Xray registers them.
//!
//! The `.proto` files are in `host/proto/`, written from the wire facts; the code in
//! `generated/` comes from them (see `host/proto/README.md`).

mod account;
mod handler;
mod stats_service;
mod sys;
mod tls;

#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
#[rustfmt::skip]
pub mod generated;

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use crate::config::ApiTls;
use crate::daemon::Daemon;
use generated::xray::app::proxyman::command::handler_service_server::HandlerServiceServer;
use generated::xray::app::stats::command::stats_service_server::StatsServiceServer;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("api: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("{0}")]
    Tls(#[from] tls::ApiTlsError),
}

/// A service also reachable under another name: requests to `/ALIAS/Method` are
/// served as `/S::NAME/Method` (v2ray clients use the older names).
#[derive(Clone)]
struct Alias<S, N> {
    inner: S,
    _name: std::marker::PhantomData<N>,
}

/// A service's other name.
trait OtherName: Clone + Send + Sync + 'static {
    const NAME: &'static str;
}

#[derive(Clone)]
struct V2rayHandler;
impl OtherName for V2rayHandler {
    const NAME: &'static str = "v2ray.core.app.proxyman.command.HandlerService";
}

#[derive(Clone)]
struct V2rayStats;
impl OtherName for V2rayStats {
    const NAME: &'static str = "v2ray.core.app.stats.command.StatsService";
}

impl<S: NamedService, N: OtherName> NamedService for Alias<S, N> {
    const NAME: &'static str = N::NAME;
}

impl<S, N, B> Service<http::Request<B>> for Alias<S, N>
where
    S: Service<http::Request<B>> + NamedService,
    N: OtherName,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let renamed = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(N::NAME))
            .map(|method| format!("/{}{method}", S::NAME));
        if let Some(Ok(uri)) = renamed.map(|p| p.parse::<http::Uri>()) {
            *request.uri_mut() = uri;
        }
        self.inner.call(request)
    }
}

fn alias<S, N>(inner: S) -> Alias<S, N> {
    Alias {
        inner,
        _name: std::marker::PhantomData,
    }
}

/// Serves the API on `listener` until `shutdown` resolves, behind TLS if `tls`.
pub async fn serve(
    listener: TcpListener,
    daemon: Arc<Daemon>,
    tls: Option<&ApiTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ApiError> {
    let stats = daemon.stats.clone();
    let handler = || {
        HandlerServiceServer::new(handler::HandlerApi {
            daemon: daemon.clone(),
        })
    };
    let stats = || {
        StatsServiceServer::new(stats_service::StatsApi {
            stats: stats.clone(),
        })
    };
    let router = tonic::transport::Server::builder()
        .add_service(handler())
        .add_service(alias::<_, V2rayHandler>(handler()))
        .add_service(stats())
        .add_service(alias::<_, V2rayStats>(stats()));
    match tls {
        Some(tls) => {
            let incoming = tls::incoming(listener, tls::acceptor(tls)?);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        None => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
    }
    Ok(())
}
