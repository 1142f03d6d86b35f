use std::process::ExitCode;

use pacer_worker::config::WorkerConfig;

/// mimalloc instead of glibc's malloc: the services allocate per request, event and query on
/// several threads (BENCHMARKS.md measures the difference). Built with `no_thp`: its default
/// asks for transparent huge pages, which grew the API's peak memory with 10,000 SSE clients
/// from ~250 to 360 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config: WorkerConfig = pacer_common::config::parse_or_exit();
    pacer_common::telemetry::init(config.common.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pacer-worker: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(pacer_worker::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pacer-worker: {}", pacer_common::lifecycle::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
