//! Integration tests: the real binary and, where needed, real servers.
//! One test binary, one module per area, so linking stays cheap.

mod check_config;
