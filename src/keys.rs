//! `minimoto keys add|list|revoke|secret`: the API keys file of a server (see `minimoto_api::keys`).
//! A running server picks up each change within a second.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use minimoto_api::keys::{self, KeyFile};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    /// The server's data directory, whose `keys.json` is the default keys file.
    #[arg(
        long,
        env = "MINIMOTO_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,
    /// The keys file (as the server's `--keys-file`).
    #[arg(long, env = "MINIMOTO_KEYS_FILE", global = true)]
    keys_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a key for a tenant and print it (it is shown only this once; the file keeps its hash).
    Add {
        /// The tenant the key acts for: 1–64 of a-z, 0-9, '-', '_', '.'.
        #[arg(long)]
        tenant: String,
        /// Requests a minute the key may send (bursts of as many).
        #[arg(long, default_value_t = keys::DEFAULT_RATE_PER_MINUTE, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate_per_minute: u32,
        /// Jobs the tenant may have queued or running at once.
        #[arg(long, default_value_t = keys::DEFAULT_MAX_ACTIVE_JOBS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_active_jobs: u32,
    },
    /// List the keys (ids, tenants, limits; never the keys themselves).
    List,
    /// Revoke a key by its id: its requests get 403 from then on.
    Revoke { id: String },
    /// Print the tenant's webhook signing secret (`X-Minimoto-Signature`), making it if the
    /// tenant has none (`keys add` makes one with the tenant's first key).
    Secret {
        #[arg(long)]
        tenant: String,
        /// Replace it with a new one: webhooks are signed with the new one from the server's
        /// next look at the file (within a second).
        #[arg(long)]
        rotate: bool,
    },
}

impl KeysArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let path = self
            .keys_file
            .unwrap_or_else(|| self.data_dir.join(keys::FILE_NAME));
        // One change at a time: two `keys add` at once must not lose one of the keys.
        let lock_path = path.with_extension("json.lock");
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock = std::fs::File::create(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let mut file = KeyFile::load(&path)?;
        match self.command {
            KeysCommand::Add {
                tenant,
                rate_per_minute,
                max_active_jobs,
            } => {
                let key = file.add(&tenant, rate_per_minute, max_active_jobs)?;
                file.save(&path)?;
                let entry = file.keys.last().context("the key just added")?;
                eprintln!(
                    "added {} for tenant {tenant} to {} (shown once; send it as `Authorization: Bearer <key>`):",
                    entry.id,
                    path.display()
                );
                println!("{key}");
            }
            KeysCommand::List => {
                println!("id\ttenant\tcreated\trevoked\trate_per_minute\tmax_active_jobs");
                for k in &file.keys {
                    let revoked = k
                        .revoked_at
                        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
                    println!(
                        "{}\t{}\t{}\t{revoked}\t{}\t{}",
                        k.id,
                        k.tenant,
                        k.created_at.to_rfc3339(),
                        k.rate_per_minute,
                        k.max_active_jobs
                    );
                }
            }
            KeysCommand::Secret { tenant, rotate } => {
                let before = file.clone();
                let secret = file.webhook_secret(&tenant, rotate)?;
                if file != before {
                    file.save(&path)?;
                    eprintln!(
                        "{} the webhook secret of tenant {tenant} in {}:",
                        if rotate { "replaced" } else { "made" },
                        path.display()
                    );
                }
                println!("{secret}");
            }
            KeysCommand::Revoke { id } => {
                if file.revoke(&id)? {
                    file.save(&path)?;
                    eprintln!("revoked {id}");
                } else {
                    eprintln!("{id} was revoked already");
                }
            }
        }
        Ok(())
    }
}
