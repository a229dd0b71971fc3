//! The job contract and the name builder, compiled on their own: these
//! modules depend on no AWS crate, so the sanitizer build of the fuzz
//! targets skips the SDK. The files are the crate's own, included by path.

#[path = "../../src/ids.rs"]
pub mod ids;
#[path = "../../src/job.rs"]
pub mod job;
#[path = "../../src/names.rs"]
pub mod names;
#[path = "../../src/schema.rs"]
pub mod schema;
