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
    /// A sub-stream of a network the tunnel may not carry (Xray's wording: a Vision
    /// user's tunnel carries UDP only).
    #[error("unexpected network {0}")]
    UnexpectedNetwork(&'static str),
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
#[path = "mux_tests.rs"]
mod tests;
