//! `gatehouse group …`: groups, their members and child groups from the shell, on the
//! database or through a running server ([`super::target`]).

use clap::{Args, Subcommand};

use super::output::{self, Style};
use super::target::{ListArgs, Target, TargetArgs};
use super::user::OutputArgs;
use crate::service::groups::MAX_BULK;

/// `gatehouse group [OPTIONS] COMMAND`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: GroupCommand,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The group commands. GROUP is an id or a name, USER an id, username or email.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        /// The group's name (unique, case-insensitively).
        name: String,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group; its members and child groups stay, only the links go.
    Delete {
        /// The group's id or name.
        group: String,
    },
    /// List groups, filtered with --q or --zenql, a page at a time.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one group.
    Show {
        /// The group's id or name.
        group: String,
    },
    /// Add users to a group, all or nothing: if one is unknown, none is added.
    AddUser {
        /// The group's id or name.
        group: String,
        /// The users' ids, usernames or emails.
        #[arg(required = true, num_args = 1..=MAX_BULK)]
        users: Vec<String>,
    },
    /// Remove a direct member from a group.
    RemoveUser {
        /// The group's id or name.
        group: String,
        /// The user's id, username or email.
        user: String,
    },
    /// Make CHILD a child group of GROUP: its members become members of GROUP. A group
    /// can never contain itself.
    AddChild {
        /// The parent group's id or name.
        group: String,
        /// The child group's id or name.
        child: String,
    },
    /// List a group's members; --inherited adds the members of its child groups.
    Members {
        /// The group's id or name.
        group: String,
        /// Include members through child groups, each user once.
        #[arg(long)]
        inherited: bool,
        #[command(flatten)]
        list: ListArgs,
    },
}

/// Runs `gatehouse group …`.
pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let style = Style::detect(args.output.no_color);
    let json = args.output.json;
    let target = Target::open(&args.target).await?;
    let (value, human) = match args.command {
        GroupCommand::Create { name, description } => {
            let g = target.create_group(name, description).await?;
            let human = output::group_record(style, &g);
            (g, human)
        }
        GroupCommand::Delete { group } => {
            let g = target.delete_group(&group).await?;
            let human = output::done(
                style,
                "deleted",
                "group",
                &output::name_of(&g),
                &output::id_of(&g),
            );
            (g, human)
        }
        GroupCommand::List { list } => {
            let page = target.list_groups(&list).await?;
            let human = output::groups_table(style, &page);
            (page, human)
        }
        GroupCommand::Show { group } => {
            let g = target.get_group(&group).await?;
            let human = output::group_record(style, &g);
            (g, human)
        }
        GroupCommand::AddUser { group, users } => {
            let g = target.add_users(&group, &users).await?;
            let human = format!(
                "{}{}",
                output::done(
                    style,
                    &format!("added {} user(s) to", users.len()),
                    "group",
                    &output::name_of(&g),
                    &output::id_of(&g),
                ),
                output::group_record(style, &g)
            );
            (g, human)
        }
        GroupCommand::RemoveUser { group, user } => {
            let g = target.remove_user(&group, &user).await?;
            let human = format!(
                "{}{}",
                output::done(
                    style,
                    &format!("removed '{}' from", output::clean(&user)),
                    "group",
                    &output::name_of(&g),
                    &output::id_of(&g),
                ),
                output::group_record(style, &g)
            );
            (g, human)
        }
        GroupCommand::AddChild { group, child } => {
            let g = target.add_child(&group, &child).await?;
            let human = format!(
                "{}{}",
                output::done(
                    style,
                    &format!("added child group '{}' to", output::clean(&child)),
                    "group",
                    &output::name_of(&g),
                    &output::id_of(&g),
                ),
                output::group_record(style, &g)
            );
            (g, human)
        }
        GroupCommand::Members {
            group,
            inherited,
            list,
        } => {
            let page = target.members(&group, inherited, &list).await?;
            let human = output::users_table(style, &page);
            (page, human)
        }
    };
    if json {
        output::print_json(&value);
    } else {
        print!("{human}");
    }
    Ok(())
}
