//! XTLS Vision's padding (flow `xtls-rprx-vision`; `shared/spec/xtls-vision.md` §3-§6),
//! sans-IO: the padded frame, the padding length, the receiver's unpadder and the
//! inner-TLS sniffer that both directions share.
//!
//! A direction starts padded: a sequence of frames
//!
//! ```text
//! [UUID 16, first frame only][command 1][content_len u16][padding_len u16][content][padding]
//! ```
//!
//! with command `0` continue, `1` end (later bytes are raw, still inside the outer TLS)
//! or `2` direct (later bytes go raw on the TCP socket, outside the outer TLS).
//!
//! Where Xray and sing-box differ or are fragile, this codec takes the safe side:
//! the receiver waits for 21 bytes before deciding whether the first bytes are padded
//! (both peers decide on the first buffer), parses nothing after end or direct (Xray
//! would misparse raw data that begins with the UUID), refuses an unknown command (as
//! sing-box does; Xray ignores it), and the sniffer reads the cipher only within the
//! buffer (Xray reads stale bytes past it). Nothing here panics or allocates past the
//! 64 KiB a frame's lengths can name.

use bytes::{BufMut, BytesMut};

/// The flow string in the request addons.
pub const FLOW: &str = "xtls-rprx-vision";
/// UUID and frame header: what the receiver needs before deciding on the first bytes.
pub const FIRST_HEADER_LEN: usize = 16 + HEADER_LEN;
/// command, content_len, padding_len.
pub const HEADER_LEN: usize = 5;
/// Xray's buffer size: a sender keeps each frame, UUID included, within it.
pub const MAX_FRAME: usize = 8192;
/// Xray's default `testseed`.
pub const DEFAULT_SEED: [u32; 4] = [900, 500, 900, 256];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Continue,
    End,
    Direct,
}

impl Command {
    fn code(self) -> u8 {
        match self {
            Command::Continue => 0,
            Command::End => 1,
            Command::Direct => 2,
        }
    }

    fn from_code(code: u8) -> Result<Command, VisionError> {
        match code {
            0 => Ok(Command::Continue),
            1 => Ok(Command::End),
            2 => Ok(Command::Direct),
            other => Err(VisionError::UnknownCommand(other)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisionError {
    #[error("unknown Vision padding command {0}")]
    UnknownCommand(u8),
    #[error("Vision frame content of {0} bytes does not fit a 16-bit length")]
    ContentTooLong(usize),
}

/// A frame header as decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: Command,
    pub content_len: u16,
    pub padding_len: u16,
}

impl Header {
    /// Decodes a 5-byte header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Option<(Header, usize)>, VisionError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let header = Header {
            command: Command::from_code(h[0])?,
            content_len: u16::from_be_bytes([h[1], h[2]]),
            padding_len: u16::from_be_bytes([h[3], h[4]]),
        };
        Ok(Some((header, HEADER_LEN)))
    }
}

/// Writes one frame: the UUID if this is the direction's first, the header, `content`
/// and `padding` zero bytes.
pub fn encode_frame(
    uuid: Option<&[u8; 16]>,
    command: Command,
    content: &[u8],
    padding: u16,
    dst: &mut BytesMut,
) -> Result<(), VisionError> {
    let content_len =
        u16::try_from(content.len()).map_err(|_| VisionError::ContentTooLong(content.len()))?;
    dst.reserve(16 + HEADER_LEN + content.len() + usize::from(padding));
    if let Some(uuid) = uuid {
        dst.put_slice(uuid);
    }
    dst.put_u8(command.code());
    dst.put_u16(content_len);
    dst.put_u16(padding);
    dst.put_slice(content);
    dst.put_bytes(0, usize::from(padding));
    Ok(())
}

/// How much padding a frame of `content_len` bytes gets (Xray's `XtlsPadding`): long
/// padding brings short content to `seed[2]..seed[2]+seed[1]` bytes, short padding
/// is `0..seed[3]`; never past [`MAX_FRAME`] with the UUID and header. `random(n)`
/// returns a uniform value in `0..n` (`n` may be 0: then 0).
pub fn padding_len(
    content_len: usize,
    long: bool,
    seed: &[u32; 4],
    mut random: impl FnMut(u32) -> u32,
) -> u16 {
    let [t0, t1, t2, t3] = seed.map(u64::from);
    let content = content_len as u64;
    let wanted = if content < t0 && long {
        (u64::from(random(t1 as u32)) + t2).saturating_sub(content)
    } else {
        u64::from(random(t3 as u32))
    };
    let cap = (MAX_FRAME as u64).saturating_sub(21 + content);
    wanted.min(cap).min(u64::from(u16::MAX)) as u16
}

/// What the unpadder made of some input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpadded {
    /// Input bytes consumed.
    pub used: usize,
    /// The padding phase ended in this input: `End` or `Direct` (every byte after
    /// `used` is raw).
    pub ended: Option<Command>,
}

/// The receiver of one direction: turns padded input into content, until end or
/// direct; after that, and for a peer that did not pad, bytes pass through.
#[derive(Debug, Clone)]
pub struct Unpadder {
    uuid: [u8; 16],
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing seen yet: waiting for 21 bytes to tell.
    First,
    Header,
    Content {
        command: Command,
        content: u16,
        padding: u16,
    },
    Padding {
        command: Command,
        padding: u16,
    },
    /// Padding is over (or never began): bytes are raw.
    Raw,
}

impl Unpadder {
    /// Expects the first frame to start with `uuid` (the one the server sent, or the
    /// one the client sent in its header).
    pub fn new(uuid: [u8; 16]) -> Self {
        Unpadder {
            uuid,
            state: State::First,
        }
    }

    /// Nothing has been decided yet (the first 21 bytes are not in).
    pub fn at_start(&self) -> bool {
        self.state == State::First
    }

    /// Inside a frame's content or padding: the stream may not end here.
    pub fn in_frame(&self) -> bool {
        matches!(self.state, State::Content { .. } | State::Padding { .. })
    }

    /// Consumes what it can of `input`, appending content (or raw bytes) to `out`.
    /// It stops right after an end or direct frame, so the caller sees where raw bytes
    /// begin; `used == 0` with no end means it needs more input.
    pub fn unpad(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Unpadded, VisionError> {
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            match self.state {
                State::Raw => {
                    out.extend_from_slice(rest);
                    return Ok(Unpadded {
                        used: input.len(),
                        ended: None,
                    });
                }
                State::First => {
                    if rest.len() < FIRST_HEADER_LEN {
                        return Ok(Unpadded { used, ended: None });
                    }
                    if rest.get(..16) == Some(&self.uuid[..]) {
                        used += 16;
                        self.state = State::Header;
                    } else {
                        self.state = State::Raw;
                    }
                }
                State::Header => match Header::decode(rest)? {
                    None => return Ok(Unpadded { used, ended: None }),
                    Some((h, n)) => {
                        used += n;
                        self.state = State::Content {
                            command: h.command,
                            content: h.content_len,
                            padding: h.padding_len,
                        };
                    }
                },
                State::Content {
                    command,
                    content,
                    padding,
                } => {
                    let take = usize::from(content).min(rest.len());
                    out.extend_from_slice(rest.get(..take).unwrap_or_default());
                    used += take;
                    let content = content - take as u16;
                    if content > 0 {
                        self.state = State::Content {
                            command,
                            content,
                            padding,
                        };
                        return Ok(Unpadded { used, ended: None });
                    }
                    self.state = State::Padding { command, padding };
                }
                State::Padding { command, padding } => {
                    let skip = usize::from(padding).min(rest.len());
                    used += skip;
                    let padding = padding - skip as u16;
                    if padding > 0 {
                        self.state = State::Padding { command, padding };
                        return Ok(Unpadded { used, ended: None });
                    }
                    if command == Command::Continue {
                        self.state = State::Header;
                    } else {
                        self.state = State::Raw;
                        return Ok(Unpadded {
                            used,
                            ended: Some(command),
                        });
                    }
                }
            }
        }
    }
}

/// TLS 1.3 ciphers that allow the direct phase (all but `TLS_AES_128_CCM_8_SHA256`).
const DIRECT_CIPHERS: [u16; 4] = [0x1301, 0x1302, 0x1303, 0x1304];
/// The ServerHello's supported_versions extension choosing TLS 1.3.
const TLS13_SUPPORTED_VERSIONS: [u8; 6] = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];

/// What both directions of one connection learn about the inner traffic (Xray's
/// `TrafficState`): the sniffer runs on each buffer the senders pad and the receivers
/// unpad, until it has decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficState {
    /// Buffers still to look at.
    pub packets_to_filter: i32,
    /// A ClientHello or ServerHello was seen.
    pub is_tls: bool,
    pub is_tls12_or_above: bool,
    /// The inner TLS is 1.3 with a cipher that allows the direct phase.
    pub enable_xtls: bool,
    pub cipher: u16,
    remaining_server_hello: i64,
}

impl Default for TrafficState {
    fn default() -> Self {
        TrafficState {
            packets_to_filter: 8,
            is_tls: false,
            is_tls12_or_above: false,
            enable_xtls: false,
            cipher: 0,
            remaining_server_hello: -1,
        }
    }
}

impl TrafficState {
    /// Looks at one buffer of inner traffic (Xray's `XtlsFilterTls`, spec §5.2).
    pub fn filter(&mut self, b: &[u8]) {
        if self.packets_to_filter <= 0 {
            return;
        }
        self.packets_to_filter -= 1;
        if b.len() >= 6 {
            if b.starts_with(&[0x16, 0x03, 0x03]) && b[5] == 0x02 {
                self.remaining_server_hello = i64::from(u16::from_be_bytes([b[3], b[4]])) + 5;
                self.is_tls12_or_above = true;
                self.is_tls = true;
                if b.len() >= 79 && self.remaining_server_hello >= 79 {
                    let sid = usize::from(b[43]);
                    // An untrusted session-id length: out of range is an unknown cipher.
                    self.cipher = b
                        .get(44 + sid..46 + sid)
                        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
                }
            } else if b.starts_with(&[0x16, 0x03]) && b[5] == 0x01 {
                self.is_tls = true;
            }
        }
        if self.remaining_server_hello > 0 {
            let end = usize::try_from(self.remaining_server_hello)
                .unwrap_or(usize::MAX)
                .min(b.len());
            self.remaining_server_hello -= b.len() as i64;
            let hello = b.get(..end).unwrap_or_default();
            if hello.windows(6).any(|w| w == TLS13_SUPPORTED_VERSIONS) {
                self.enable_xtls = DIRECT_CIPHERS.contains(&self.cipher);
                self.packets_to_filter = 0;
            } else if self.remaining_server_hello <= 0 {
                self.packets_to_filter = 0;
            }
        }
    }
}

/// The length of the whole application-data records `data` starts with, if it ends
/// inside one after them; else (all whole, or none) all of `data`.
fn whole_records(data: &[u8]) -> usize {
    let mut at = 0;
    while let Some(h) = data.get(at..at + 5) {
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        if h[..3] != [0x17, 0x03, 0x03] || len == 0 {
            return data.len();
        }
        if data.len() < at + 5 + len {
            break;
        }
        at += 5 + len;
    }
    if at == 0 { data.len() } else { at }
}

/// Whether `data` is whole TLS application-data records back to back, each with a
/// body (Xray's `IsCompleteRecord`); empty data is.
pub fn is_complete_record(mut data: &[u8]) -> bool {
    while !data.is_empty() {
        let Some(h) = data.get(..5) else { return false };
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        if h[..3] != [0x17, 0x03, 0x03] || len == 0 {
            return false;
        }
        let Some(rest) = data.get(5 + len..) else {
            return false;
        };
        data = rest;
    }
    true
}

/// Xray's reshape limit: a buffer this long or longer is split before padding, so a
/// frame with the UUID and header stays within [`MAX_FRAME`].
const RESHAPE_AT: usize = MAX_FRAME - FIRST_HEADER_LEN;
/// Where a buffer that has no usable record start is split.
const RESHAPE_FALLBACK: usize = 4096;

/// The sender of one direction (Xray's `VisionWriter`, spec §4.2): pads the batches it
/// is given until the inner traffic says to stop, then says whether the direction goes
/// on raw inside the outer TLS (end) or outside it (direct).
#[derive(Debug, Clone)]
pub struct Padder {
    /// Sent with the first frame only.
    uuid: Option<[u8; 16]>,
    seed: [u32; 4],
    padding: bool,
}

/// What one padded batch became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedBatch {
    /// Frames, each to go out in its own outer-TLS write (a receiver such as sing-box
    /// must find every frame header whole inside one record).
    pub frames: Vec<BytesMut>,
    /// Bytes to send unpadded after the frames, in the phase that follows: inside the
    /// outer TLS after end (spec §4.2 b), on the socket after direct.
    pub raw: Vec<u8>,
    /// How padding ended in this batch, if it did.
    pub ended: Option<Command>,
}

impl Padder {
    pub fn new(uuid: [u8; 16], seed: [u32; 4]) -> Self {
        Padder {
            uuid: Some(uuid),
            seed,
            padding: true,
        }
    }

    /// Still padding: batches must go through [`Padder::pad`].
    pub fn is_padding(&self) -> bool {
        self.padding
    }

    /// The empty frame a client sends when its application is silent at first (spec
    /// §3.4, camouflage): command continue, long padding.
    pub fn camouflage(&mut self, random: impl FnMut(u32) -> u32) -> BytesMut {
        let padding = padding_len(0, true, &self.seed, random);
        let mut frame = BytesMut::new();
        // Empty content always fits a frame.
        let _ = encode_frame(
            self.uuid.take().as_ref(),
            Command::Continue,
            &[],
            padding,
            &mut frame,
        );
        frame
    }

    /// Pads one batch (what one read of the inner traffic returned), sniffing it first.
    ///
    /// Where Xray pads a batch that ends inside a record whole and waits for a batch
    /// that happens to end on a record boundary (which a fast sender on a fast link
    /// may never give), this pads the batch's whole application-data records as the
    /// complete batch that ends padding and sends the partial record after them
    /// unpadded, in the phase that follows (the receiver sees one byte stream either
    /// way): a bulk download switches at its first application data.
    pub fn pad(
        &mut self,
        traffic: &mut TrafficState,
        batch: &[u8],
        mut random: impl FnMut(u32) -> u32,
    ) -> PaddedBatch {
        for b in reshape(batch) {
            traffic.filter(b);
        }
        let whole = if traffic.is_tls {
            whole_records(batch)
        } else {
            batch.len()
        };
        let (head, tail) = batch.split_at(whole);
        let mut out = self.pad_buffers(traffic, head, &mut random);
        if out.ended.is_some() {
            out.raw.extend_from_slice(tail);
        } else if !tail.is_empty() {
            // Not reached (whole records end padding), kept for safety: pad the rest.
            let more = self.pad_buffers(traffic, tail, &mut random);
            out.frames.extend(more.frames);
            out.raw = more.raw;
            out.ended = more.ended;
        }
        out
    }

    /// Xray's loop over the buffers of one batch (spec §4.2 step 5).
    fn pad_buffers(
        &mut self,
        traffic: &mut TrafficState,
        batch: &[u8],
        mut random: impl FnMut(u32) -> u32,
    ) -> PaddedBatch {
        let buffers = reshape(batch);
        let complete = is_complete_record(batch);
        let mut long = traffic.is_tls;
        let mut out = PaddedBatch {
            frames: Vec::with_capacity(buffers.len()),
            raw: Vec::new(),
            ended: None,
        };
        let last = buffers.len().saturating_sub(1);
        let finish = if traffic.enable_xtls {
            Command::Direct
        } else {
            Command::End
        };
        for (i, b) in buffers.iter().enumerate() {
            let (command, this_long) =
                if traffic.is_tls && b.len() >= 6 && b.starts_with(&[0x17, 0x03, 0x03]) && complete
                {
                    // The first whole application-data batch: the last frame ends padding,
                    // every frame of this rule is long, the ones after it short.
                    self.padding = false;
                    long = false;
                    let command = if i == last { finish } else { Command::Continue };
                    (command, true)
                } else if !traffic.is_tls12_or_above && traffic.packets_to_filter <= 1 {
                    self.padding = false;
                    out.frames
                        .push(self.frame(b, Command::End, long, &mut random));
                    out.ended = Some(Command::End);
                    for rest in buffers.get(i + 1..).unwrap_or_default() {
                        out.raw.extend_from_slice(rest);
                    }
                    return out;
                } else if i == last && !self.padding {
                    (finish, long)
                } else {
                    (Command::Continue, long)
                };
            out.frames
                .push(self.frame(b, command, this_long, &mut random));
            if command != Command::Continue {
                out.ended = Some(command);
            }
        }
        out
    }

    fn frame(
        &mut self,
        content: &[u8],
        command: Command,
        long: bool,
        random: impl FnMut(u32) -> u32,
    ) -> BytesMut {
        let padding = padding_len(content.len(), long, &self.seed, random);
        let mut frame = BytesMut::new();
        // reshape keeps every buffer under RESHAPE_AT bytes, so it fits the length.
        let _ = encode_frame(
            self.uuid.take().as_ref(),
            command,
            content,
            padding,
            &mut frame,
        );
        frame
    }
}

/// Cuts a batch into Xray's buffers: pieces of at most [`MAX_FRAME`] bytes as its reader
/// returns them, each then split once if [`RESHAPE_AT`] or longer, at its last
/// application-data record start when that leaves room for the UUID and header
/// (spec §4.2 step 5.2, with the fix of Xray's #2651), else in the middle.
fn reshape(batch: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(batch.len() / RESHAPE_FALLBACK + 1);
    for piece in batch.chunks(MAX_FRAME) {
        if piece.len() < RESHAPE_AT {
            out.push(piece);
            continue;
        }
        let at = piece
            .windows(3)
            .rposition(|w| w == [0x17, 0x03, 0x03])
            .filter(|&i| (FIRST_HEADER_LEN..=RESHAPE_AT).contains(&i))
            .unwrap_or(RESHAPE_FALLBACK);
        let (head, tail) = piece.split_at(at);
        out.push(head);
        out.push(tail);
    }
    out
}

#[cfg(test)]
#[path = "vision_tests.rs"]
mod tests;
