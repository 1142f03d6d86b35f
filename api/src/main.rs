use std::process::ExitCode;

use pacer_api::config::{Cli, Command, TokenArgs};
use pacer_common::auth::{Claims, Role, mint_hs256};

mod generate;

/// mimalloc instead of glibc's malloc: the services allocate per request, event and query on
/// several threads (BENCHMARKS.md measures the difference). Built with `no_thp`: its default
/// asks for transparent huge pages, which grew the API's peak memory with 10,000 SSE clients
/// from ~250 to 360 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli: Cli = pacer_common::config::parse_or_exit();
    match cli.command {
        Some(Command::Token(args)) => token(cli.api.jwt_secret.as_deref(), &args),
        Some(Command::Generate(args)) => {
            pacer_common::telemetry::init(cli.api.common.log_format);
            let result = tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(generate::run(&args, &cli.api.common.database_url)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pacer-api generate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Serve) | None => {
            pacer_common::telemetry::init(cli.api.common.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("pacer-api: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(pacer_api::serve(cli.api)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pacer-api: {}", pacer_common::lifecycle::error_line(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn token(secret: Option<&str>, args: &TokenArgs) -> ExitCode {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        eprintln!("pacer-api token: set PACER_JWT_SECRET (the same secret the API verifies with)");
        return ExitCode::from(2);
    };
    let Some(role) = Role::parse(&args.role) else {
        eprintln!("pacer-api token: --role must be athlete, coach, client_admin or admin");
        return ExitCode::from(2);
    };
    let claims = Claims {
        sub: args.sub.clone(),
        role,
        org_id: args.org.clone(),
        exp: chrono::Utc::now().timestamp().max(0) as u64 + args.ttl_secs,
        name: args.name.clone(),
        email: None,
        client_id: None,
        iss: None,
        aud: None,
    };
    match mint_hs256(secret, &claims) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pacer-api token: {e}");
            ExitCode::FAILURE
        }
    }
}
