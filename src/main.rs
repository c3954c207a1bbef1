fn main() {
    sandbox_deck::log::init();
    std::process::exit(sandbox_deck::cli::main());
}
