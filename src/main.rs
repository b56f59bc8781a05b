//! The `gandissect` command line: parse, call the library, print (see `cli/`).

mod cli;

fn main() {
    gandissect::allocator::keep_freed_memory();
    cli::main();
}
