fn main() -> std::process::ExitCode {
    tessera::cli::main(tessera::config::parse_command_line())
}
