fn main() {
    std::process::exit(sandbox_deck::cli::main());
}
