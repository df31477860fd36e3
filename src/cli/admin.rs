//! Recovery without the API, straight on the database: `gatehouse admin reset-password`
//! and `gatehouse apikey create`. Both reuse the service layer the server uses.

use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::clock::SystemClock;
use crate::domain::ids::{SYSTEM_ADMINISTRATORS_ID, UserRef};
use crate::service::api_keys::ApiKeyInput;
use crate::service::{Caller, Patch, Services};

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArg {
    /// Database URL.
    #[arg(
        long = "database",
        env = "GATEHOUSE_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://gatehouse.db"
    )]
    pub database_url: String,
}

/// `gatehouse admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set a user's password and lift any lockout, suspension or past expiry. Prints a generated
    /// password unless `--password-stdin` supplies one.
    ResetPassword {
        /// The user's id, username or email.
        user: String,
        /// Read the new password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Add a new token-signing key. Running nodes sign with it after their next key
    /// reload (at most a minute); tokens signed with older keys keep working.
    RotateKey {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Retire a token-signing key (see the `kid` in the JWKS): tokens signed with it stop
    /// working on each node at its next key reload (at most a minute). The only key
    /// cannot be retired: rotate first.
    RetireKey {
        /// The key id.
        kid: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// `gatehouse apikey ...`
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print its client id and secret as JSON.
    Create {
        /// The key's name.
        name: String,
        /// Put the key's user in System Administrators.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// The services over the database at `url`, for the commands that work on it directly.
pub(crate) async fn services(url: &str) -> anyhow::Result<Services> {
    let store = crate::app::open_store(url).await?;
    let settings = crate::service::Settings::default();
    Ok(Services::start(store, Arc::new(SystemClock), settings).await?)
}

/// Runs `gatehouse admin ...`.
pub async fn run_admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::ResetPassword {
            user,
            password_stdin,
            db,
        } => {
            let s = services(&db.database_url).await?;
            let (password, generated) = if password_stdin {
                (super::output::read_password_stdin()?, false)
            } else {
                (crate::app::random_password(), true)
            };
            let target = s
                .recover_account(
                    &Caller::operator(),
                    &UserRef::parse(&user),
                    &password,
                    false,
                )
                .await
                .map_err(super::output::Failure::from)?;
            let mut out = json!({"id": target.id.to_string(), "username": target.username});
            if generated {
                out["password"] = json!(password);
            }
            println!("{out}");
            Ok(())
        }
        AdminCommand::RotateKey { db } => {
            let s = services(&db.database_url).await?;
            let kid = s.rotate_key().await?;
            println!("{}", json!({ "kid": kid }));
            Ok(())
        }
        AdminCommand::RetireKey { kid, db } => {
            let s = services(&db.database_url).await?;
            s.retire_key(&kid)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", json!({ "retired": kid }));
            Ok(())
        }
    }
}

/// Runs `gatehouse apikey ...`.
pub async fn run_api_key(cmd: ApiKeyCommand) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCommand::Create { name, admin, db } => {
            let s = services(&db.database_url).await?;
            let groups = if admin {
                vec![SYSTEM_ADMINISTRATORS_ID]
            } else {
                Vec::new()
            };
            let input = ApiKeyInput {
                name: Patch::Value(name),
                ..ApiKeyInput::default()
            };
            let created = s
                .create_api_key_unchecked(&Caller::operator(), input, &groups)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}",
                json!({
                    "id": created.key.id.to_string(),
                    "name": created.key.name,
                    "clientId": created.key.client_id,
                    "clientSecret": created.secret,
                    "userId": created.key.user_id.to_string(),
                })
            );
            Ok(())
        }
    }
}
