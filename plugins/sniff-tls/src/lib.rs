//! sniff-tls
