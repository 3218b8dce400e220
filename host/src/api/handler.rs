//! `xray.app.proxyman.command.HandlerService`: the VLESS users of a running inbound,
//! added and removed at runtime (until the next reload, as in Xray), listed and
//! counted. Inbounds and outbounds come from the configuration, so their RPCs answer
//! UNIMPLEMENTED saying so. Errors are gRPC UNKNOWN with Xray's texts, which panels
//! match on.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::account::{self, Operation};
use super::generated::xray::app::proxyman::command as pb;
use super::generated::xray::core::InboundHandlerConfig;
use crate::daemon::Daemon;
use crate::inbound::vless::VlessServer;
use crate::ledger::{Ledger, LedgerError};

pub struct HandlerApi {
    pub daemon: Arc<Daemon>,
}

const FROM_CONFIG: &str = "wasmray builds inbounds and outbounds from its configuration: edit the file and reload (SIGHUP or `wasmray reload`)";

fn unknown(e: impl std::fmt::Display) -> Status {
    Status::unknown(e.to_string())
}

impl HandlerApi {
    /// The VLESS inbound `tag`, or Xray's answer for a missing or user-less one.
    async fn users_of(&self, tag: &str) -> Result<Arc<VlessServer>, Status> {
        match self.daemon.vless_inbound(tag).await {
            None => Err(unknown(format!(
                "app/proxyman/command: failed to get handler: {tag} > app/proxyman/inbound: handler not found: {tag}"
            ))),
            Some(None) => Err(unknown("proxy is not a UserManager")),
            Some(Some(server)) => Ok(server),
        }
    }
}

impl HandlerApi {
    /// Records a change in the `[api] persist` ledger, if there is one. A failed write
    /// leaves the change in effect until the next reload and says so to the caller.
    fn persist(
        &self,
        record: impl FnOnce(&Ledger) -> Result<(), LedgerError>,
    ) -> Result<(), Status> {
        let Some(ledger) = self.daemon.ledger() else {
            return Ok(());
        };
        record(ledger).map_err(|e| {
            tracing::error!("{e}");
            Status::internal(format!(
                "the change is in effect, but not kept across reloads: {e}"
            ))
        })
    }
}

#[tonic::async_trait]
impl pb::handler_service_server::HandlerService for HandlerApi {
    async fn add_inbound(
        &self,
        _: Request<pb::AddInboundRequest>,
    ) -> Result<Response<pb::AddInboundResponse>, Status> {
        Err(Status::unimplemented(FROM_CONFIG))
    }

    async fn remove_inbound(
        &self,
        _: Request<pb::RemoveInboundRequest>,
    ) -> Result<Response<pb::RemoveInboundResponse>, Status> {
        Err(Status::unimplemented(FROM_CONFIG))
    }

    async fn alter_inbound(
        &self,
        request: Request<pb::AlterInboundRequest>,
    ) -> Result<Response<pb::AlterInboundResponse>, Status> {
        let r = request.into_inner();
        let op = account::operation(r.operation).map_err(unknown)?;
        let server = self.users_of(&r.tag).await?;
        match op {
            Operation::Add(user) => {
                server.add_user(&user).map_err(unknown)?;
                tracing::info!(inbound = %r.tag, user = %user.email, "api: user added");
                self.persist(|l| l.added(&r.tag, &user))?;
            }
            Operation::Remove(email) => {
                server.remove_user(&email).map_err(unknown)?;
                tracing::info!(inbound = %r.tag, user = %email, "api: user removed");
                self.persist(|l| l.removed(&r.tag, &email))?;
            }
        }
        Ok(Response::new(pb::AlterInboundResponse {}))
    }

    async fn list_inbounds(
        &self,
        _: Request<pb::ListInboundsRequest>,
    ) -> Result<Response<pb::ListInboundsResponse>, Status> {
        let inbounds = (self.daemon.listeners().await.into_iter())
            .map(|(tag, _)| InboundHandlerConfig {
                tag,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(pb::ListInboundsResponse { inbounds }))
    }

    async fn get_inbound_users(
        &self,
        request: Request<pb::GetInboundUserRequest>,
    ) -> Result<Response<pb::GetInboundUserResponse>, Status> {
        let r = request.into_inner();
        let users = self.users_of(&r.tag).await?.users.load_full();
        let users = if r.email.is_empty() {
            users
                .listed()
                .map(|e| account::user_to(&e.user()))
                .collect()
        } else {
            // Exactly one entry, empty when nobody has that email (as Xray's nil user).
            let found = users.by_email(&r.email);
            vec![
                found
                    .map(|e| account::user_to(&e.user()))
                    .unwrap_or_default(),
            ]
        };
        Ok(Response::new(pb::GetInboundUserResponse { users }))
    }

    async fn get_inbound_users_count(
        &self,
        request: Request<pb::GetInboundUserRequest>,
    ) -> Result<Response<pb::GetInboundUsersCountResponse>, Status> {
        let r = request.into_inner();
        let users = self.users_of(&r.tag).await?.users.load_full();
        let count = i64::try_from(users.listed().count()).unwrap_or(i64::MAX);
        Ok(Response::new(pb::GetInboundUsersCountResponse { count }))
    }

    async fn add_outbound(
        &self,
        _: Request<pb::AddOutboundRequest>,
    ) -> Result<Response<pb::AddOutboundResponse>, Status> {
        Err(Status::unimplemented(FROM_CONFIG))
    }

    async fn remove_outbound(
        &self,
        _: Request<pb::RemoveOutboundRequest>,
    ) -> Result<Response<pb::RemoveOutboundResponse>, Status> {
        Err(Status::unimplemented(FROM_CONFIG))
    }

    async fn alter_outbound(
        &self,
        _: Request<pb::AlterOutboundRequest>,
    ) -> Result<Response<pb::AlterOutboundResponse>, Status> {
        Err(unknown("not an outbound operation"))
    }

    async fn list_outbounds(
        &self,
        _: Request<pb::ListOutboundsRequest>,
    ) -> Result<Response<pb::ListOutboundsResponse>, Status> {
        Err(Status::unimplemented(FROM_CONFIG))
    }
}
