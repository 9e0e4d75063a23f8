//! `nacre auth …`: the first admin, users, roles and permissions of a
//! running node from the command line, over its HTTP API.
//!
//! Passwords are read from standard input (one line), never from the
//! command line, where `ps` and shell history would keep them. Commands that
//! need the admin take a token (`--token` or `NACRE_TOKEN`), which
//! `nacre auth login` prints.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::remote::call;

/// The `auth` subcommands.
#[derive(Subcommand)]
pub enum AuthCommand {
    /// Create the first admin (auth.admin_username); only from the node's own
    /// machine, only while no admin exists. Reads its password from stdin, or
    /// prints a generated one when stdin is empty.
    Init(Target),
    /// Log in; reads the password from stdin and prints a token for NACRE_TOKEN.
    Login {
        #[command(flatten)]
        target: Target,
        /// Who logs in
        #[arg(long, default_value = "nacos")]
        username: String,
    },
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Give a user a role.
    RoleAdd {
        #[command(flatten)]
        admin: Admin,
        /// The role
        role: String,
        /// The user
        username: String,
    },
    /// Take a role from a user, or drop the role from everyone (and its permissions).
    RoleRemove {
        #[command(flatten)]
        admin: Admin,
        /// The role
        role: String,
        /// The user; without it the role is dropped entirely
        username: Option<String>,
    },
    /// Let a role read (r), write (w) or both (rw) a resource such as `dev:*:*`.
    Grant {
        #[command(flatten)]
        admin: Admin,
        /// The role
        role: String,
        /// `<namespace>:<group>:naming/<service>`, `*` matching anything (public namespace: empty)
        resource: String,
        /// r, w or rw
        action: String,
    },
    /// Take a permission back.
    Revoke {
        #[command(flatten)]
        admin: Admin,
        /// The role
        role: String,
        /// The resource, as granted
        resource: String,
        /// r, w or rw, as granted
        action: String,
    },
    /// Sign new tokens with a new key; tokens signed with the previous key stay valid.
    RotateKey(Admin),
}

/// User subcommands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; reads its password from stdin.
    Add {
        #[command(flatten)]
        admin: Admin,
        /// The new user
        username: String,
    },
    /// Change a user's password (revoking its tokens); reads it from stdin.
    Passwd {
        #[command(flatten)]
        admin: Admin,
        /// The user
        username: String,
    },
    /// Delete a user (revoking its tokens).
    Delete {
        #[command(flatten)]
        admin: Admin,
        /// The user
        username: String,
    },
    /// List the users.
    List(Admin),
}

/// Which node.
#[derive(clap::Args)]
pub struct Target {
    /// Base URL of the node
    #[arg(long, default_value = "http://127.0.0.1:8848")]
    url: String,
}

/// Which node, and the admin's token.
#[derive(clap::Args)]
pub struct Admin {
    #[command(flatten)]
    target: Target,
    /// An admin's token (from `nacre auth login`)
    #[arg(long, env = "NACRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Runs one `auth` subcommand.
pub fn run(command: AuthCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            AuthCommand::Init(target) => init(&target).await,
            AuthCommand::Login { target, username } => {
                let password = password_from_stdin()?.context("no password on stdin")?;
                let body = call(
                    &target.url,
                    None,
                    reqwest::Method::POST,
                    "/nacos/v1/auth/login",
                    &[("username", &username), ("password", &password)],
                )
                .await?;
                let token = body["accessToken"].as_str().unwrap_or_default();
                println!("{token}");
                Ok(())
            }
            AuthCommand::User(user) => user_command(user).await,
            AuthCommand::RoleAdd {
                admin,
                role,
                username,
            } => {
                let params = [("role", role.as_str()), ("username", username.as_str())];
                admin_call(
                    &admin,
                    reqwest::Method::POST,
                    "/nacos/v1/auth/roles",
                    &params,
                )
                .await
            }
            AuthCommand::RoleRemove {
                admin,
                role,
                username,
            } => {
                let mut params = vec![("role", role.as_str())];
                if let Some(user) = &username {
                    params.push(("username", user));
                }
                admin_call(
                    &admin,
                    reqwest::Method::DELETE,
                    "/nacos/v1/auth/roles",
                    &params,
                )
                .await
            }
            AuthCommand::Grant {
                admin,
                role,
                resource,
                action,
            } => permission(&admin, reqwest::Method::POST, [&role, &resource, &action]).await,
            AuthCommand::Revoke {
                admin,
                role,
                resource,
                action,
            } => permission(&admin, reqwest::Method::DELETE, [&role, &resource, &action]).await,
            AuthCommand::RotateKey(admin) => {
                admin_call(
                    &admin,
                    reqwest::Method::POST,
                    "/nacre/v1/auth/keys/rotate",
                    &[],
                )
                .await
            }
        }
    })
}

/// Grants (POST) or revokes (DELETE) `[role, resource, action]`.
async fn permission(
    admin: &Admin,
    method: reqwest::Method,
    [role, resource, action]: [&str; 3],
) -> anyhow::Result<()> {
    let params = [("role", role), ("resource", resource), ("action", action)];
    admin_call(admin, method, "/nacos/v1/auth/permissions", &params).await
}

async fn user_command(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { admin, username } => {
            let password = password_from_stdin()?.context("no password on stdin")?;
            let params = [("username", &*username), ("password", &*password)];
            admin_call(
                &admin,
                reqwest::Method::POST,
                "/nacos/v1/auth/users",
                &params,
            )
            .await
        }
        UserCommand::Passwd { admin, username } => {
            let password = password_from_stdin()?.context("no password on stdin")?;
            let params = [("username", &*username), ("newPassword", &*password)];
            admin_call(
                &admin,
                reqwest::Method::PUT,
                "/nacos/v1/auth/users",
                &params,
            )
            .await
        }
        UserCommand::Delete { admin, username } => {
            let params = [("username", &*username)];
            admin_call(
                &admin,
                reqwest::Method::DELETE,
                "/nacos/v1/auth/users",
                &params,
            )
            .await
        }
        UserCommand::List(admin) => {
            let token = admin.token.as_deref();
            let params = [("pageNo", "1"), ("pageSize", "1000")];
            let body = call(
                &admin.target.url,
                token,
                reqwest::Method::GET,
                "/nacos/v1/auth/users",
                &params,
            )
            .await?;
            let roles = call(
                &admin.target.url,
                token,
                reqwest::Method::GET,
                "/nacos/v1/auth/roles",
                &params,
            )
            .await?;
            for user in body["pageItems"].as_array().into_iter().flatten() {
                let name = user["username"].as_str().unwrap_or_default();
                let held: Vec<&str> = roles["pageItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["username"].as_str() == Some(name))
                    .filter_map(|r| r["role"].as_str())
                    .collect();
                println!("{name}\t{}", held.join(","));
            }
            Ok(())
        }
    }
}

async fn init(target: &Target) -> anyhow::Result<()> {
    let password = password_from_stdin()?;
    let params: Vec<(&str, &str)> = password
        .as_deref()
        .map(|p| vec![("password", p)])
        .unwrap_or_default();
    let body = call(
        &target.url,
        None,
        reqwest::Method::POST,
        "/nacos/v1/auth/users/admin",
        &params,
    )
    .await?;
    if body["code"] == 409 {
        bail!("an admin exists already; log in with `nacre auth login` instead");
    }
    let username = body["username"].as_str().unwrap_or_default();
    match body["password"].as_str().filter(|p| !p.is_empty()) {
        Some(generated) => {
            println!("created admin {username} with password {generated} (shown once)")
        }
        None => println!("created admin {username}"),
    }
    Ok(())
}

async fn admin_call(
    admin: &Admin,
    method: reqwest::Method,
    path: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<()> {
    let body = call(
        &admin.target.url,
        admin.token.as_deref(),
        method,
        path,
        params,
    )
    .await?;
    println!(
        "{}",
        body["data"]
            .as_str()
            .map_or_else(|| body["data"].to_string(), String::from)
    );
    Ok(())
}

/// The first line of standard input, if it has one.
fn password_from_stdin() -> anyhow::Result<Option<String>> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        eprint!("password (one line; it is echoed): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    Ok((!line.is_empty()).then_some(line))
}
