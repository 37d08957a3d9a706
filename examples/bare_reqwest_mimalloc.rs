//! `bare_reqwest` with mimalloc as its global allocator, as the connector has: the same yardstick
//! without the allocator difference, so `scripts/bench.sh` can show how much of the connector's
//! standing against the plain bare loop is mimalloc's doing. Same arguments and output.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "bare_reqwest.rs"]
mod bare;

fn main() -> std::process::ExitCode {
    bare::main()
}
