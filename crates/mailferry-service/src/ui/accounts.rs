//! Quick selection of target accounts: where the target is a local Dovecot whose users
//! mailferry can list, the Migration tab offers them in a picker that fills the target's
//! address and username (and server, when configured).
//!
//! Two ways to list them, chosen by the environment of `mailferry serve`:
//! - `MAILFERRY_TARGET_USERS_FILE=/etc/dovecot/users`: a Dovecot passwd-file
//!   (`user:{scheme}password:uid:gid:gecos:home:shell:extra`); only the first field is read.
//! - `MAILFERRY_TARGET_DOVEADM=1` runs `doveadm user '*'`; a path instead of `1`
//!   (`MAILFERRY_TARGET_DOVEADM=/etc/dovecot/dovecot.conf`) runs `doveadm -c PATH user '*'`.
//!
//! `MAILFERRY_TARGET_DOMAIN=example.com` makes `alice` into `alice@example.com` for the
//! address (a username with `@` is its own address), and `MAILFERRY_TARGET_SERVER`
//! (e.g. `imap://127.0.0.1:143`) is filled in as the target server.

use std::path::PathBuf;
use std::time::Duration;

/// At most this many accounts are offered (a select of more helps nobody).
pub const MAX_ACCOUNTS: usize = 5000;
/// How long `doveadm user '*'` may take.
const DOVEADM_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the local accounts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountList {
    /// A Dovecot passwd-file.
    PasswdFile(PathBuf),
    /// `doveadm user '*'`, with `-c CONFIG` when given.
    Doveadm(Option<PathBuf>),
}

/// The picker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAccounts {
    pub list: AccountList,
    /// Appended to usernames without `@` to make the address.
    pub domain: Option<String>,
    /// Filled in as the target server.
    pub server: Option<String>,
}

/// One account of the local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    pub username: String,
    /// Empty where no domain is configured and the username has none.
    pub email: String,
    /// Empty where no server is configured.
    pub server: String,
}

/// Why the accounts cannot be listed, in words for the page.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("cannot read the users file `{path}` (MAILFERRY_TARGET_USERS_FILE): {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Doveadm { command: String, detail: String },
}

impl TargetAccounts {
    /// The settings from `MAILFERRY_TARGET_*`, or `None` where neither a users file nor
    /// doveadm is configured.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let list = match (
            var("MAILFERRY_TARGET_USERS_FILE"),
            var("MAILFERRY_TARGET_DOVEADM"),
        ) {
            (Some(file), _) => AccountList::PasswdFile(file.into()),
            (None, Some(doveadm)) if doveadm == "1" || doveadm == "true" => {
                AccountList::Doveadm(None)
            }
            (None, Some(config)) if config != "0" && config != "false" => {
                AccountList::Doveadm(Some(config.into()))
            }
            _ => return None,
        };
        Some(Self {
            list,
            domain: var("MAILFERRY_TARGET_DOMAIN").map(|d| d.trim_start_matches('@').to_string()),
            server: var("MAILFERRY_TARGET_SERVER"),
        })
    }

    /// The accounts, sorted by username, at most [`MAX_ACCOUNTS`].
    pub async fn list(&self) -> Result<Vec<LocalAccount>, AccountsError> {
        let mut names = match &self.list {
            AccountList::PasswdFile(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|source| {
                    AccountsError::File {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                passwd_file_users(&text)
            }
            AccountList::Doveadm(config) => doveadm_users(config.as_ref()).await?,
        };
        names.sort();
        names.dedup();
        names.truncate(MAX_ACCOUNTS);
        Ok(names
            .into_iter()
            .map(|username| LocalAccount {
                email: match (&self.domain, username.contains('@')) {
                    (_, true) => username.clone(),
                    (Some(domain), false) => format!("{username}@{domain}"),
                    (None, false) => String::new(),
                },
                server: self.server.clone().unwrap_or_default(),
                username,
            })
            .collect())
    }
}

/// The usernames of a passwd-file: the first field of each line that is not blank or a
/// comment. The password field is never read.
pub fn passwd_file_users(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .filter(|user| !user.is_empty())
        .map(str::to_string)
        .collect()
}

async fn doveadm_users(config: Option<&PathBuf>) -> Result<Vec<String>, AccountsError> {
    let mut command = tokio::process::Command::new("doveadm");
    let mut shown = "doveadm".to_string();
    if let Some(config) = config {
        command.arg("-c").arg(config);
        shown.push_str(&format!(" -c {}", config.display()));
    }
    command
        .args(["user", "*"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    shown.push_str(" user '*'");
    let failed = |detail: String| AccountsError::Doveadm {
        command: shown.clone(),
        detail,
    };
    let output = tokio::time::timeout(DOVEADM_TIMEOUT, command.output())
        .await
        .map_err(|_| failed(format!("no answer within {} s", DOVEADM_TIMEOUT.as_secs())))?
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{}: {}", output.status, stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_file_gives_names_only() {
        let text = "# users\nalice:{PLAIN}alicepw::::::\n\n bob@example.org:{SHA512-CRYPT}$6$x:1000:1000::/home/bob::\nsmall:{PLAIN}smallpw::::::userdb_quota_rule=*:storage=20K\n:nothing\n";
        assert_eq!(
            passwd_file_users(text),
            vec!["alice", "bob@example.org", "small"]
        );
    }

    #[tokio::test]
    async fn addresses_come_from_the_domain_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(
            &file,
            "zoe:{PLAIN}x\nbob@other.example:{PLAIN}y\nzoe:{PLAIN}x\n",
        )
        .unwrap();
        let accounts = TargetAccounts {
            list: AccountList::PasswdFile(file),
            domain: Some("new.example".into()),
            server: Some("imap://127.0.0.1:143".into()),
        };
        let listed = accounts.list().await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|a| (a.username.as_str(), a.email.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("bob@other.example", "bob@other.example"),
                ("zoe", "zoe@new.example")
            ]
        );
        assert_eq!(listed[0].server, "imap://127.0.0.1:143");
        let missing = TargetAccounts {
            list: AccountList::PasswdFile(dir.path().join("nope")),
            domain: None,
            server: None,
        };
        let error = missing.list().await.unwrap_err().to_string();
        assert!(
            error.contains("nope") && error.contains("MAILFERRY_TARGET_USERS_FILE"),
            "{error}"
        );
    }
}
