//! `import-xray` on arbitrary text: an error or a TOML that parses, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(imported) = wasmray::import_xray::import(text) {
        assert!(imported.toml.parse::<toml::Table>().is_ok(), "{}", imported.toml);
    }
});
