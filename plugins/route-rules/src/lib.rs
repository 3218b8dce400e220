//! route-rules
