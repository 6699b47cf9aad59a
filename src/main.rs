/// glibc's allocator spent about two thirds of a screening run's CPU on its own bookkeeping
/// (a run builds and frees millions of small values, slice by slice, and each larger
/// allocation after such a free made glibc consolidate every freed block); mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kodomo_hub::cli::main()
}
