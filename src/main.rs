/// Records are allocated on the stdin reader thread and freed on the delivery thread; glibc's
/// malloc serialises such cross-thread frees on an arena lock (a futex per handful of records,
/// measured with strace), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    destination_webhook::cli::main()
}
