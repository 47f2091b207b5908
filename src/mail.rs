//! Outgoing mail (SPEC §6.4): where it goes (`TESSERA_SMTP_URL`: SMTP with STARTTLS when
//! offered, SMTPS, or a folder of `.eml` files for development), who it is from
//! (`TESSERA_MAIL_FROM`), and the outbox [`Sender`] of kind `mail` that builds each message
//! (a plain-text and an HTML part) with lettre and hands it over. Requests never send: they
//! [`enqueue`] in their own transaction. What the mails say is `recovery`'s business.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::outbox::{DeliveryError, Sender};
use crate::store::{DbConnection, QueryResult};

/// The outbox kind of mail messages.
pub const KIND: &str = "mail";
/// Binds sealed mail payloads to their purpose.
const SEAL_CONTEXT: &str = "outbox mail";

/// How mail leaves this server.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server; `implicit_tls` for `smtps://`, else STARTTLS when the server offers it.
    Smtp {
        host: String,
        port: u16,
        implicit_tls: bool,
        credentials: Option<(String, secrecy::SecretString)>,
    },
    /// A folder that gets one `.eml` file per message (`file://PATH`).
    Folder(PathBuf),
}

impl std::fmt::Debug for Transport {
    // The password stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp {
                host,
                port,
                implicit_tls,
                credentials,
            } => f
                .debug_struct("Smtp")
                .field("host", host)
                .field("port", port)
                .field("implicit_tls", implicit_tls)
                .field("user", &credentials.as_ref().map(|(user, _)| user))
                .finish(),
            Transport::Folder(path) => write!(f, "Folder({})", path.display()),
        }
    }
}

/// The checked mail settings; absent when `TESSERA_SMTP_URL` is not set.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: Transport,
    pub from: String,
}

impl MailSettings {
    /// Parses `TESSERA_SMTP_URL` (with the password from `password_file` when given) and
    /// `TESSERA_MAIL_FROM` (default `tessera@` + the issuer's host).
    pub fn parse(
        url: &str,
        password_file: Option<&std::path::Path>,
        from: Option<&str>,
        issuer: &str,
    ) -> Result<Self> {
        let transport = parse_transport(url, password_file)?;
        let from = match from {
            Some(from) => from.trim().to_string(),
            None => format!("tessera@{}", issuer_host(issuer)?),
        };
        from.parse::<Mailbox>()
            .map_err(|e| anyhow!("TESSERA_MAIL_FROM: not a mail address ({e})"))?;
        Ok(MailSettings { transport, from })
    }
}

/// The host of the issuer URL.
pub fn issuer_host(issuer: &str) -> Result<String> {
    let url = url::Url::parse(issuer).context("the issuer is not a URL")?;
    url.host_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the issuer has no host"))
}

fn parse_transport(text: &str, password_file: Option<&std::path::Path>) -> Result<Transport> {
    if let Some(path) = text.strip_prefix("file://") {
        if path.is_empty() {
            bail!("file:// needs a folder");
        }
        return Ok(Transport::Folder(PathBuf::from(path)));
    }
    let url = url::Url::parse(text).map_err(|e| anyhow!("not a URL ({e})"))?;
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => bail!("the scheme must be smtp://, smtps:// or file://, not {other}://"),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("the URL needs a host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    let user = percent_decode(url.username())?;
    let password = match (password_file, url.password()) {
        (Some(file), _) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading TESSERA_SMTP_PASSWORD_FILE {}", file.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        (None, Some(password)) => Some(percent_decode(password)?),
        (None, None) => None,
    };
    let credentials = match (user.is_empty(), password) {
        (true, None) => None,
        (false, Some(password)) => Some((user, secrecy::SecretString::from(password))),
        (false, None) => {
            bail!("a user needs a password (in the URL or TESSERA_SMTP_PASSWORD_FILE)")
        }
        (true, Some(_)) => bail!("a password needs a user in the URL"),
    };
    Ok(Transport::Smtp {
        host,
        port,
        implicit_tls,
        credentials,
    })
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).context("bad percent escape")?;
            out.push(u8::from_str_radix(hex, 16).context("bad percent escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("credentials are not UTF-8")
}

/// One mail, as queued: recipient, subject and both bodies.
#[derive(Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queues a mail in the caller's transaction. The payload is sealed under the master key:
/// a mail may carry a one-time link, which must not sit readable in the database.
pub fn enqueue(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    mail: &Mail,
    now: i64,
) -> QueryResult<String> {
    let json = serde_json::to_vec(mail).unwrap_or_default();
    let sealed = master_key.seal(SEAL_CONTEXT, &json);
    crate::outbox::enqueue(conn, KIND, &sealed, now)
}

/// The outbox sender of kind `mail`.
pub struct MailSender {
    settings: MailSettings,
    master_key: MasterKey,
    /// The domain of `Message-ID`s.
    host: String,
}

impl MailSender {
    /// A sender for these settings; `issuer` names the `Message-ID` domain.
    pub fn new(settings: MailSettings, master_key: MasterKey, issuer: &str) -> Result<Self> {
        if let Transport::Folder(dir) = &settings.transport {
            crate::crypto::create_private_dir(dir)
                .with_context(|| format!("creating the mail folder {}", dir.display()))?;
        }
        Ok(MailSender {
            settings,
            master_key,
            host: issuer_host(issuer)?,
        })
    }

    fn build(&self, id: &str, mail: &Mail) -> Result<Message, DeliveryError> {
        let from: Mailbox = self
            .settings
            .from
            .parse()
            .map_err(|e| DeliveryError::Permanent(format!("bad sender address: {e}")))?;
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| DeliveryError::Permanent(format!("bad recipient address: {e}")))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{id}@{}>", self.host)))
            .header(header::Date::now())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| DeliveryError::Permanent(format!("building the message: {e}")))
    }

    fn send_smtp(&self, message: &Message) -> Result<(), DeliveryError> {
        let Transport::Smtp {
            host,
            port,
            implicit_tls,
            credentials,
        } = &self.settings.transport
        else {
            return Err(DeliveryError::Permanent("not an SMTP transport".into()));
        };
        let tls = TlsParameters::new(host.clone())
            .map_err(|e| DeliveryError::Permanent(format!("TLS setup: {e}")))?;
        let mut builder = SmtpTransport::builder_dangerous(host.as_str())
            .port(*port)
            .timeout(Some(Duration::from_secs(30)))
            .tls(if *implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Opportunistic(tls)
            });
        if let Some((user, password)) = credentials {
            use secrecy::ExposeSecret;
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_string(),
            ));
        }
        let transport = builder.build();
        match transport.send(message) {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(DeliveryError::Retry(format!("SMTP: {e}"))),
        }
    }

    fn write_file(
        &self,
        dir: &std::path::Path,
        id: &str,
        message: &Message,
    ) -> Result<(), DeliveryError> {
        use std::io::Write;
        let path = dir.join(format!("{id}.eml"));
        let partial = dir.join(format!(".{id}.eml.partial"));
        let result = (|| -> std::io::Result<()> {
            crate::crypto::create_private_dir(dir)?;
            let mut options = std::fs::OpenOptions::new();
            options.create(true).truncate(true).write(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&partial)?;
            file.write_all(&message.formatted())?;
            file.sync_all()?;
            std::fs::rename(&partial, &path)
        })();
        result.map_err(|e| DeliveryError::Retry(format!("writing {}: {e}", path.display())))
    }
}

impl Sender for MailSender {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn deliver(&self, id: &str, payload: &str) -> Result<(), DeliveryError> {
        let json = self
            .master_key
            .open(SEAL_CONTEXT, payload)
            .map_err(|e| DeliveryError::Permanent(format!("opening the payload: {e}")))?;
        let mail: Mail = serde_json::from_slice(&json)
            .map_err(|e| DeliveryError::Permanent(format!("reading the payload: {e}")))?;
        let message = self.build(id, &mail)?;
        match &self.settings.transport {
            Transport::Folder(dir) => self.write_file(dir, id, &message),
            Transport::Smtp { .. } => self.send_smtp(&message),
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_give_host_port_tls_and_credentials() {
        let Transport::Smtp {
            host,
            port,
            implicit_tls,
            credentials,
        } = parse_transport("smtp://mailer:p%40ss@mail.example.com:2525", None).unwrap()
        else {
            panic!("not smtp")
        };
        assert_eq!(
            (host.as_str(), port, implicit_tls),
            ("mail.example.com", 2525, false)
        );
        let (user, password) = credentials.unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(
            (user.as_str(), password.expose_secret()),
            ("mailer", "p@ss")
        );
        let Transport::Smtp {
            port, implicit_tls, ..
        } = parse_transport("smtps://mail.example.com", None).unwrap()
        else {
            panic!("not smtp")
        };
        assert_eq!((port, implicit_tls), (465, true));
    }

    #[test]
    fn other_schemes_and_a_user_without_password_are_refused() {
        assert!(parse_transport("http://mail.example.com", None).is_err());
        assert!(parse_transport("smtp://user@mail.example.com", None).is_err());
        assert!(parse_transport("file://", None).is_err());
    }

    #[test]
    fn the_sender_defaults_to_tessera_at_the_issuer_host() {
        let settings =
            MailSettings::parse("file://mail", None, None, "https://auth.example.com").unwrap();
        assert_eq!(settings.from, "tessera@auth.example.com");
    }
}
