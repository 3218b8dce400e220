//! VLESS request and response headers (spec 1.1, 1.2).
//!
//! Request, client to server:
//!
//! ```text
//! [version 0][uuid 16][addons len M][addons protobuf M][command]
//! [port][ATYP][address]   -- only for command 1 (TCP) and 2 (UDP)
//! ```
//!
//! Response, server to client: `[version 0][addons len N][addons N]`; Xray's
//! server always sends `00 00`, glued to the first downlink bytes.
//!
//! The addons are a protobuf message with `flow` (field 1, string) and `seed`
//! (field 2, bytes). A general protobuf library would be a large dependency
//! for two fields in at most 255 bytes, so this module carries a minimal
//! reader: it skips unknown fields of every wire type (groups included, to a
//! bounded depth), treats a known field with an unexpected wire type as
//! unknown (as Go's protobuf does), and rejects malformed varints, field
//! numbers, lengths and invalid UTF-8 in `flow` (proto3 string semantics).
//!
//! The decoder reports a bad version before anything else, so the inbound can
//! tell "fall back" errors (version, unknown UUID: see [`RequestHeader::peek_user`])
//! from errors after authentication, which never fall back (spec 1.3).

use bytes::{BufMut, BytesMut};

use super::addr::{AddrError, Destination};
use super::cursor::{Cursor, Stop, finish};

/// The only protocol version.
pub const VERSION: u8 = 0;
/// The flow Xray writes addons for; every other flow is sent as `M = 0`.
pub const FLOW_VISION: &str = "xtls-rprx-vision";
/// Version, UUID and addons length: the shortest first read the inbound can
/// judge without falling back (spec 1.3).
pub const MIN_REQUEST_PREFIX: usize = 18;

/// Command byte for a TCP stream.
pub const CMD_TCP: u8 = 1;
/// Command byte for length-framed UDP (see `udp`).
pub const CMD_UDP: u8 = 2;
/// Command byte for Mux.Cool (see `mux`).
pub const CMD_MUX: u8 = 3;
/// Command byte for reverse proxy (Xray v25.9.10+).
pub const CMD_REVERSE: u8 = 4;

/// Protobuf wire type for length-delimited fields.
const WIRE_LEN: u8 = 2;
/// Protobuf tag of `flow` (field 1, length-delimited).
const TAG_FLOW: u8 = 0x0A;
/// Protobuf tag of `seed` (field 2, length-delimited).
const TAG_SEED: u8 = 0x12;
/// Largest valid protobuf field number.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;
/// Nesting limit for skipped groups; a 255-byte message cannot usefully
/// exceed it, and it keeps the skipper's recursion bounded for any input.
const MAX_GROUP_DEPTH: usize = 100;

/// Errors of the VLESS header codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VlessError {
    #[error("invalid request version {0}")]
    BadVersion(u8),
    #[error("unexpected response version {0}, expected 0")]
    BadResponseVersion(u8),
    #[error("invalid request addons: {0}")]
    InvalidAddons(&'static str),
    #[error("encoded addons take {0} bytes, more than 255")]
    AddonsTooLong(usize),
    #[error("unknown request command {0}")]
    UnknownCommand(u8),
    #[error("invalid request address: {0}")]
    Address(#[from] AddrError),
}

/// The request addons (`xray.proxy.vless.encoding.Addons`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addons {
    /// Field 1; `""` means no flow.
    pub flow: String,
    /// Field 2; never set by Xray.
    pub seed: Vec<u8>,
}

/// What the client asks for, with the target where the command has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Tcp(Destination),
    Udp(Destination),
    /// Mux.Cool frames follow; no address on the wire (`v1.mux.cool`).
    Mux,
    /// Reverse proxy; no address on the wire (`v1.rvs.cool`).
    Reverse,
}

/// A VLESS request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The user id exactly as sent (bytes 6 and 7 carry `vlessRoute`).
    pub uuid: [u8; 16],
    pub addons: Addons,
    pub command: Command,
}

/// A VLESS response header. The server always sends `00 00`; the client
/// checks the version and skips any addons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseHeader;

impl Addons {
    /// The addons Xray sends for flow `xtls-rprx-vision`.
    pub fn vision() -> Addons {
        Addons {
            flow: FLOW_VISION.to_owned(),
            seed: Vec::new(),
        }
    }

    /// True when the protobuf encoding is empty (`M = 0`).
    pub fn is_empty(&self) -> bool {
        self.flow.is_empty() && self.seed.is_empty()
    }

    /// Parses a complete protobuf message (the `M` bytes after the length).
    pub fn from_protobuf(msg: &[u8]) -> Result<Addons, VlessError> {
        let mut cur = Cursor::new(msg);
        let mut addons = Addons::default();
        while cur.remaining() > 0 {
            let (field, wire) = read_tag(&mut cur)?;
            match (field, wire) {
                (1, WIRE_LEN) => addons.flow = utf8(read_len_delimited(&mut cur)?)?,
                (2, WIRE_LEN) => addons.seed = read_len_delimited(&mut cur)?.to_vec(),
                _ => skip_field(&mut cur, field, wire, 0)?,
            }
        }
        Ok(addons)
    }

    /// Bytes [`Addons::write_protobuf`] writes; proto3 omits empty fields.
    pub fn protobuf_len(&self) -> usize {
        field_len(self.flow.len()) + field_len(self.seed.len())
    }

    /// Appends the protobuf encoding, fields in number order.
    pub fn write_protobuf(&self, dst: &mut BytesMut) {
        write_field(dst, TAG_FLOW, self.flow.as_bytes());
        write_field(dst, TAG_SEED, &self.seed);
    }
}

fn field_len(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 + varint_len(n as u64) + n
    }
}

fn write_field(dst: &mut BytesMut, tag: u8, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    dst.put_u8(tag);
    write_varint(dst, value.len() as u64);
    dst.put_slice(value);
}

fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn write_varint(dst: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

const TRUNCATED: VlessError = VlessError::InvalidAddons("truncated field");

/// A base-128 varint of at most 10 bytes whose value fits in 64 bits.
fn read_varint(cur: &mut Cursor<'_>) -> Result<u64, VlessError> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = cur.u8().map_err(|_| TRUNCATED)?;
        if i == 9 && b > 1 {
            return Err(VlessError::InvalidAddons("varint overflows 64 bits"));
        }
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(VlessError::InvalidAddons("varint overflows 64 bits"))
}

/// A field key: (field number, wire type).
fn read_tag(cur: &mut Cursor<'_>) -> Result<(u64, u8), VlessError> {
    let key = read_varint(cur)?;
    let field = key >> 3;
    if field == 0 || field > MAX_FIELD_NUMBER {
        return Err(VlessError::InvalidAddons("invalid field number"));
    }
    Ok((field, (key & 7) as u8))
}

fn read_len_delimited<'a>(cur: &mut Cursor<'a>) -> Result<&'a [u8], VlessError> {
    let len = read_varint(cur)?;
    let len = usize::try_from(len).map_err(|_| TRUNCATED)?;
    cur.take(len).map_err(|_| TRUNCATED)
}

fn utf8(raw: &[u8]) -> Result<String, VlessError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| VlessError::InvalidAddons("flow is not valid UTF-8"))
}

/// Skips one field value of any wire type.
fn skip_field(cur: &mut Cursor<'_>, field: u64, wire: u8, depth: usize) -> Result<(), VlessError> {
    match wire {
        0 => read_varint(cur).map(drop),
        1 => cur.take(8).map(drop).map_err(|_| TRUNCATED),
        2 => read_len_delimited(cur).map(drop),
        3 => skip_group(cur, field, depth),
        4 => Err(VlessError::InvalidAddons("end-group without start-group")),
        5 => cur.take(4).map(drop).map_err(|_| TRUNCATED),
        _ => Err(VlessError::InvalidAddons("reserved wire type")),
    }
}

/// Skips a group's fields up to its matching end-group tag.
fn skip_group(cur: &mut Cursor<'_>, field: u64, depth: usize) -> Result<(), VlessError> {
    if depth >= MAX_GROUP_DEPTH {
        return Err(VlessError::InvalidAddons("groups nested too deeply"));
    }
    loop {
        let (inner, wire) = read_tag(cur)?;
        if wire == 4 {
            return if inner == field {
                Ok(())
            } else {
                Err(VlessError::InvalidAddons("mismatched end-group"))
            };
        }
        skip_field(cur, inner, wire, depth + 1)?;
    }
}

impl Command {
    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::Tcp(_) => CMD_TCP,
            Command::Udp(_) => CMD_UDP,
            Command::Mux => CMD_MUX,
            Command::Reverse => CMD_REVERSE,
        }
    }

    /// The target, for TCP and UDP.
    pub fn target(&self) -> Option<&Destination> {
        match self {
            Command::Tcp(d) | Command::Udp(d) => Some(d),
            Command::Mux | Command::Reverse => None,
        }
    }

    fn parse(cur: &mut Cursor<'_>) -> Result<Command, Stop<VlessError>> {
        let code = cur.u8()?;
        let mut target = || Destination::parse(cur).map_err(|s| s.map(VlessError::Address));
        match code {
            CMD_TCP => Ok(Command::Tcp(target()?)),
            CMD_UDP => Ok(Command::Udp(target()?)),
            CMD_MUX => Ok(Command::Mux),
            CMD_REVERSE => Ok(Command::Reverse),
            other => Err(Stop::Invalid(VlessError::UnknownCommand(other))),
        }
    }
}

impl RequestHeader {
    /// Decodes a request header from the front of `buf`. The payload that
    /// follows (the `usize` marks where it starts) is left alone.
    pub fn decode(buf: &[u8]) -> Result<Option<(RequestHeader, usize)>, VlessError> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|h| (h, cur.consumed())))
    }

    /// Version check and UUID only, for the inbound's fallback decision:
    /// `Err(BadVersion)` and an unknown UUID fall back, while errors that
    /// [`RequestHeader::decode`] reports after these are final.
    pub fn peek_user(buf: &[u8]) -> Result<Option<[u8; 16]>, VlessError> {
        let mut cur = Cursor::new(buf);
        finish(read_version_and_uuid(&mut cur))
    }

    fn parse(cur: &mut Cursor<'_>) -> Result<RequestHeader, Stop<VlessError>> {
        let uuid = read_version_and_uuid(cur)?;
        let addons_len = cur.u8()?;
        let addons_raw = cur.take(usize::from(addons_len))?;
        let addons = Addons::from_protobuf(addons_raw).map_err(Stop::Invalid)?;
        let command = Command::parse(cur)?;
        Ok(RequestHeader {
            uuid,
            addons,
            command,
        })
    }

    /// Bytes [`RequestHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let target = self.command.target().map_or(0, Destination::encoded_len);
        1 + 16 + 1 + self.addons.protobuf_len() + 1 + target
    }

    /// Appends the header. The addons are written as given: pass
    /// [`Addons::vision`] for flow `xtls-rprx-vision` and `Addons::default()`
    /// otherwise, as Xray's client does. On error nothing is written.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), VlessError> {
        let addons_len = self.addons.protobuf_len();
        let addons_len_byte =
            u8::try_from(addons_len).map_err(|_| VlessError::AddonsTooLong(addons_len))?;
        if let Some(target) = self.command.target() {
            target.check_encodable()?;
        }
        dst.reserve(self.encoded_len());
        dst.put_u8(VERSION);
        dst.put_slice(&self.uuid);
        dst.put_u8(addons_len_byte);
        self.addons.write_protobuf(dst);
        dst.put_u8(self.command.code());
        if let Some(target) = self.command.target() {
            target.encode_unchecked(dst);
        }
        Ok(())
    }
}

fn read_version_and_uuid(cur: &mut Cursor<'_>) -> Result<[u8; 16], Stop<VlessError>> {
    let version = cur.u8()?;
    if version != VERSION {
        return Err(Stop::Invalid(VlessError::BadVersion(version)));
    }
    Ok(cur.array::<16>()?)
}

impl ResponseHeader {
    /// What Xray's server sends: version 0, no addons.
    pub const BYTES: [u8; 2] = [VERSION, 0];

    /// Client side: checks the version and skips the addons without parsing
    /// them (as sing-box does). `usize` is where the response payload starts.
    pub fn decode(buf: &[u8]) -> Result<Option<(ResponseHeader, usize)>, VlessError> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|h| (h, cur.consumed())))
    }

    fn parse(cur: &mut Cursor<'_>) -> Result<ResponseHeader, Stop<VlessError>> {
        let version = cur.u8()?;
        if version != VERSION {
            return Err(Stop::Invalid(VlessError::BadResponseVersion(version)));
        }
        let addons_len = cur.u8()?;
        cur.take(usize::from(addons_len))?;
        Ok(ResponseHeader)
    }

    /// Appends `00 00`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&Self::BYTES);
    }

    /// Always 2.
    pub fn encoded_len(&self) -> usize {
        Self::BYTES.len()
    }
}

#[cfg(test)]
#[path = "vless_tests.rs"]
mod tests;
