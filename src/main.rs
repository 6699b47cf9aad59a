fn main() -> std::process::ExitCode {
    kodomo_hub::cli::main()
}
