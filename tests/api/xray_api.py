#!/usr/bin/env python3
"""One call of Xray's management API through python-xray-api (PyPI: Python stubs
generated from Xray's own .proto files), as a panel makes it. Prints one JSON line:
{"ok": RESULT} or {"code": GRPC_CODE_NAME, "details": MESSAGE}.

    xray_api.py PORT add TAG EMAIL UUID FLOW
    xray_api.py PORT remove TAG EMAIL
    xray_api.py PORT users TAG [EMAIL]
    xray_api.py PORT count TAG
    xray_api.py PORT inbounds
    xray_api.py PORT stat NAME [reset]
    xray_api.py PORT query PATTERN [reset]
    xray_api.py PORT online NAME
    xray_api.py PORT ips NAME
    xray_api.py PORT all-online
    xray_api.py PORT users-stats [traffic]
    xray_api.py PORT sys
    xray_api.py PORT v2ray-query PATTERN     (the StatsService under its v2ray name)

With XRAY_API_CA set (a PEM file), the call goes over TLS to the name "localhost",
trusting that CA; XRAY_API_CERT and XRAY_API_KEY add a client certificate.
"""
import json
import os
import sys

import grpc
from xray.app.proxyman.command import command_pb2 as handler
from xray.app.proxyman.command import command_pb2_grpc as handler_grpc
from xray.app.stats.command import command_pb2 as stats
from xray.app.stats.command import command_pb2_grpc as stats_grpc
from xray.common.protocol import user_pb2
from xray.common.serial import typed_message_pb2
from xray.proxy.vless import account_pb2


def typed(message):
    return typed_message_pb2.TypedMessage(
        type=message.DESCRIPTOR.full_name, value=message.SerializeToString())


def call(channel, args):
    h = handler_grpc.HandlerServiceStub(channel)
    s = stats_grpc.StatsServiceStub(channel)
    verb, rest = args[0], args[1:]
    if verb == "add":
        tag, email, uuid, flow = rest
        account = account_pb2.Account(id=uuid, flow=flow)
        user = user_pb2.User(email=email, account=typed(account))
        h.AlterInbound(handler.AlterInboundRequest(
            tag=tag, operation=typed(handler.AddUserOperation(user=user))))
        return True
    if verb == "remove":
        tag, email = rest
        h.AlterInbound(handler.AlterInboundRequest(
            tag=tag, operation=typed(handler.RemoveUserOperation(email=email))))
        return True
    if verb == "users":
        r = h.GetInboundUsers(handler.GetInboundUserRequest(
            tag=rest[0], email=rest[1] if len(rest) > 1 else ""))
        out = []
        for u in r.users:
            a = account_pb2.Account()
            if u.account.type:
                assert u.account.type == "xray.proxy.vless.Account", u.account.type
                a.ParseFromString(u.account.value)
            out.append({"email": u.email, "id": a.id, "flow": a.flow})
        return out
    if verb == "count":
        return h.GetInboundUsersCount(handler.GetInboundUserRequest(tag=rest[0])).count
    if verb == "inbounds":
        return [i.tag for i in h.ListInbounds(handler.ListInboundsRequest(isOnlyTags=True)).inbounds]
    if verb == "stat":
        r = s.GetStats(stats.GetStatsRequest(name=rest[0], reset=len(rest) > 1))
        return r.stat.value
    if verb in ("query", "v2ray-query"):
        if verb == "v2ray-query":
            method = channel.unary_unary(
                "/v2ray.core.app.stats.command.StatsService/QueryStats",
                request_serializer=stats.QueryStatsRequest.SerializeToString,
                response_deserializer=stats.QueryStatsResponse.FromString)
            r = method(stats.QueryStatsRequest(pattern=rest[0]))
        else:
            r = s.QueryStats(stats.QueryStatsRequest(pattern=rest[0], reset=len(rest) > 1))
        return {st.name: st.value for st in r.stat}
    if verb == "online":
        return s.GetStatsOnline(stats.GetStatsRequest(name=rest[0])).stat.value
    if verb == "ips":
        return dict(s.GetStatsOnlineIpList(stats.GetStatsRequest(name=rest[0])).ips)
    if verb == "all-online":
        return list(s.GetAllOnlineUsers(stats.GetAllOnlineUsersRequest()).users)
    if verb == "users-stats":
        r = s.GetUsersStats(stats.GetUsersStatsRequest(include_traffic=bool(rest)))
        return [{"email": u.email, "ips": [i.ip for i in u.ips],
                 "up": u.traffic.uplink, "down": u.traffic.downlink} for u in r.users]
    if verb == "sys":
        r = s.GetSysStats(stats.SysStatsRequest())
        return {"uptime": r.Uptime, "tasks": r.NumGoroutine, "sys": r.Sys}
    raise SystemExit(f"unknown verb {verb}")


def channel_to(port):
    target = f"127.0.0.1:{port}"
    ca = os.environ.get("XRAY_API_CA")
    if not ca:
        return grpc.insecure_channel(target)
    read = lambda name: open(os.environ[name], "rb").read() if os.environ.get(name) else None
    creds = grpc.ssl_channel_credentials(
        root_certificates=read("XRAY_API_CA"),
        private_key=read("XRAY_API_KEY"),
        certificate_chain=read("XRAY_API_CERT"),
    )
    options = [("grpc.ssl_target_name_override", "localhost")]
    return grpc.secure_channel(target, creds, options=options)


def main():
    port, args = sys.argv[1], sys.argv[2:]
    with channel_to(port) as channel:
        try:
            print(json.dumps({"ok": call(channel, args)}))
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details()}))


if __name__ == "__main__":
    main()
