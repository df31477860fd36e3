//! `gatehouse user …`: the directory's users from the shell, on the database or through
//! a running server ([`super::target`]), printed as tables or the API's JSON.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{self, Failure, Style};
use super::target::{ListArgs, NewUser, Target, TargetArgs};

/// `gatehouse user [OPTIONS] COMMAND`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How to print.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print the API's JSON instead of a table (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// No colour even on a terminal (also when NO_COLOR is set).
    #[arg(
        long,
        env = "NO_COLOR",
        global = true,
        hide_env_values = true,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub no_color: bool,
}

/// The user commands. USER is an id, a username or an email, as in the API.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password comes from standard input with --password-stdin, or
    /// is generated and printed once.
    Create {
        /// The username.
        username: String,
        /// The email (required).
        #[arg(long)]
        email: String,
        /// First name.
        #[arg(long)]
        first_name: Option<String>,
        /// Last name.
        #[arg(long)]
        last_name: Option<String>,
        /// Also make the user a member of System Administrators.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (one line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, filtered with --q or --zenql, a page at a time.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one user.
    Show {
        /// The user's id, username or email.
        user: String,
    },
    /// Suspend a user: no sign-in, every token refused. The last administrator cannot be.
    Suspend {
        /// The user's id, username or email.
        user: String,
    },
    /// Lift a suspension.
    Unsuspend {
        /// The user's id, username or email.
        user: String,
    },
    /// Lift a lockout after failed logins.
    Unlock {
        /// The user's id, username or email.
        user: String,
    },
    /// Delete a user with their memberships and tokens. The last administrator cannot be.
    Delete {
        /// The user's id, username or email.
        user: String,
    },
}

/// Runs `gatehouse user …`.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let style = Style::detect(args.output.no_color);
    let json = args.output.json;
    // Read before anything is opened, so that a bad invocation changes nothing.
    let password = match &args.command {
        UserCommand::Create {
            password_stdin: true,
            ..
        } => Some((output::read_password_stdin()?, false)),
        UserCommand::Create { .. } => Some((crate::app::random_password(), true)),
        _ => None,
    };
    let target = Target::open(&args.target).await?;
    let out = match args.command {
        UserCommand::Create {
            username,
            email,
            first_name,
            last_name,
            admin,
            ..
        } => {
            let (password, generated) = password.unwrap_or_default();
            let mut user = target
                .create_user(NewUser {
                    username,
                    email,
                    first_name,
                    last_name,
                    password: password.clone(),
                    admin,
                })
                .await?;
            if json {
                if generated {
                    user["password"] = json!(password);
                }
                output::print_json(&user);
                return Ok(());
            }
            let mut out = output::user_record(style, &user);
            if admin {
                out.push_str("member of System Administrators\n");
            }
            if generated {
                out.push_str(&format!(
                    "password: {password}\n(shown once: hand it over now; it is not stored in clear)\n"
                ));
            }
            out
        }
        UserCommand::List { list } => {
            let page = target.list_users(&list).await?;
            if json {
                output::print_json(&page);
                return Ok(());
            }
            output::users_table(style, &page)
        }
        UserCommand::Show { user } => {
            let user = target.get_user(&user).await?;
            if json {
                output::print_json(&user);
                return Ok(());
            }
            output::user_record(style, &user)
        }
        UserCommand::Suspend { user } => action(&target, style, json, &user, "suspend").await?,
        UserCommand::Unsuspend { user } => action(&target, style, json, &user, "unsuspend").await?,
        UserCommand::Unlock { user } => action(&target, style, json, &user, "unlock").await?,
        UserCommand::Delete { user } => {
            let user = target.delete_user(&user).await?;
            if json {
                output::print_json(&user);
                return Ok(());
            }
            output::done(
                style,
                "deleted",
                "user",
                &output::name_of(&user),
                &output::id_of(&user),
            )
        }
    };
    print!("{out}");
    Ok(())
}

/// Runs a status action and prints the user afterwards.
async fn action(
    target: &Target,
    style: Style,
    json: bool,
    user: &str,
    kind: &str,
) -> Result<String, Failure> {
    let user = target.user_action(user, kind).await?;
    if json {
        output::print_json(&user);
        return Ok(String::new());
    }
    let verb = match kind {
        "suspend" => "suspended",
        "unsuspend" => "unsuspended",
        _ => "unlocked",
    };
    let mut out = output::done(
        style,
        verb,
        "user",
        &output::name_of(&user),
        &output::id_of(&user),
    );
    out.push_str(&output::user_record(style, &user));
    Ok(out)
}
