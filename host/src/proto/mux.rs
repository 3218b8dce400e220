//! Mux.Cool frames, including XUDP (spec 2.1, 2.4, 2.5).
//!
//! One VLESS connection with command 3 carries many sub-sessions as frames,
//! the same layout in both directions:
//!
//! ```text
//! [metaLen u16][session id u16][status][option][network][port][ATYP][addr][GlobalID 8]
//!              \_____________________ metadata, metaLen <= 512 ______________________/
//! [dataLen u16][data]            -- only when option bit D (0x01) is set
//! ```
//!
//! Network and address are present on `New`, and on `Keep` when the fifth
//! metadata byte is `0x02` (a UDP datagram's own address: the full-cone path).
//! The GlobalID appears only on `New` + UDP + D when 8 bytes remain. Trailing
//! metadata is ignored, which also skips the reverse-mux Source/Local blocks.
//!
//! XUDP is not a separate format: it is session id 0 on a command-3 stream,
//! opened by a `New` UDP frame (optionally with a GlobalID) and continued by
//! `Keep` frames carrying the datagram's address, e.g.
//! `Frame::new_session(XUDP_SESSION_ID, MuxNetwork::Udp, target, Some(packet))
//! .with_global_id(id)` and then `Frame::keep_udp(XUDP_SESSION_ID, addr, packet)`.
//!
//! Every decoding error here is fatal for the whole mux connection in Xray
//! (oversized or short metadata, unknown status or network, bad address,
//! oversized UDP datagram), so the caller should close the tunnel on `Err`.
//!
//! Limits the decoder cannot see: a `Keep` frame without an address belongs
//! to a UDP session only by the session table, so the caller enforces
//! [`MAX_UDP_DATA`] there; the decoder enforces it for frames that name UDP
//! themselves. Stream writers split data into chunks of at most
//! [`MAX_STREAM_CHUNK`] bytes, while up to 65535 are accepted.

use bytes::{BufMut, BytesMut};

use super::addr::{AddrError, Destination};
use super::cursor::{Cursor, Stop, finish};

/// Metadata longer than this kills the mux connection.
pub const MAX_METADATA_LEN: usize = 512;
/// Session id, status and option: the shortest metadata.
pub const MIN_METADATA_LEN: usize = 4;
/// Shortest metadata of a `New` frame.
pub const MIN_NEW_METADATA_LEN: usize = 8;
/// Largest stream chunk a writer puts in one frame (8 KiB).
pub const MAX_STREAM_CHUNK: usize = 8192;
/// Largest datagram a UDP frame may carry; more is a fatal read error.
pub const MAX_UDP_DATA: usize = 8192;
/// XUDP's single session id (spec 2.5).
pub const XUDP_SESSION_ID: u16 = 0;
/// Largest datagram Xray's XUDP writer sends (`len + 666 <= 8192`); larger
/// and empty packets are dropped by the writer.
pub const XUDP_MAX_PAYLOAD: usize = 8192 - 666;

/// Option bit D: a `[u16 len][data]` block follows the metadata.
pub const OPTION_DATA: u8 = 0x01;
/// Option bit E: the sender ended the session because of an error.
pub const OPTION_ERROR: u8 = 0x02;

const STATUS_NEW: u8 = 1;
const STATUS_KEEP: u8 = 2;
const STATUS_END: u8 = 3;
const STATUS_KEEP_ALIVE: u8 = 4;
const NET_TCP: u8 = 1;
const NET_UDP: u8 = 2;
const GLOBAL_ID_LEN: usize = 8;

/// Errors of the Mux.Cool frame codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("mux metadata of {0} bytes exceeds 512")]
    MetadataTooLong(usize),
    #[error("mux metadata of {0} bytes is shorter than 4")]
    MetadataTooShort(usize),
    #[error("mux New frame metadata of {0} bytes is shorter than 8")]
    NewTooShort(usize),
    #[error("unknown mux session status {0}")]
    UnknownStatus(u8),
    #[error("unknown mux network {0}")]
    UnknownNetwork(u8),
    #[error("mux metadata ends inside the address")]
    TruncatedMetadata,
    #[error("invalid mux address: {0}")]
    Address(#[from] AddrError),
    #[error("mux UDP packet of {0} bytes is too large (max 8192)")]
    UdpDataTooLarge(usize),
    #[error("mux data of {0} bytes does not fit a 16-bit length")]
    DataTooLarge(usize),
    #[error("a GlobalID is only sent on a New UDP frame with data")]
    MisplacedGlobalId,
}

/// The transport of a sub-session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MuxNetwork {
    Tcp,
    Udp,
}

/// The frame's status with the fields that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Opens a session (status 1).
    New {
        network: MuxNetwork,
        target: Destination,
        /// XUDP GlobalID as sent; all zeros means "none" (see [`Frame::global_id`]).
        global_id: Option<[u8; 8]>,
    },
    /// Carries data for an open session (status 2). `udp_addr` is a UDP
    /// datagram's own destination (uplink) or source (downlink).
    Keep { udp_addr: Option<Destination> },
    /// Closes a session (status 3), with the E bit if it failed.
    End { error: bool },
    /// Status 4: Xray never sends it; receivers discard it.
    KeepAlive,
}

/// One Mux.Cool frame; `data` borrows from the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub session_id: u16,
    pub status: Status,
    /// The payload when option D is set (may be empty: EOF of a TCP read).
    pub data: Option<&'a [u8]>,
}

impl MuxNetwork {
    fn code(self) -> u8 {
        match self {
            MuxNetwork::Tcp => NET_TCP,
            MuxNetwork::Udp => NET_UDP,
        }
    }

    fn from_code(code: u8) -> Result<MuxNetwork, MuxError> {
        match code {
            NET_TCP => Ok(MuxNetwork::Tcp),
            NET_UDP => Ok(MuxNetwork::Udp),
            other => Err(MuxError::UnknownNetwork(other)),
        }
    }
}

impl Status {
    fn code(&self) -> u8 {
        match self {
            Status::New { .. } => STATUS_NEW,
            Status::Keep { .. } => STATUS_KEEP,
            Status::End { .. } => STATUS_END,
            Status::KeepAlive => STATUS_KEEP_ALIVE,
        }
    }
}

impl<'a> Frame<'a> {
    /// A `New` frame opening `session_id` to `target`, with optional first data.
    pub fn new_session(
        session_id: u16,
        network: MuxNetwork,
        target: Destination,
        data: Option<&'a [u8]>,
    ) -> Self {
        let status = Status::New {
            network,
            target,
            global_id: None,
        };
        Frame {
            session_id,
            status,
            data,
        }
    }

    /// Sets the XUDP GlobalID of a `New` frame; other frames are returned
    /// unchanged. It is encoded only on UDP frames with data.
    pub fn with_global_id(mut self, id: [u8; 8]) -> Self {
        if let Status::New { global_id, .. } = &mut self.status {
            *global_id = Some(id);
        }
        self
    }

    /// A `Keep` frame with data.
    pub fn keep(session_id: u16, data: &'a [u8]) -> Self {
        let status = Status::Keep { udp_addr: None };
        Frame {
            session_id,
            status,
            data: Some(data),
        }
    }

    /// A `Keep` frame carrying one datagram and its address.
    pub fn keep_udp(session_id: u16, addr: Destination, data: &'a [u8]) -> Self {
        let status = Status::Keep {
            udp_addr: Some(addr),
        };
        Frame {
            session_id,
            status,
            data: Some(data),
        }
    }

    /// An `End` frame, with the E bit when the session failed.
    pub fn end(session_id: u16, error: bool) -> Self {
        let status = Status::End { error };
        Frame {
            session_id,
            status,
            data: None,
        }
    }

    /// A `KeepAlive` frame.
    pub fn keep_alive(session_id: u16) -> Self {
        Frame {
            session_id,
            status: Status::KeepAlive,
            data: None,
        }
    }

    /// The XUDP GlobalID if one was sent and it is not all zeros (a zero id
    /// must be ignored: a normal UDP session without reuse).
    pub fn global_id(&self) -> Option<[u8; 8]> {
        match self.status {
            Status::New {
                global_id: Some(id),
                ..
            } if id != [0; 8] => Some(id),
            _ => None,
        }
    }

    /// True when the frame itself says its session is UDP (a `New` UDP frame
    /// or a `Keep` with an address); a plain `Keep` needs the session table.
    pub fn is_udp(&self) -> bool {
        matches!(
            self.status,
            Status::New {
                network: MuxNetwork::Udp,
                ..
            } | Status::Keep { udp_addr: Some(_) }
        )
    }

    /// Decodes one frame from the front of `buf`. Errors are reported as
    /// early as possible: a bad metadata length or UDP data length is refused
    /// before the bytes it announces arrive.
    pub fn decode(buf: &'a [u8]) -> Result<Option<(Frame<'a>, usize)>, MuxError> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|f| (f, cur.consumed())))
    }

    fn parse(cur: &mut Cursor<'a>) -> Result<Frame<'a>, Stop<MuxError>> {
        let meta_len = usize::from(cur.u16_be()?);
        if meta_len > MAX_METADATA_LEN {
            return Err(Stop::Invalid(MuxError::MetadataTooLong(meta_len)));
        }
        if meta_len < MIN_METADATA_LEN {
            return Err(Stop::Invalid(MuxError::MetadataTooShort(meta_len)));
        }
        let meta = cur.take(meta_len)?;
        let (session_id, status, has_data) = parse_metadata(meta)
            .map_err(|s| Stop::Invalid(s.or_truncated(MuxError::TruncatedMetadata)))?;
        let mut frame = Frame {
            session_id,
            status,
            data: None,
        };
        if has_data {
            let len = usize::from(cur.u16_be()?);
            if frame.is_udp() && len > MAX_UDP_DATA {
                return Err(Stop::Invalid(MuxError::UdpDataTooLarge(len)));
            }
            frame.data = Some(cur.take(len)?);
        }
        Ok(frame)
    }

    /// Checks what [`Frame::encode`] would refuse, without writing.
    pub fn check_encodable(&self) -> Result<(), MuxError> {
        match &self.status {
            Status::New {
                network,
                target,
                global_id,
            } => {
                target.check_encodable()?;
                let carries_id = *network == MuxNetwork::Udp && self.data.is_some();
                if global_id.is_some() && !carries_id {
                    return Err(MuxError::MisplacedGlobalId);
                }
            }
            Status::Keep { udp_addr: Some(a) } => a.check_encodable()?,
            _ => {}
        }
        if let Some(data) = self.data {
            if data.len() > usize::from(u16::MAX) {
                return Err(MuxError::DataTooLarge(data.len()));
            }
            if self.is_udp() && data.len() > MAX_UDP_DATA {
                return Err(MuxError::UdpDataTooLarge(data.len()));
            }
        }
        Ok(())
    }

    /// Appends the frame. On error nothing is written.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), MuxError> {
        self.check_encodable()?;
        let meta_len = self.metadata_len();
        let meta_len_u16 = u16::try_from(meta_len)
            .ok()
            .filter(|&n| usize::from(n) <= MAX_METADATA_LEN)
            .ok_or(MuxError::MetadataTooLong(meta_len))?;
        dst.reserve(self.encoded_len());
        dst.put_u16(meta_len_u16);
        dst.put_u16(self.session_id);
        dst.put_u8(self.status.code());
        dst.put_u8(self.option());
        self.write_addressing(dst);
        if let Some(data) = self.data {
            // check_encodable bounds the length to u16.
            dst.put_u16(u16::try_from(data.len()).unwrap_or(u16::MAX));
            dst.put_slice(data);
        }
        Ok(())
    }

    /// Writes the metadata after the option byte: network, address and
    /// GlobalID of `New`, or the UDP address of `Keep`.
    fn write_addressing(&self, dst: &mut BytesMut) {
        match &self.status {
            Status::New {
                network,
                target,
                global_id,
            } => {
                dst.put_u8(network.code());
                target.encode_unchecked(dst);
                if let Some(id) = global_id {
                    dst.put_slice(id);
                }
            }
            Status::Keep { udp_addr: Some(a) } => {
                dst.put_u8(NET_UDP);
                a.encode_unchecked(dst);
            }
            _ => {}
        }
    }

    /// Bytes [`Frame::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        2 + self.metadata_len() + self.data.map_or(0, |d| 2 + d.len())
    }

    fn option(&self) -> u8 {
        let mut option = 0;
        if self.data.is_some() {
            option |= OPTION_DATA;
        }
        if matches!(self.status, Status::End { error: true }) {
            option |= OPTION_ERROR;
        }
        option
    }

    fn metadata_len(&self) -> usize {
        MIN_METADATA_LEN
            + match &self.status {
                Status::New {
                    target, global_id, ..
                } => 1 + target.encoded_len() + global_id.map_or(0, |_| GLOBAL_ID_LEN),
                Status::Keep { udp_addr: Some(a) } => 1 + a.encoded_len(),
                _ => 0,
            }
    }
}

/// Parses a complete metadata block into (session id, status, has data).
/// Running out of bytes here means the block is truncated.
fn parse_metadata(meta: &[u8]) -> Result<(u16, Status, bool), Stop<MuxError>> {
    let mut cur = Cursor::new(meta);
    let session_id = cur.u16_be()?;
    let status_code = cur.u8()?;
    let option = cur.u8()?;
    let has_data = option & OPTION_DATA != 0;
    let status = match status_code {
        STATUS_NEW => parse_new(&mut cur, meta.len(), has_data)?,
        STATUS_KEEP => Status::Keep {
            udp_addr: parse_keep_addr(&mut cur, meta)?,
        },
        STATUS_END => Status::End {
            error: option & OPTION_ERROR != 0,
        },
        STATUS_KEEP_ALIVE => Status::KeepAlive,
        other => return Err(Stop::Invalid(MuxError::UnknownStatus(other))),
    };
    Ok((session_id, status, has_data))
}

/// The rest of a `New` frame's metadata: network, target, maybe a GlobalID.
fn parse_new(
    cur: &mut Cursor<'_>,
    meta_len: usize,
    has_data: bool,
) -> Result<Status, Stop<MuxError>> {
    if meta_len < MIN_NEW_METADATA_LEN {
        return Err(Stop::Invalid(MuxError::NewTooShort(meta_len)));
    }
    let network = MuxNetwork::from_code(cur.u8()?).map_err(Stop::Invalid)?;
    let target = parse_address(cur)?;
    let carries_id = network == MuxNetwork::Udp && has_data && cur.remaining() >= GLOBAL_ID_LEN;
    let global_id = if carries_id {
        Some(cur.array::<GLOBAL_ID_LEN>()?)
    } else {
        None
    };
    Ok(Status::New {
        network,
        target,
        global_id,
    })
}

/// A `Keep` frame's address, present only when metadata byte 4 is `0x02`.
fn parse_keep_addr(
    cur: &mut Cursor<'_>,
    meta: &[u8],
) -> Result<Option<Destination>, Stop<MuxError>> {
    if meta.get(4) != Some(&NET_UDP) {
        return Ok(None);
    }
    cur.u8()?; // the network byte just checked
    parse_address(cur).map(Some)
}

fn parse_address(cur: &mut Cursor<'_>) -> Result<Destination, Stop<MuxError>> {
    Destination::parse(cur).map_err(|s| s.map(MuxError::Address))
}

/// The VLESS inbound's test for "the first mux frame is XUDP" (spec 1.3,
/// step 7): session id `00 00` and network byte `0x02`, looking at the bytes
/// right after the VLESS header. Fewer than 7 bytes count as "not XUDP".
pub fn is_first_frame_xudp(buf: &[u8]) -> bool {
    matches!(buf.get(2..7), Some([0, 0, _, _, NET_UDP]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::addr::Address;
    use crate::proto::addr::strategies::destination;
    use crate::proto::test_support::assert_prefixes_incomplete;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const G: [u8; 8] = [0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18];

    fn example_com_443() -> Destination {
        Destination::new(Address::Domain("example.com".into()), 443)
    }

    fn dns() -> Destination {
        Destination::new(Address::Ipv4(Ipv4Addr::new(8, 8, 8, 8)), 53)
    }

    fn encoded(f: &Frame<'_>) -> Vec<u8> {
        let mut b = BytesMut::new();
        f.encode(&mut b).expect("encodable");
        assert_eq!(b.len(), f.encoded_len());
        b.to_vec()
    }

    /// `decode` with the frame rendered, so prefixes can be checked generically.
    fn decode_dbg(buf: &[u8]) -> Result<Option<(String, usize)>, MuxError> {
        Frame::decode(buf).map(|o| o.map(|(f, n)| (format!("{f:?}"), n)))
    }

    /// Encodes, compares with the exact bytes, decodes back (with trailing
    /// bytes of a next frame present) and checks every prefix.
    fn check_exact(frame: Frame<'_>, wire: &[u8]) {
        assert_eq!(encoded(&frame), wire);
        let mut two = wire.to_vec();
        two.extend_from_slice(&[0x00, 0x04, 0x00, 0x09]);
        assert_eq!(Frame::decode(&two), Ok(Some((frame, wire.len()))));
        assert_prefixes_incomplete(wire, decode_dbg);
    }

    /// Decodes a buffer that holds exactly one valid frame.
    fn decoded(wire: &[u8]) -> Frame<'_> {
        match Frame::decode(wire) {
            Ok(Some((f, used))) if used == wire.len() => f,
            other => panic!("expected one complete frame, got {other:?}"),
        }
    }

    fn frame_of(meta: &[u8], data: Option<&[u8]>) -> Vec<u8> {
        let mut v = u16::try_from(meta.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(meta);
        if let Some(d) = data {
            v.extend_from_slice(&u16::try_from(d.len()).expect("short").to_be_bytes());
            v.extend_from_slice(d);
        }
        v
    }

    #[test]
    fn spec_new_tcp_with_data() {
        let wire = [
            &[
                0x00, 0x14, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0xBB, 0x02, 0x0B,
            ][..],
            b"example.com",
            &[0x00, 0x05],
            b"hello",
        ]
        .concat();
        let f = Frame::new_session(1, MuxNetwork::Tcp, example_com_443(), Some(b"hello"));
        check_exact(f, &wire);
    }

    #[test]
    fn spec_keep_with_data() {
        let wire = [
            0x00, 0x04, 0x00, 0x01, 0x02, 0x01, 0x00, 0x03, b'a', b'b', b'c',
        ];
        check_exact(Frame::keep(1, b"abc"), &wire);
    }

    #[test]
    fn spec_end_with_and_without_error() {
        check_exact(Frame::end(1, false), &[0x00, 0x04, 0x00, 0x01, 0x03, 0x00]);
        check_exact(Frame::end(1, true), &[0x00, 0x04, 0x00, 0x01, 0x03, 0x02]);
    }

    #[test]
    fn spec_xudp_new_with_global_id() {
        let query = b"\x12\x34\x01\x00";
        let wire = [
            &[
                0x00, 0x14, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x35, 0x01, 8, 8, 8, 8,
            ][..],
            &G,
            &[0x00, 0x04],
            query,
        ]
        .concat();
        let f = Frame::new_session(XUDP_SESSION_ID, MuxNetwork::Udp, dns(), Some(query))
            .with_global_id(G);
        assert_eq!(f.global_id(), Some(G));
        check_exact(f, &wire);
    }

    #[test]
    fn spec_xudp_keep_from_server() {
        let reply = b"\x12\x34\x81\x80";
        let wire = [
            &[
                0x00, 0x0C, 0x00, 0x00, 0x02, 0x01, 0x02, 0x00, 0x35, 0x01, 8, 8, 8, 8,
            ][..],
            &[0x00, 0x04],
            reply,
        ]
        .concat();
        let f = Frame::keep_udp(XUDP_SESSION_ID, dns(), reply);
        assert!(f.is_udp());
        check_exact(f, &wire);
    }

    #[test]
    fn keep_alive_and_new_without_data() {
        check_exact(Frame::keep_alive(7), &[0x00, 0x04, 0x00, 0x07, 0x04, 0x00]);
        let f = Frame::new_session(2, MuxNetwork::Tcp, dns(), None);
        check_exact(
            f,
            &[
                0x00, 0x0C, 0x00, 0x02, 0x01, 0x00, 0x01, 0x00, 0x35, 0x01, 8, 8, 8, 8,
            ],
        );
    }

    #[test]
    fn metadata_length_limits() {
        assert_eq!(
            Frame::decode(&[0x02, 0x01]),
            Err(MuxError::MetadataTooLong(513))
        );
        assert_eq!(
            Frame::decode(&[0xFF, 0xFF]),
            Err(MuxError::MetadataTooLong(65535))
        );
        for n in 0u8..4 {
            assert_eq!(
                Frame::decode(&[0x00, n]),
                Err(MuxError::MetadataTooShort(n.into()))
            );
        }
        // 512 is allowed; the trailing metadata of an End frame is ignored.
        let mut meta = vec![0x00, 0x01, STATUS_END, 0x00];
        meta.resize(512, 0xEE);
        let wire = frame_of(&meta, None);
        assert_eq!(Frame::decode(&wire), Ok(Some((Frame::end(1, false), 514))));
    }

    #[test]
    fn unknown_status() {
        for status in [0u8, 5, 0xFF] {
            let wire = frame_of(&[0x00, 0x01, status, 0x00], None);
            assert_eq!(Frame::decode(&wire), Err(MuxError::UnknownStatus(status)));
        }
    }

    #[test]
    fn new_frame_errors() {
        let short = frame_of(&[0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50], None);
        assert_eq!(Frame::decode(&short), Err(MuxError::NewTooShort(7)));
        let bad_net = frame_of(
            &[
                0x00, 0x01, STATUS_NEW, 0x00, 0x03, 0x00, 0x50, 0x01, 1, 1, 1, 1,
            ],
            None,
        );
        assert_eq!(Frame::decode(&bad_net), Err(MuxError::UnknownNetwork(3)));
        let bad_atyp = frame_of(
            &[
                0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x04, 1, 1, 1, 1,
            ],
            None,
        );
        assert_eq!(
            Frame::decode(&bad_atyp),
            Err(MuxError::Address(AddrError::UnknownType(4)))
        );
        let truncated = frame_of(
            &[
                0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x02, 0x0B, b'e', b'x',
            ],
            None,
        );
        assert_eq!(Frame::decode(&truncated), Err(MuxError::TruncatedMetadata));
        let empty_domain = frame_of(
            &[
                0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x02, 0x00,
            ],
            None,
        );
        assert_eq!(
            Frame::decode(&empty_domain),
            Err(MuxError::Address(AddrError::EmptyDomain))
        );
        let bad_domain = frame_of(
            &[
                0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x02, 0x02, b'a', b'*',
            ],
            None,
        );
        assert!(matches!(
            Frame::decode(&bad_domain),
            Err(MuxError::Address(AddrError::InvalidDomain(_)))
        ));
    }

    #[test]
    fn keep_address_only_with_udp_flag() {
        // byte[4] = 1: not an address; the rest is ignored.
        let wire = frame_of(
            &[0x00, 0x03, STATUS_KEEP, OPTION_DATA, 0x01, 0xFF, 0xFF],
            Some(b"x"),
        );
        assert_eq!(
            Frame::decode(&wire),
            Ok(Some((Frame::keep(3, b"x"), wire.len())))
        );
        // byte[4] = 2 with a truncated address is an error.
        let wire = frame_of(
            &[0x00, 0x03, STATUS_KEEP, OPTION_DATA, 0x02, 0x00],
            Some(b"x"),
        );
        assert_eq!(Frame::decode(&wire), Err(MuxError::TruncatedMetadata));
    }

    #[test]
    fn global_id_only_on_new_udp_with_data() {
        let meta_udp = [
            &[
                0x00,
                0x00,
                STATUS_NEW,
                OPTION_DATA,
                NET_UDP,
                0x00,
                0x35,
                0x01,
                8,
                8,
                8,
                8,
            ][..],
            &G,
        ]
        .concat();
        // Without D the id is trailing metadata.
        let mut no_data = meta_udp.clone();
        no_data[3] = 0x00;
        let wire = frame_of(&no_data, None);
        assert_eq!(
            decoded(&wire),
            Frame::new_session(0, MuxNetwork::Udp, dns(), None)
        );
        // TCP never carries one.
        let mut tcp = meta_udp.clone();
        tcp[4] = NET_TCP;
        let wire = frame_of(&tcp, Some(b"q"));
        assert_eq!(
            decoded(&wire),
            Frame::new_session(0, MuxNetwork::Tcp, dns(), Some(b"q"))
        );
        // Fewer than 8 remaining bytes: no id.
        let wire = frame_of(&meta_udp[..19], Some(b"q"));
        assert_eq!(
            decoded(&wire).status,
            Status::New {
                network: MuxNetwork::Udp,
                target: dns(),
                global_id: None
            }
        );
        // An all-zero id is kept on the wire but means "none".
        let f = Frame::new_session(0, MuxNetwork::Udp, dns(), Some(b"q")).with_global_id([0; 8]);
        let wire = encoded(&f);
        let back = decoded(&wire);
        assert_eq!(back, f);
        assert_eq!(back.global_id(), None);
    }

    #[test]
    fn udp_data_limit() {
        let meta = [
            0x00,
            0x00,
            STATUS_NEW,
            OPTION_DATA,
            NET_UDP,
            0x00,
            0x35,
            0x01,
            8,
            8,
            8,
            8,
        ];
        let mut wire = frame_of(&meta, None);
        wire.extend_from_slice(&[0x20, 0x01]); // 8193, refused before the data arrives
        assert_eq!(Frame::decode(&wire), Err(MuxError::UdpDataTooLarge(8193)));
        let ok = vec![0u8; MAX_UDP_DATA];
        let wire = frame_of(&meta, Some(&ok));
        assert!(matches!(Frame::decode(&wire), Ok(Some((_, n))) if n == wire.len()));
        // TCP and plain Keep frames accept up to 65535.
        let big = vec![1u8; 65535];
        let wire = encoded(&Frame::keep(4, &big));
        assert_eq!(
            Frame::decode(&wire),
            Ok(Some((Frame::keep(4, &big), 65535 + 8)))
        );
    }

    #[test]
    fn unknown_option_bits_are_ignored() {
        let wire = frame_of(&[0x00, 0x01, STATUS_KEEP, 0xFC | OPTION_DATA], Some(b"z"));
        assert_eq!(
            Frame::decode(&wire),
            Ok(Some((Frame::keep(1, b"z"), wire.len())))
        );
        let wire = frame_of(&[0x00, 0x01, STATUS_END, 0xF0 | OPTION_ERROR], None);
        assert_eq!(Frame::decode(&wire), Ok(Some((Frame::end(1, true), 6))));
    }

    #[test]
    fn end_and_keep_alive_may_carry_data() {
        let wire = frame_of(&[0x00, 0x01, STATUS_KEEP_ALIVE, OPTION_DATA], Some(b"pad"));
        let f = decoded(&wire);
        assert_eq!((f.status, f.data), (Status::KeepAlive, Some(&b"pad"[..])));
        let empty_tcp = frame_of(&[0x00, 0x01, STATUS_KEEP, OPTION_DATA], Some(b""));
        assert_eq!(
            Frame::decode(&empty_tcp),
            Ok(Some((Frame::keep(1, b""), 8)))
        );
    }

    #[test]
    fn encoder_refusals() {
        let mut b = BytesMut::new();
        let tcp_id = Frame::new_session(1, MuxNetwork::Tcp, dns(), Some(b"x")).with_global_id(G);
        assert_eq!(tcp_id.encode(&mut b), Err(MuxError::MisplacedGlobalId));
        let no_data_id = Frame::new_session(1, MuxNetwork::Udp, dns(), None).with_global_id(G);
        assert_eq!(no_data_id.encode(&mut b), Err(MuxError::MisplacedGlobalId));
        let big_udp = vec![0u8; MAX_UDP_DATA + 1];
        assert_eq!(
            Frame::keep_udp(0, dns(), &big_udp).encode(&mut b),
            Err(MuxError::UdpDataTooLarge(8193))
        );
        let huge = vec![0u8; 65536];
        assert_eq!(
            Frame::keep(1, &huge).encode(&mut b),
            Err(MuxError::DataTooLarge(65536))
        );
        let long_name = Destination::new(Address::Domain("a".repeat(256)), 1);
        assert_eq!(
            Frame::new_session(1, MuxNetwork::Tcp, long_name, None).encode(&mut b),
            Err(MuxError::Address(AddrError::DomainTooLong(256)))
        );
        assert!(b.is_empty(), "nothing written on error");
        assert_eq!(Frame::end(1, false).with_global_id(G), Frame::end(1, false));
    }

    #[test]
    fn first_frame_xudp_detection() {
        let xudp = encoded(&Frame::new_session(0, MuxNetwork::Udp, dns(), Some(b"q")));
        assert!(is_first_frame_xudp(&xudp));
        assert!(is_first_frame_xudp(&xudp[..7]));
        assert!(!is_first_frame_xudp(&xudp[..6]));
        let tcp = encoded(&Frame::new_session(1, MuxNetwork::Tcp, dns(), None));
        assert!(!is_first_frame_xudp(&tcp));
        let udp_session_1 = encoded(&Frame::new_session(1, MuxNetwork::Udp, dns(), None));
        assert!(!is_first_frame_xudp(&udp_session_1));
    }

    fn arb_status() -> impl Strategy<Value = Status> {
        prop_oneof![
            (
                any::<bool>(),
                destination(),
                proptest::option::of(any::<[u8; 8]>())
            )
                .prop_map(|(udp, target, global_id)| Status::New {
                    network: if udp {
                        MuxNetwork::Udp
                    } else {
                        MuxNetwork::Tcp
                    },
                    target,
                    global_id,
                }),
            proptest::option::of(destination()).prop_map(|udp_addr| Status::Keep { udp_addr }),
            any::<bool>().prop_map(|error| Status::End { error }),
            Just(Status::KeepAlive),
        ]
    }

    /// Encodable frames: a GlobalID only where it is sent.
    fn arb_frame_parts() -> impl Strategy<Value = (u16, Status, Option<Vec<u8>>)> {
        (
            any::<u16>(),
            arb_status(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..600)),
        )
            .prop_map(|(id, mut status, data)| {
                if let Status::New {
                    network, global_id, ..
                } = &mut status
                    && (*network == MuxNetwork::Tcp || data.is_none())
                {
                    *global_id = None;
                }
                (id, status, data)
            })
    }

    proptest! {
        #[test]
        fn round_trip((session_id, status, data) in arb_frame_parts()) {
            let f = Frame { session_id, status, data: data.as_deref() };
            let wire = encoded(&f);
            prop_assert_eq!(Frame::decode(&wire), Ok(Some((f, wire.len()))));
        }

        #[test]
        fn prefixes_are_incomplete((session_id, status, data) in arb_frame_parts()) {
            let f = Frame { session_id, status, data: data.as_deref() };
            assert_prefixes_incomplete(&encoded(&f), decode_dbg);
        }

        #[test]
        fn a_stream_of_frames(frames in proptest::collection::vec(arb_frame_parts(), 1..6)) {
            let mut b = BytesMut::new();
            for (session_id, status, data) in &frames {
                let f = Frame { session_id: *session_id, status: status.clone(), data: data.as_deref() };
                f.encode(&mut b).expect("encodable");
            }
            let mut rest = &b[..];
            for (session_id, status, data) in &frames {
                let (f, used) = Frame::decode(rest).expect("valid").expect("complete");
                prop_assert_eq!(f, Frame { session_id: *session_id, status: status.clone(), data: data.as_deref() });
                rest = &rest[used..];
            }
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..700)) {
            if let Ok(Some((_, used))) = Frame::decode(&buf) {
                prop_assert!(used <= buf.len());
            }
            let _ = is_first_frame_xudp(&buf);
        }

        #[test]
        fn plausible_metadata_never_panics(
            meta_len in 0u16..40,
            status in 0u8..6,
            option in any::<u8>(),
            tail in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            // Steer random input past the length and status checks.
            let buf = [&meta_len.to_be_bytes()[..], &[0, 1, status, option], &tail].concat();
            let _ = Frame::decode(&buf);
        }
    }
}
