//! Outbounds: freedom (direct), blackhole (block) and vless over TCP with TLS.

use serde_json::Value;

use super::Notes;
use super::inbound::{port, settings};
use super::toml_out::{OutMux, OutOutbound};
use super::xray::{self, Outbound};

pub fn convert_all(outbounds: &[Outbound], notes: &mut Notes) -> Vec<OutOutbound> {
    let mut out: Vec<OutOutbound> = Vec::new();
    for (i, o) in outbounds.iter().enumerate() {
        let at = format!("outbounds[{i}]");
        let tag = o.tag.clone().unwrap_or_else(|| format!("outbound-{i}"));
        let named = format!("{at} ({tag:?})");
        if out.iter().any(|x| x.tag == tag) {
            notes.not_carried(&named, "left out: a second outbound with this tag");
            continue;
        }
        let mut converted = OutOutbound {
            tag,
            ..OutOutbound::default()
        };
        let result = match o.protocol.as_str() {
            "freedom" | "direct" => freedom(o, &mut converted, &at, notes),
            "blackhole" | "block" => blackhole(o, &mut converted, &at, notes),
            "vless" => vless(o, &mut converted, &at, notes),
            other => Err(format!(
                "protocol {other:?} is not supported (freedom, blackhole and vless are)"
            )),
        };
        match result {
            Ok(()) => {
                notes.unknown(&at, &o.other);
                out.push(converted);
            }
            Err(why) => notes.not_carried(&named, format!("left out: {why}")),
        }
    }
    if out.is_empty() {
        notes.not_carried(
            "outbounds",
            "none could be carried over: a direct outbound stands in",
        );
        out.push(OutOutbound {
            tag: "direct".into(),
            kind: "direct",
            ..OutOutbound::default()
        });
    }
    out
}

fn object_keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn freedom(o: &Outbound, out: &mut OutOutbound, at: &str, notes: &mut Notes) -> Result<(), String> {
    out.kind = "direct";
    let s = o.settings.as_ref();
    for key in object_keys(s) {
        let value = s.and_then(|s| s.get(&key));
        let harmless = key == "domainStrategy" && value.and_then(Value::as_str) == Some("AsIs");
        if !harmless {
            notes.not_carried(&format!("{at}.settings.{key}"), "not carried over");
        }
    }
    plain_stream(o, at, notes)
}

fn blackhole(
    o: &Outbound,
    out: &mut OutOutbound,
    at: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    out.kind = "block";
    let response = o
        .settings
        .as_ref()
        .and_then(|s| s.pointer("/response/type"))
        .and_then(Value::as_str);
    if response == Some("http") {
        notes.not_carried(
            &format!("{at}.settings.response"),
            "a block outbound closes the connection (no HTTP 403)",
        );
    }
    plain_stream(o, at, notes)
}

fn plain_stream(o: &Outbound, at: &str, notes: &mut Notes) -> Result<(), String> {
    if o.stream_settings.is_some() {
        notes.not_carried(
            &format!("{at}.streamSettings"),
            "not carried over (wasmray dials plain TCP)",
        );
    }
    if o.mux.as_ref().is_some_and(|m| m.enabled == Some(true)) {
        notes.not_carried(&format!("{at}.mux"), "Mux.Cool is for vless outbounds");
    }
    Ok(())
}

fn vless(o: &Outbound, out: &mut OutOutbound, at: &str, notes: &mut Notes) -> Result<(), String> {
    let sat = format!("{at}.settings");
    let s: xray::VlessOutSettings =
        settings(o.settings.as_ref(), &sat, notes).ok_or("its settings are unreadable")?;
    notes.unknown(&sat, &s.other);
    let (address, port_value, id, flow, encryption) = match s.vnext.as_slice() {
        [] => (
            s.address.clone().unwrap_or_default(),
            s.port.clone(),
            s.id.clone().unwrap_or_default(),
            s.flow.clone(),
            s.encryption.clone(),
        ),
        [server, rest @ ..] => {
            if !rest.is_empty() {
                notes.not_carried(
                    &format!("{sat}.vnext[1..]"),
                    "one server per outbound (the first)",
                );
            }
            notes.unknown(&format!("{sat}.vnext[0]"), &server.other);
            let user = server.users.first().ok_or("vnext[0] has no user")?;
            notes.unknown(&format!("{sat}.vnext[0].users[0]"), &user.other);
            (
                server.address.clone(),
                server.port.clone(),
                user.id.clone(),
                user.flow.clone(),
                user.encryption.clone(),
            )
        }
    };
    if encryption.as_deref().is_some_and(|e| e != "none") {
        return Err(format!("VLESS encryption {encryption:?} is not supported"));
    }
    let port = port(port_value.as_ref()).ok_or("no server port")?;
    if address.is_empty() {
        return Err("no server address".into());
    }
    out.kind = "vless";
    out.server = Some(crate::util::host_port(&address, port));
    out.id = Some(
        super::inbound::user_id(&id, &format!("{sat}.user"), notes).ok_or("no usable user id")?,
    );
    out.flow = flow.filter(|f| !f.is_empty());
    client_tls(o.stream_settings.as_ref(), out, at, notes)?;
    if let Some(m) = &o.mux {
        notes.unknown(&format!("{at}.mux"), &m.other);
        let enabled = m.enabled == Some(true) && m.concurrency.is_none_or(|c| c >= 0);
        if enabled {
            let concurrency = m
                .concurrency
                .filter(|c| *c > 0)
                .and_then(|c| u16::try_from(c).ok());
            out.mux = Some(OutMux {
                enabled,
                concurrency,
            });
        }
    }
    Ok(())
}

fn client_tls(
    stream: Option<&xray::Stream>,
    out: &mut OutOutbound,
    at: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    let stream = super::inbound::tcp_with_tls(stream)?;
    let sat = format!("{at}.streamSettings");
    notes.unknown(&sat, &stream.other);
    let Some(tls) = &stream.tls_settings else {
        return Ok(());
    };
    let tat = format!("{sat}.tlsSettings");
    for key in tls.other.keys() {
        let why = if key == "fingerprint" {
            "wasmray's TLS client hello is rustls's (no uTLS fingerprints)"
        } else {
            "not carried over"
        };
        notes.not_carried(&format!("{tat}.{key}"), why);
    }
    if !tls.certificates.is_empty() {
        notes.not_carried(
            &format!("{tat}.certificates"),
            "set `ca` to a PEM file of the CA to trust",
        );
    }
    out.sni = tls.server_name.clone().filter(|s| !s.is_empty());
    out.insecure = tls.allow_insecure.filter(|i| *i);
    out.alpn = tls.alpn.clone().filter(|a| !a.is_empty());
    Ok(())
}
