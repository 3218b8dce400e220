//! `xray.app.stats.command.StatsService` over the daemon's [`Stats`], with Xray's
//! semantics: GetStats and the online lookups answer NOT_FOUND with `<name> not
//! found.`; QueryStats matches a plain substring; GetUsersStats lists online users.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::generated::xray::app::stats::command as pb;
use crate::stats::{SEP, Stats};

pub struct StatsApi {
    pub stats: Arc<Stats>,
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("{name} not found."))
}

/// Counters are u64 here and int64 on the wire.
fn wire(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn stat(name: String, value: u64) -> pb::Stat {
    pb::Stat {
        name,
        value: wire(value),
    }
}

/// The email of an online-map name, `user>>>EMAIL>>>online`.
fn email_of(name: &str) -> &str {
    let rest = name.strip_prefix("user").and_then(|r| r.strip_prefix(SEP));
    rest.and_then(|r| r.strip_suffix("online"))
        .and_then(|r| r.strip_suffix(SEP))
        .unwrap_or(name)
}

#[tonic::async_trait]
impl pb::stats_service_server::StatsService for StatsApi {
    async fn get_stats(
        &self,
        request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let r = request.into_inner();
        let value = self
            .stats
            .get(&r.name, r.reset)
            .ok_or_else(|| not_found(&r.name))?;
        Ok(Response::new(pb::GetStatsResponse {
            stat: Some(stat(r.name, value)),
        }))
    }

    async fn get_stats_online(
        &self,
        request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let r = request.into_inner();
        let map = self
            .stats
            .online_map(&r.name)
            .ok_or_else(|| not_found(&r.name))?;
        Ok(Response::new(pb::GetStatsResponse {
            stat: Some(stat(r.name, map.count() as u64)),
        }))
    }

    async fn query_stats(
        &self,
        request: Request<pb::QueryStatsRequest>,
    ) -> Result<Response<pb::QueryStatsResponse>, Status> {
        let r = request.into_inner();
        let found = self.stats.query(&r.pattern, r.reset);
        Ok(Response::new(pb::QueryStatsResponse {
            stat: found.into_iter().map(|(n, v)| stat(n, v)).collect(),
        }))
    }

    async fn get_sys_stats(
        &self,
        _: Request<pb::SysStatsRequest>,
    ) -> Result<Response<pb::SysStatsResponse>, Status> {
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        Ok(Response::new(pb::SysStatsResponse {
            num_goroutine: u32::try_from(tasks).unwrap_or(u32::MAX),
            sys: super::sys::resident_bytes().unwrap_or(0),
            uptime: u32::try_from(self.stats.uptime_secs()).unwrap_or(u32::MAX),
            ..Default::default()
        }))
    }

    async fn get_stats_online_ip_list(
        &self,
        request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsOnlineIpListResponse>, Status> {
        let r = request.into_inner();
        let map = self
            .stats
            .online_map(&r.name)
            .ok_or_else(|| not_found(&r.name))?;
        Ok(Response::new(pb::GetStatsOnlineIpListResponse {
            name: r.name,
            ips: map.ips().into_iter().collect(),
        }))
    }

    async fn get_all_online_users(
        &self,
        _: Request<pb::GetAllOnlineUsersRequest>,
    ) -> Result<Response<pb::GetAllOnlineUsersResponse>, Status> {
        Ok(Response::new(pb::GetAllOnlineUsersResponse {
            users: self.stats.online_users(),
        }))
    }

    async fn get_users_stats(
        &self,
        request: Request<pb::GetUsersStatsRequest>,
    ) -> Result<Response<pb::GetUsersStatsResponse>, Status> {
        let r = request.into_inner();
        let mut users = Vec::new();
        for name in self.stats.online_users() {
            let email = email_of(&name).to_string();
            let ips = (self.stats.online_map(&name).map(|m| m.ips())).unwrap_or_default();
            let traffic = r.include_traffic.then(|| {
                let counter = |dir: &str| {
                    let name = format!("user{SEP}{email}{SEP}traffic{SEP}{dir}");
                    wire(self.stats.get(&name, r.reset).unwrap_or(0))
                };
                pb::TrafficUserStat {
                    uplink: counter("uplink"),
                    downlink: counter("downlink"),
                }
            });
            let ips = ips
                .into_iter()
                .map(|(ip, last_seen)| pb::OnlineIpEntry { ip, last_seen });
            users.push(pb::UserStat {
                email,
                ips: ips.collect(),
                traffic,
            });
        }
        Ok(Response::new(pb::GetUsersStatsResponse { users }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_is_the_middle_of_an_online_name() {
        assert_eq!(email_of("user>>>a@b>>>online"), "a@b");
        assert_eq!(email_of("user>>>x.y>>>z>>>online"), "x.y>>>z");
        assert_eq!(email_of("odd"), "odd");
    }
}
