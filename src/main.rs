//! `autovolt`: everything happens in the library's `cli::main`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(autovolt::cli::main(std::env::args_os()) as u8)
}
