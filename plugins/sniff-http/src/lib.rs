//! sniff-http
