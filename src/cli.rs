//! The command line: `serve` (the default), `migrate`, and the operator groups.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::accounts::{self, UserChanges};
use crate::admin;
use crate::clients::{ClientWithSecret, NewClient};
use crate::config::{ConfigArgs, Settings};
use crate::http::wire::{self, UserView};
use crate::passwords::PasswordHasher;
use crate::state::AppState;
use crate::store::{self, DbPool};
use crate::tokens::rotation::Operator;

/// tessera: a standalone token-issuing authorization server.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, applying pending migrations first (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// End sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

/// `tessera users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is the first line of stdin, or prompted for twice on a
    /// terminal. Prints the user as JSON.
    Create {
        username: String,
        /// A role to give (repeatable).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// List users (optionally those whose username or email contains TEXT) as a JSON array.
    List {
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
    },
    /// Replace a user's roles (none given: no roles).
    SetRoles {
        username: String,
        roles: Vec<String>,
        /// A role (repeatable), as an alternative to listing them after the username.
        #[arg(long = "role", value_name = "ROLE")]
        role_flags: Vec<String>,
    },
    /// Disable a user and end all of its sessions.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
}

/// `tessera clients …`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client; prints `{"client_id","client_secret"}` (the secret shown this once,
    /// null for a public client).
    Create {
        client_id: String,
        /// A public client (no secret): apps that cannot keep one.
        #[arg(long)]
        public: bool,
        /// An allowed grant type (repeatable; default: client_credentials, or password and
        /// refresh_token for a public client).
        #[arg(long = "grant", value_name = "TYPE")]
        grants: Vec<String>,
        /// An allowed scope (repeatable).
        // Ids of their own: a subcommand argument sharing a global setting's id shares its
        // value with it (clap copies global values both ways).
        #[arg(long = "scope", value_name = "SCOPE", id = "client_scopes")]
        scopes: Vec<String>,
        /// `aud` of the client's access tokens (default: TESSERA_AUDIENCE).
        // Shares the global setting's id: clap refuses two `--audience` flags. So
        // TESSERA_AUDIENCE, when set, is also the new client's audience (pinned).
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
        /// Deliver refresh tokens as an HttpOnly cookie.
        #[arg(long)]
        refresh_cookie: bool,
        /// The algorithm that signs its tokens, one of TESSERA_SIGNING_ALGS (default RS256).
        #[arg(long, value_name = "ALG")]
        token_alg: Option<String>,
        /// A redirect URI for the authorization code flow (repeatable).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Where the browser may go after signing out (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// The name users see on the consent page.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// A first-party client: no consent page.
        #[arg(long)]
        first_party: bool,
        /// Where tessera tells the client a session ended.
        #[arg(long, value_name = "URI")]
        backchannel_logout_uri: Option<String>,
    },
    /// List stored clients as a JSON array.
    List,
    /// Delete a client and end its sessions.
    Delete { client_id: String },
    /// Give a confidential client a new secret; prints `{"client_id","client_secret"}`.
    RotateSecret { client_id: String },
}

/// `tessera keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their status as a JSON array.
    List,
    /// Make the staged key (or a new one) active now and stage a fresh one, for every
    /// configured algorithm or only `--alg`.
    Rotate {
        #[arg(long, value_name = "ALG")]
        alg: Option<String>,
    },
    /// Retire a key now, dropping it from the JWKS (for a compromised key).
    Retire {
        /// The key id (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

/// `tessera sessions …`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every session of a user.
    Revoke {
        #[arg(long, value_name = "USERNAME")]
        user: String,
    },
}

/// Runs the CLI; errors print one line and exit non-zero.
pub fn main(cli: Cli) -> ExitCode {
    // Operator commands print JSON on stdout; keep stderr for warnings and the error line.
    let default_level = match cli.command {
        None | Some(Command::Serve) | Some(Command::Migrate) => "info",
        Some(_) => "warn",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.config.into_settings()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => {
            let pool = crate::store::connect(&settings.database, 1)?;
            let mut conn = pool.get()?;
            let applied = crate::store::migrate(&mut conn, &settings.database)?;
            println!("{}", serde_json::json!({ "applied": applied }));
            Ok(())
        }
        Command::Users(command) => run_users(settings, command),
        Command::Clients(command) => run_clients(settings, command),
        Command::Keys(command) => run_keys(settings, command),
        Command::Sessions(SessionsCommand::Revoke { user }) => run_sessions_revoke(settings, &user),
    }
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

fn cli_operator() -> Operator {
    Operator {
        actor: admin::CLI_ACTOR.into(),
        ip: None,
    }
}

/// The database, migrated: user, client and session commands need nothing else (no master
/// key, no signing keys).
fn open_database(settings: &Settings) -> anyhow::Result<DbPool> {
    let pool = store::connect(&settings.database, 1)?;
    store::migrate(
        &mut *pool.get().context("cannot connect to the database")?,
        &settings.database,
    )?;
    Ok(pool)
}

/// The new user's password: the first line of stdin when it is not a terminal, else asked
/// for twice without echo. Never from argv.
fn read_new_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            bail!("no password on stdin (give it as the first line)");
        }
        return Ok(password);
    }
    let password = rpassword::prompt_password("Password: ").context("reading the password")?;
    let again = rpassword::prompt_password("Repeat password: ").context("reading the password")?;
    if password != again {
        bail!("the passwords do not match");
    }
    Ok(password)
}

fn run_users(settings: Settings, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create {
            username,
            roles,
            email,
        } => run_users_create(settings, &username, &roles, email.as_deref()),
        UsersCommand::List { search } => {
            let pool = open_database(&settings)?;
            let mut conn = pool.get()?;
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = admin::list_users(&mut conn, search.as_deref(), cursor.as_deref(), 500)?;
                all.extend(page.items.into_iter().map(UserView::from));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            print_json(&all)
        }
        UsersCommand::SetRoles {
            username,
            mut roles,
            role_flags,
        } => {
            roles.extend(role_flags);
            let changes = UserChanges {
                roles: Some(roles),
                ..Default::default()
            };
            run_users_update(settings, &username, &changes)
        }
        UsersCommand::Disable { username } => {
            let changes = UserChanges {
                disabled: Some(true),
                ..Default::default()
            };
            run_users_update(settings, &username, &changes)
        }
        UsersCommand::Enable { username } => {
            let changes = UserChanges {
                disabled: Some(false),
                ..Default::default()
            };
            run_users_update(settings, &username, &changes)
        }
    }
}

fn run_users_create(
    settings: Settings,
    username: &str,
    roles: &[String],
    email: Option<&str>,
) -> anyhow::Result<()> {
    let password = read_new_password()?;
    // The same checks as registration, before the slow hash.
    accounts::check_registration(username, &password, email)?;
    accounts::check_roles(roles)?;
    let hasher = PasswordHasher::new(settings.argon2)?;
    let hash = hasher.hash(&password)?;
    let pool = open_database(&settings)?;
    let mut conn = pool.get()?;
    let user = admin::create_user(
        &mut conn,
        username,
        &hash,
        email,
        roles,
        &cli_operator(),
        crate::now(),
    )?;
    print_json(&UserView::from(user))
}

fn run_users_update(
    settings: Settings,
    username: &str,
    changes: &UserChanges,
) -> anyhow::Result<()> {
    let pool = open_database(&settings)?;
    let mut conn = pool.get()?;
    let user = admin::find_by_username(&mut conn, username)?;
    let updated = accounts::update_user(
        &mut conn,
        &unexported_metrics(),
        &user.id,
        changes,
        admin::CLI_ACTOR,
        None,
        crate::now(),
    )?;
    print_json(&UserView::from(&updated))
}

/// The two fields scripts read from `clients create` and `clients rotate-secret`.
fn client_secret_json(created: &ClientWithSecret) -> serde_json::Value {
    serde_json::json!({
        "client_id": created.client.client_id,
        "client_secret": created.client_secret,
    })
}

fn run_clients(settings: Settings, command: ClientsCommand) -> anyhow::Result<()> {
    let pool = open_database(&settings)?;
    let mut conn = pool.get()?;
    let now = crate::now();
    match command {
        ClientsCommand::Create {
            client_id,
            public,
            grants,
            scopes,
            audience,
            refresh_cookie,
            token_alg,
            redirect_uris,
            post_logout_redirect_uris,
            name,
            first_party,
            backchannel_logout_uri,
        } => {
            crate::clients::check_token_alg(token_alg.as_deref(), &settings.signing_algs)?;
            let new = NewClient {
                client_id,
                public,
                grant_types: (!grants.is_empty()).then_some(grants),
                scopes: (!scopes.is_empty()).then_some(scopes),
                audience,
                refresh_cookie,
                token_alg,
                redirect_uris,
                post_logout_redirect_uris,
                name,
                first_party,
                backchannel_logout_uri,
                ..Default::default()
            };
            let created = admin::create_client(&mut conn, new, &cli_operator(), now)?;
            print_json(&client_secret_json(&created))
        }
        ClientsCommand::List => {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = admin::list_clients(&mut conn, cursor.as_deref(), 500)?;
                all.extend(page.items.into_iter().map(wire::Client::from));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            print_json(&all)
        }
        ClientsCommand::Delete { client_id } => {
            admin::delete_client(
                &mut conn,
                &unexported_metrics(),
                &client_id,
                &cli_operator(),
                now,
            )?;
            print_json(&serde_json::json!({ "deleted": client_id }))
        }
        ClientsCommand::RotateSecret { client_id } => {
            let rotated = admin::rotate_client_secret(&mut conn, &client_id, &cli_operator(), now)?;
            print_json(&client_secret_json(&rotated))
        }
    }
}

fn run_keys(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    // Keys need the master key and the key policy: the full state.
    let state = AppState::open(settings)?;
    let mut conn = state.db.get().context("cannot connect to the database")?;
    match command {
        KeysCommand::List => {
            let keys = admin::list_keys(&mut conn, &state.key_policy, crate::tokens::now_ms())?;
            print_json(
                &keys
                    .into_iter()
                    .map(wire::KeyView::from)
                    .collect::<Vec<_>>(),
            )
        }
        KeysCommand::Rotate { alg } => {
            let alg = admin::configured_alg(&state.settings.signing_algs, alg.as_deref())?;
            let rotated =
                admin::rotate_keys(&mut conn, state.signing_keys(), &cli_operator(), alg)?;
            print_json(&admin::rotation_summary(&rotated))
        }
        KeysCommand::Retire { kid } => {
            admin::retire_key(&mut conn, state.signing_keys(), &kid, &cli_operator())?;
            print_json(&serde_json::json!({ "retired": kid }))
        }
    }
}

/// The counters a CLI command moves (sessions it ends, say): a CLI run exports no metrics,
/// so they go with the process; the servers' counters are their own.
fn unexported_metrics() -> crate::metrics::Metrics {
    crate::metrics::Metrics::default()
}

fn run_sessions_revoke(settings: Settings, username: &str) -> anyhow::Result<()> {
    let pool = open_database(&settings)?;
    let mut conn = pool.get()?;
    let user = admin::find_by_username(&mut conn, username)?;
    let revoked = admin::revoke_user_sessions(
        &mut conn,
        &unexported_metrics(),
        &user.id,
        &cli_operator(),
        crate::now(),
    )?;
    print_json(&serde_json::json!({ "user_id": user.id, "revoked": revoked }))
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let app = crate::app::Application::build(settings)?;
        log::info!("tessera listening on port {}", app.port());
        if let Some(port) = app.management_port() {
            log::info!("management (/metrics, /healthz, /readyz) on port {port}");
        }
        app.run_until_stopped().await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_kid_beginning_with_a_dash_is_taken_as_the_kid() {
        let cli = Cli::try_parse_from(["tessera", "keys", "retire", "-x9Zk"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys(KeysCommand::Retire { kid })) if kid == "-x9Zk"
        ));
    }

    #[test]
    fn roles_are_given_after_the_username_or_with_role_flags() {
        let cli = Cli::try_parse_from([
            "tessera",
            "users",
            "set-roles",
            "alice",
            "admin",
            "--role",
            "editor",
        ])
        .unwrap();
        let Some(Command::Users(UsersCommand::SetRoles {
            username,
            roles,
            role_flags,
        })) = cli.command
        else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(username, "alice");
        assert_eq!(roles, ["admin"]);
        assert_eq!(role_flags, ["editor"]);
    }
}
