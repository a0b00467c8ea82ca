//! `fovea serve`: the HTTP service (DeepStack's API, fovea's own, the web page).

use anyhow::Result;
use clap::Args;
use fovea_serve::ServeConfig;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ServeConfig,
}

pub fn run(a: ServeArgs) -> Result<()> {
    fovea_serve::run(&a.config, |address, service| {
        let url = format!("http://{address}");
        if crate::json() {
            println!("{}", serde_json::json!({"listening": url, "store": service.people().store().describe()}));
        } else {
            println!(
                "fovea serve: listening on {url} (people in {}); Ctrl-C or SIGTERM stops it",
                service.people().store().describe()
            );
        }
    })?;
    Ok(())
}
