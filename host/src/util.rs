//! Small helpers shared across modules.

/// `host:port`, with an IPv6 host in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether two emails name the same user: emails are unique ignoring case, as in Xray.
/// The one comparison, for the user lists and the API's ledger alike.
pub fn same_email(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Parses a user id as Xray does (`common/uuid` `ParseString`): 32 hex digits, dashes
/// anywhere optional, 32 to 36 characters in all. The one parser of user ids, for the
/// config and for `vless://` links alike. (Xray also maps any other string of up to
/// 30 bytes to an id through SHA-1; wasmray's config does not, and `import-xray` writes
/// such an id as the UUID it stands for.)
pub fn parse_user_id(text: &str) -> Option<uuid::Uuid> {
    if !(32..=36).contains(&text.len()) {
        return None;
    }
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    uuid::Uuid::try_parse(&hex).ok()
}

/// Locks `m`, and goes on with its data if a thread panicked holding it: every mutex
/// in the host guards state that stays consistent between statements.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`lock`] for a reader of an `RwLock`.
pub fn read<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// [`lock`] for a writer of an `RwLock`.
pub fn write<T>(l: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The first 8 hex digits of a user id: enough to tell users apart in logs, never the
/// whole id (which is the user's password).
pub fn short_id(id: &uuid::Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{}…", hex.get(..8).unwrap_or(&hex))
}

/// Writes all of `buf` to `w`, advancing `buf` past what went; on `Pending` the rest
/// stays in `buf` for the next call.
pub fn poll_write_all<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    cx: &mut std::task::Context<'_>,
    buf: &mut impl bytes::Buf,
) -> std::task::Poll<std::io::Result<()>> {
    while buf.has_remaining() {
        let n = std::task::ready!(std::pin::Pin::new(&mut *w).poll_write(cx, buf.chunk()))?;
        if n == 0 {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
        }
        buf.advance(n);
    }
    std::task::Poll::Ready(Ok(()))
}

/// Implements `AsyncRead` and `AsyncWrite` for an enum of streams by passing each call
/// to the variant's stream: `delegate_io!(Upstream { Direct, Vless, Mux });`. Enum
/// dispatch keeps `Box<dyn>` off the data path.
macro_rules! delegate_io {
    ($ty:ident { $($variant:ident),+ $(,)? }) => {
        impl ::tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut ::tokio::io::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => ::std::pin::Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }

        impl ::tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                data: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$variant(s) => ::std::pin::Pin::new(s).poll_write(cx, data),)+
                }
            }

            fn poll_write_vectored(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$variant(s) => ::std::pin::Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $($ty::$variant(s) => s.is_write_vectored(),)+
                }
            }

            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => ::std::pin::Pin::new(s).poll_flush(cx),)+
                }
            }

            fn poll_shutdown(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => ::std::pin::Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}
pub(crate) use delegate_io;

/// A file's length and modification time: what the watchers compare to see it changed
/// (`None`: it cannot be read).
pub fn file_stamp(path: &std::path::Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_parse_with_or_without_dashes_and_nothing_else() {
        let id = uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b").unwrap();
        for text in [
            "27848739-7e62-4138-9fd3-098a63964b6b",
            "278487397e6241389fd3098a63964b6b",
            "27848739-7e6241389fd3098a63964b6b",
            "27848739-7E62-4138-9FD3-098A63964B6B",
        ] {
            assert_eq!(parse_user_id(text), Some(id), "{text}");
        }
        for text in [
            "",
            "27848739-7e62-4138-9fd3-098a63964b6",
            "{27848739-7e62-4138-9fd3-098a63964b6b}",
            "urn:uuid:27848739-7e62-4138-9fd3-098a63964b6b",
            "27848739-7e62-4138-9fd3-098a63964b6g",
            "2784873--9-7e62-4138-9fd3-098a63964b6b",
            "+27848739e6241389fd3098a63964b6b",
        ] {
            assert_eq!(parse_user_id(text), None, "{text}");
        }
    }
}
