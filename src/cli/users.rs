//! `autovolt user …`: operator accounts, managed by a signed-in admin or, explicitly, by whoever
//! administers the database itself. Passwords are read without echo (or from a file) and never
//! printed or logged.

use super::exit::{Failure, OK};
use super::{input, Ctx};
use crate::domain::validation::{self, MAX_PASSWORD_BYTES};
use crate::domain::{dates, Role, User};
use crate::store::{AccountError, AccountOutcome, Admin, AuthError, NewUser, Store};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Operator accounts (who may sign in to the dashboard): add, list, passwd, role, disable,
    /// enable, unlock. Only an admin or super-admin who signs in (--admin), or the database's
    /// own administrator saying so (--as-database-admin), may use them; every change is logged.
    User {
        #[command(flatten)]
        auth: AdminArgs,
        #[command(subcommand)]
        action: UserAction,
    },
}

/// Who acts: exactly one of `--admin` and `--as-database-admin` (checked in
/// [`UsersCommand::check`]: clap cannot require an argument that may follow the subcommand).
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Sign in as this admin or super-admin account (its password is asked for, or read from
    /// --admin-password-file). Failed sign-ins count towards the account's lockout.
    #[arg(long, value_name = "EMAIL", env = "AUTOVOLT_ADMIN", global = true)]
    pub admin: Option<String>,
    /// A file holding the --admin account's password (one line).
    #[arg(
        long,
        value_name = "FILE",
        env = "AUTOVOLT_ADMIN_PASSWORD_FILE",
        global = true
    )]
    pub admin_password_file: Option<PathBuf>,
    /// Act with the database's own credentials instead of an account (for the first
    /// super-admin, or when no admin can sign in). Logged under --as.
    #[arg(long, global = true)]
    pub as_database_admin: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Create an account. The password is asked for twice without echo, or read from
    /// --password-file; at least 8 characters.
    Add {
        /// Its e-mail address (stored lower case; unique).
        email: String,
        /// The person's name, 2 to 50 characters.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "user", value_parser = role)]
        role: Role,
        /// A file holding the new password (one line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Every account: role, whether it is enabled or locked, last sign-in.
    List,
    /// Set an account's password (asked for twice, or --password-file).
    Passwd {
        email: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Give an account another role (the last active super-admin keeps its role).
    Role {
        email: String,
        #[arg(value_parser = role)]
        role: Role,
    },
    /// Disable an account: it can no longer sign in (the last active super-admin cannot be).
    Disable { email: String },
    /// Enable a disabled account.
    Enable { email: String },
    /// Clear an account's failed sign-ins and lock.
    Unlock { email: String },
}

/// A role as typed: user, admin or super-admin.
fn role(raw: &str) -> Result<Role, String> {
    match Role::parse(raw.trim()) {
        Role::Other(_) => Err("must be user, admin or super-admin".into()),
        known => Ok(known),
    }
}

fn email(raw: &str) -> Result<String, Failure> {
    input::printable("email", raw, 254)?;
    Ok(validation::email(raw)?)
}

impl UsersCommand {
    /// What can be checked before connecting.
    pub fn check(&self) -> Result<(), Failure> {
        let UsersCommand::User { auth, action } = self;
        match (&auth.admin, auth.as_database_admin) {
            (Some(a), false) => {
                email(a)?;
            }
            (None, true) => {}
            (Some(_), true) => {
                return Err(Failure::unusable(
                    "give --admin EMAIL or --as-database-admin, not both",
                ))
            }
            (None, false) => {
                return Err(Failure::unusable(
                    "say who acts: --admin EMAIL (an admin or super-admin account, which signs in) or --as-database-admin (with the database's own credentials)",
                ))
            }
        }
        match action {
            UserAction::Add { email: e, name, .. } => {
                email(e)?;
                input::printable("name", name, 50)?;
                validation::name("name", name)?;
            }
            UserAction::Passwd { email: e, .. }
            | UserAction::Role { email: e, .. }
            | UserAction::Disable { email: e }
            | UserAction::Enable { email: e }
            | UserAction::Unlock { email: e } => {
                email(e)?;
            }
            UserAction::List => {}
        }
        Ok(())
    }
}

pub async fn run(command: UsersCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let UsersCommand::User { auth, action } = command;
    // Everything a person types comes before the connection: a prompt must not hold one open.
    let admin_password = match &auth.admin {
        Some(a) => Some(match &auth.admin_password_file {
            Some(f) => password_from_file(f, "--admin-password-file")?,
            None => prompt_once(&format!("Password for {}: ", email(a)?))?,
        }),
        None => None,
    };
    let new_password = match &action {
        UserAction::Add { password_file, .. } | UserAction::Passwd { password_file, .. } => {
            let p = match password_file {
                Some(f) => password_from_file(f, "--password-file")?,
                None => prompt_twice()?,
            };
            validation::password(&p)?;
            Some(p)
        }
        _ => None,
    };
    let database_admin = auth.as_database_admin.then(|| ctx.operator()).transpose()?;
    let store = ctx.open().await?;
    let result = async {
        let admin = match (&auth.admin, admin_password, database_admin) {
            (Some(e), Some(p), _) => store
                .sign_in_admin(e, &p, dates::now_millis())
                .await
                .map_err(failure)?,
            (_, _, Some(name)) => Admin::database(&name),
            _ => {
                return Err(Failure::unusable(
                    "say who acts: --admin EMAIL or --as-database-admin",
                ))
            }
        };
        act(ctx, &store, &admin, action, new_password).await
    }
    .await;
    store.close().await;
    result
}

async fn act(
    ctx: &Ctx,
    store: &Store,
    admin: &Admin,
    action: UserAction,
    new_password: Option<String>,
) -> Result<i32, Failure> {
    let by = admin.describe();
    let done = |what: String, outcome: AccountOutcome, email: &str| {
        let applied = outcome == AccountOutcome::Applied;
        ctx.show(
            json!({"account": email, "changed": applied, "by": by}),
            || {
                if applied {
                    format!("{what} (by {by}; logged)")
                } else {
                    format!("nothing to do: {what} already")
                }
            },
        );
        Ok(OK)
    };
    match action {
        UserAction::Add {
            email: e,
            name,
            role,
            ..
        } => {
            let new = NewUser {
                name,
                email: e,
                password: new_password.unwrap_or_default(),
                role: role.clone(),
            };
            let id = store.create_account(admin, &new).await.map_err(failure)?;
            let email = email(&new.email)?;
            ctx.show(
                json!({"id": id.to_hex(), "account": email, "role": role.as_str(), "by": by}),
                || format!("created {email} ({role}) (by {by}; logged)"),
            );
            Ok(OK)
        }
        UserAction::List => {
            let users = store.accounts(admin).await.map_err(failure)?;
            list(ctx, &users);
            Ok(OK)
        }
        UserAction::Passwd { email: e, .. } => {
            let e = email(&e)?;
            let o = store
                .set_password(admin, &e, &new_password.unwrap_or_default())
                .await
                .map_err(failure)?;
            done(format!("{e}: password set"), o, &e)
        }
        UserAction::Role { email: e, role } => {
            let e = email(&e)?;
            let o = store
                .set_role(admin, &e, role.clone())
                .await
                .map_err(failure)?;
            done(format!("{e} is {role}"), o, &e)
        }
        UserAction::Disable { email: e } => {
            let e = email(&e)?;
            let o = store.set_active(admin, &e, false).await.map_err(failure)?;
            done(format!("{e} is disabled"), o, &e)
        }
        UserAction::Enable { email: e } => {
            let e = email(&e)?;
            let o = store.set_active(admin, &e, true).await.map_err(failure)?;
            done(format!("{e} is enabled"), o, &e)
        }
        UserAction::Unlock { email: e } => {
            let e = email(&e)?;
            let o = store.unlock_account(admin, &e).await.map_err(failure)?;
            done(format!("{e} is unlocked"), o, &e)
        }
    }
}

fn list(ctx: &Ctx, users: &[User]) {
    let now = dates::now_millis();
    let state = |u: &User| {
        if !u.is_active {
            "disabled".to_string()
        } else if let Some(until) = u.lock_until.filter(|_| u.is_locked(now)) {
            format!("locked until {}", ctx.time(until))
        } else {
            "active".to_string()
        }
    };
    ctx.show(
        json!(users
            .iter()
            .map(|u| json!({
                "id": u.id.map(|i| i.to_hex()),
                "name": u.name,
                "email": u.email,
                "role": u.role.as_str(),
                "active": u.is_active,
                "locked_until": u.lock_until.filter(|_| u.is_locked(now)).map(|t| t.to_rfc3339()),
                "failed_sign_ins": u.login_attempts,
                "last_login": u.last_login.map(|t| t.to_rfc3339()),
            }))
            .collect::<Vec<_>>()),
        || {
            let mut lines = vec![format!(
                "{:<32} {:<24} {:<12} {:<34} last sign-in",
                "e-mail", "name", "role", "state"
            )];
            for u in users {
                lines.push(format!(
                    "{:<32} {:<24} {:<12} {:<34} {}",
                    u.email,
                    u.name,
                    u.role.as_str(),
                    state(u),
                    u.last_login.map_or("never".into(), |t| ctx.time(t))
                ));
            }
            lines.push(format!("{} accounts", users.len()));
            lines.join("\n")
        },
    );
}

/// The exit code of an account error: a refusal (a rule, the last super-admin, a lease held, a
/// duplicate) is 1; refused credentials, an unknown account or an unusable database are 2.
fn failure(e: AccountError) -> Failure {
    match e {
        AccountError::Store(s) => s.into(),
        AccountError::SignIn(AuthError::Store(s)) => s.into(),
        e @ (AccountError::SignIn(_) | AccountError::NoSuchAccount(_)) => {
            Failure::unusable(e.to_string())
        }
        e @ (AccountError::Refused(_)
        | AccountError::LastSuperAdmin(_)
        | AccountError::Busy(_)
        | AccountError::Changed(_)) => Failure::refused(e.to_string()),
    }
}

/// The largest password file read (a password is at most 72 bytes; the rest is slack for a
/// newline and a clear message).
const MAX_PASSWORD_FILE: u64 = 1024;

/// A password from the first line of a file (a final newline is not part of it).
fn password_from_file(path: &Path, flag: &str) -> Result<String, Failure> {
    let cannot = |why: String| {
        Failure::unusable(format!(
            "{flag} {}: {why}",
            input::printable("file", &path.display().to_string(), 200)
                .unwrap_or_else(|_| "(unprintable name)".into())
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_PASSWORD_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| cannot(format!("cannot read it as text ({e})")))?;
    if text.len() as u64 > MAX_PASSWORD_FILE {
        return Err(cannot(format!(
            "is larger than {MAX_PASSWORD_FILE} bytes: it should hold one password of at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains('\n') {
        return Err(cannot(
            "holds more than one line: put only the password in it".into(),
        ));
    }
    Ok(line.to_string())
}

fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn prompt_once(question: &str) -> Result<String, Failure> {
    if !on_a_terminal() {
        return Err(Failure::unusable(format!(
            "{} not on a terminal, so the password cannot be asked for: give --admin-password-file (or AUTOVOLT_ADMIN_PASSWORD_FILE)",
            question.trim_end_matches([':', ' '])
        )));
    }
    rpassword::prompt_password(question)
        .map_err(|e| Failure::unusable(format!("cannot read the password: {e}")))
}

/// A new password, typed twice without echo.
fn prompt_twice() -> Result<String, Failure> {
    if !on_a_terminal() {
        return Err(Failure::unusable(
            "not on a terminal, so the new password cannot be asked for: give --password-file",
        ));
    }
    let read = |q: &str| {
        rpassword::prompt_password(q)
            .map_err(|e| Failure::unusable(format!("cannot read the password: {e}")))
    };
    let first = read("New password (at least 8 characters): ")?;
    validation::password(&first)?;
    let second = read("The same again: ")?;
    if first != second {
        return Err(Failure::refused(
            "the two passwords differ; nothing was changed",
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text).unwrap();
        f
    }

    #[test]
    fn a_password_file_holds_one_line() {
        let read = |t: &[u8]| password_from_file(file(t).path(), "--password-file");
        assert_eq!(read(b"secret-pw\n").unwrap(), "secret-pw");
        assert_eq!(read(b"secret-pw\r\n").unwrap(), "secret-pw");
        assert_eq!(read(b"secret-pw").unwrap(), "secret-pw");
        assert_eq!(
            read(b" spaced pw \n").unwrap(),
            " spaced pw ",
            "kept as typed"
        );
        for bad in [
            &b"one\ntwo\n"[..],
            &[b'x'; 1025][..],
            &[0xff, 0xfe, b'\n'][..],
        ] {
            let e = read(bad).unwrap_err();
            assert_eq!(e.code, crate::cli::exit::UNUSABLE);
            assert!(e.message.starts_with("--password-file"), "{}", e.message);
            assert!(!e.message.contains("one\n") && !e.message.contains("xxxx"));
        }
        let e =
            password_from_file(Path::new("/no/such/file"), "--admin-password-file").unwrap_err();
        assert!(e.message.contains("/no/such/file"), "{}", e.message);
    }

    #[test]
    fn roles_are_the_three_known_ones() {
        assert_eq!(role("super-admin").unwrap(), Role::SuperAdmin);
        assert_eq!(role(" admin ").unwrap(), Role::Admin);
        assert!(role("root").is_err());
        assert!(role("").is_err());
    }

    #[test]
    fn who_acts_is_said_once_before_connecting() {
        let parse = |args: &[&str]| {
            crate::cli::parse(std::iter::once("autovolt").chain(args.iter().copied()))
        };
        for args in [
            &["user", "list"][..],
            &["user", "list", "--admin", "a@b.co", "--as-database-admin"],
            &["user", "list", "--admin", "not-an-email"],
            &[
                "user",
                "add",
                "x@y.org",
                "--name",
                "X",
                "--as-database-admin",
            ],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.code, crate::cli::exit::UNUSABLE, "{args:?}");
        }
        assert!(parse(&["user", "list", "--admin", "a@b.co"]).is_ok());
        assert!(parse(&["user", "--as-database-admin", "unlock", "a@b.co"]).is_ok());
        assert!(parse(&[
            "user",
            "role",
            "a@b.co",
            "admin",
            "--as-database-admin",
            "--json"
        ])
        .is_ok());
    }
}
