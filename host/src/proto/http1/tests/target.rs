//! Request targets: authority and absolute forms, and what is refused.

use super::*;

#[test]
fn connect_targets() {
    assert_eq!(
        target_of("CONNECT example.com:443"),
        Ok(authority("example.com", 443))
    );
    assert_eq!(
        target_of("CONNECT 1.2.3.4:80"),
        Ok(authority("1.2.3.4", 80))
    );
    assert_eq!(target_of("CONNECT [::1]:443"), Ok(authority("::1", 443)));
    assert_eq!(
        target_of("CONNECT [2001:db8::1]:8443"),
        Ok(authority("2001:db8::1", 8443))
    );
    let h = head("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(h.method, "CONNECT");
    assert_eq!(h.version_minor, 1);
    assert_eq!(
        h.headers,
        vec![("Host".to_owned(), b"example.com:443".to_vec())]
    );
}

#[test]
fn connect_target_errors() {
    assert_eq!(
        target_of("CONNECT example.com"),
        Err(HttpError::InvalidPort)
    );
    assert_eq!(
        target_of("CONNECT example.com:"),
        Err(HttpError::InvalidPort)
    );
    assert_eq!(
        target_of("CONNECT example.com:0"),
        Err(HttpError::InvalidPort)
    );
    assert_eq!(
        target_of("CONNECT example.com:65536"),
        Err(HttpError::InvalidPort)
    );
    assert_eq!(
        target_of("CONNECT example.com:+44"),
        Err(HttpError::InvalidPort)
    );
    assert_eq!(target_of("CONNECT :443"), Err(HttpError::InvalidHost));
    assert_eq!(target_of("CONNECT ::1:443"), Err(HttpError::InvalidHost));
    assert_eq!(target_of("CONNECT [::1]"), Err(HttpError::InvalidPort));
    assert_eq!(target_of("CONNECT [zz]:1"), Err(HttpError::InvalidHost));
    assert_eq!(target_of("CONNECT [::1]x:1"), Err(HttpError::InvalidTarget));
    assert_eq!(
        target_of("CONNECT http://a:1/"),
        Err(HttpError::InvalidTarget)
    );
    assert_eq!(target_of("CONNECT a%41:1"), Err(HttpError::InvalidHost));
    let long = "a".repeat(256);
    assert_eq!(
        target_of(&format!("CONNECT {long}:1")),
        Err(HttpError::InvalidHost)
    );
}

#[test]
fn absolute_targets() {
    assert_eq!(
        target_of("GET http://example.com:8080/path?q=1&r"),
        Ok(absolute("example.com", 8080, "/path?q=1&r"))
    );
    assert_eq!(
        target_of("GET http://example.com"),
        Ok(absolute("example.com", 80, "/"))
    );
    assert_eq!(
        target_of("GET HTTP://Example.com:/"),
        Ok(absolute("Example.com", 80, "/"))
    );
    assert_eq!(
        target_of("GET http://a.b?x=1"),
        Ok(absolute("a.b", 80, "/?x=1"))
    );
    assert_eq!(
        target_of("GET http://a.b/p#frag"),
        Ok(absolute("a.b", 80, "/p"))
    );
    assert_eq!(
        target_of("POST http://user:pw@example.com/x"),
        Ok(absolute("example.com", 80, "/x"))
    );
    assert_eq!(
        target_of("GET http://[::1]:81/"),
        Ok(absolute("::1", 81, "/"))
    );
    assert_eq!(target_of("GET http://[::1]/"), Ok(absolute("::1", 80, "/")));
}

#[test]
fn non_proxy_targets_refused() {
    assert_eq!(target_of("GET /x"), Err(HttpError::NotAProxyRequest));
    assert_eq!(target_of("OPTIONS *"), Err(HttpError::NotAProxyRequest));
    assert_eq!(
        target_of("GET https://example.com/"),
        Err(HttpError::HttpsNotSupported)
    );
    assert_eq!(
        target_of("GET HTTPS://example.com/"),
        Err(HttpError::HttpsNotSupported)
    );
    assert_eq!(
        target_of("GET ftp://example.com/"),
        Err(HttpError::UnsupportedScheme)
    );
    assert_eq!(
        target_of("GET example.com:80"),
        Err(HttpError::InvalidTarget)
    );
    assert_eq!(target_of("GET http:///x"), Err(HttpError::InvalidHost));
    assert_eq!(target_of("GET http://a:0/"), Err(HttpError::InvalidPort));
    assert_eq!(HttpError::NotAProxyRequest.status(), 400);
    assert_eq!(HttpError::HttpsNotSupported.status(), 501);
    assert_eq!(HttpError::HeadTooLarge.status(), 431);
}
