//! The `offloader` command. Everything it runs lives in the library; this binary
//! only parses arguments and wires the parts together (see `cli/`).

mod cli;

/// mimalloc rather than the system allocator: a job's trip through the leader or a worker is
/// many small, short-lived allocations (messages, records, futures) made on one thread and
/// freed on another, which glibc's allocator served at about a tenth of the processes' time
/// (docs/benchmarks.md §1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
