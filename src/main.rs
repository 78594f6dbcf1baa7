//! The `offloader` command. Everything it runs lives in the library; this binary
//! only parses arguments and wires the parts together (see `cli/`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
