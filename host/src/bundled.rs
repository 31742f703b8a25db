//! The plugins bundled into the binary (built from `plugins/` by `build.rs`), installed
//! by `capdesk plugin install --bundled` and by the demo.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
