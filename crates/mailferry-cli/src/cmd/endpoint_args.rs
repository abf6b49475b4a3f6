//! How one IMAP endpoint is named on the command line, shared by probe, migrate and verify.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use mailferry_imap::{Auth, Endpoint, ImapUrl, TlsOptions};

use crate::credentials;

/// Connection options for one server.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Accept a TLS certificate that does not verify (a lab server's self-signed one).
    #[arg(long)]
    pub insecure: bool,
    /// Trust the CA certificates (PEM) in this file, besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Log in without TLS when the server offers no STARTTLS (always allowed on loopback).
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Seconds to wait for the server at each step.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Compress the connection (COMPRESS=DEFLATE) when the server offers it. Trades CPU on
    /// both ends for fewer bytes: worth it on slow links, slower on fast ones.
    #[arg(long)]
    pub compress: bool,
}

/// How to log in.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Read the password from this file (first line) instead of the environment variable.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Log in with the URL's user (an admin or master user) on behalf of this user
    /// (AUTHENTICATE PLAIN with an authorization identity).
    #[arg(long, value_name = "USER")]
    pub auth_as: Option<String>,
    /// Log in with an OAuth2 access token (XOAUTH2) read from this file, instead of a password.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["password_file", "auth_as"])]
    pub oauth2_token_file: Option<PathBuf>,
    /// With an OAuth2 token, use OAUTHBEARER (RFC 7628) instead of XOAUTH2.
    #[arg(long, requires = "oauth2_token_file")]
    pub oauthbearer: bool,
}

/// Builds the endpoint and login from a URL and the options; `env` names the password's
/// environment variable and `side` is how messages name the server.
pub fn resolve(
    url: &str,
    connect: &ConnectArgs,
    login: &LoginArgs,
    env: &str,
    side: &str,
) -> anyhow::Result<(Endpoint, Auth)> {
    let parsed =
        ImapUrl::parse(url).with_context(|| format!("the {side} server address is not usable"))?;
    let Some(user) = parsed.user.clone() else {
        bail!("the {side} address `{url}` names no user: write it as imap://USER@HOST or imaps://USER@HOST");
    };
    let endpoint = Endpoint {
        host: parsed.host,
        port: parsed.port,
        security: parsed.security,
        tls: TlsOptions {
            ca_file: connect.ca_file.clone(),
            insecure: connect.insecure,
        },
        allow_plaintext: connect.allow_plaintext,
    };
    let auth = if let Some(file) = &login.oauth2_token_file {
        let token = credentials::secret("MAILFERRY_OAUTH2_TOKEN", Some(file), "", "OAuth2 token")?;
        if login.oauthbearer {
            Auth::OAuthBearer { user, token }
        } else {
            Auth::XOAuth2 { user, token }
        }
    } else {
        let password = credentials::secret(
            env,
            login.password_file.as_deref(),
            &format!("Password for {user} ({side}): "),
            &format!("{side} password"),
        )?;
        match &login.auth_as {
            Some(target) => Auth::AsUser {
                admin: user,
                password,
                authorize_as: target.clone(),
            },
            None => Auth::Password { user, password },
        }
    };
    Ok((endpoint, auth))
}
