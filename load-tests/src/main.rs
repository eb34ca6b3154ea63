//! `proctor-load`: see `load-tests/README.md`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = proctor_load::Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    let report = rt.block_on(proctor_load::run(&args))?;
    println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    Ok(())
}
