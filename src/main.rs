fn main() -> std::process::ExitCode {
    destination_webhook::cli::main()
}
