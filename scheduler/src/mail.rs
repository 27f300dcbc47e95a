//! Delivery of the identity mails (account activation, password reset) over SMTP.
//!
//! The outbox is the log: a `user.code_requested` (formerly `user.verification_requested`) event
//! is a mail to send. The mailer is a reactor on the users' commits: it delivers each request as
//! it sees it, and keeps the ones whose delivery failed (its checkpoint stays before the earliest,
//! so a node that takes over sees them again). Delivering means: draw a random code
//! (a 40-hex hash, or an 8-digit pin whose digest is keyed with the deployment's secrets key),
//! record its digest (`IssueCode`, which also claims the request for a minute against other nodes'
//! mailers), send the mail, record that it was sent. The code itself is only ever in the mail.
//! A failed send is retried with a new code once the claim has lapsed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::time::Instant;
use vigil_commands::secrets::{self, Vault};
use vigil_commands::{CommandBus, CommandError, ids};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::event::{Event, UserEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::Filter;
use vigil_domain::users::user::{User, UserCommand, UserError};
use vigil_domain::users::verification::{Mode, Purpose, VerificationError};

use crate::runner::{Reactor, Retry};

/// How often pending mails whose delivery failed are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(15);

/// Where mails go out.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://host:port` (plain), `smtps://host:port` (TLS) or `smtp://host:port?tls=required`
    /// (STARTTLS), with optional `user:password@`.
    pub smtp_url: String,
    /// The sender, e.g. `Vigil <no-reply@example.com>`.
    pub from: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    #[error("invalid sender address {0}")]
    From(String),
}

/// The mailer, a [`Reactor`].
pub struct Mailer {
    delivery: Delivery,
    pending: Pending,
    /// When the requests whose delivery failed are tried again.
    retry_at: Option<Instant>,
}

impl Mailer {
    /// A mailer sending through `config`, issuing its commands through `bus`.
    pub fn new(bus: Arc<CommandBus>, config: &MailConfig, vault: Vault) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .build();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailError::From(config.from.clone()))?;
        Ok(Self {
            delivery: Delivery {
                bus,
                transport,
                from,
                vault,
            },
            pending: Pending::new(),
            retry_at: None,
        })
    }

    /// Delivers the requests in `requests`; those that may be retried stay pending.
    async fn deliver(&mut self, requests: Vec<Id>) {
        for request in requests {
            self.delivery.deliver(&mut self.pending, request).await;
        }
        // New requests do not put off the retry of those pending already.
        if self.pending.is_empty() {
            self.retry_at = None;
        } else if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + RETRY_EVERY);
        }
    }
}

impl Reactor for Mailer {
    fn name(&self) -> &'static str {
        "mail"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[User::KIND])
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            let new = track(&mut self.pending, recorded);
            self.deliver(new).await;
            Ok(())
        })
    }

    fn due(&self) -> Option<Instant> {
        self.retry_at
    }

    fn work(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.retry_at = None;
            let requests = self.pending.keys().copied().collect();
            self.deliver(requests).await;
        })
    }

    fn holds(&self) -> Option<u64> {
        self.pending.values().map(|request| request.position).min()
    }
}

struct Delivery {
    bus: Arc<CommandBus>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    vault: Vault,
}

/// A request not yet mailed.
struct Request {
    user: Id,
    purpose: Purpose,
    /// The commit that made it.
    position: u64,
}

/// Requests not yet mailed, by request id.
type Pending = HashMap<Id, Request>;

/// A new request supersedes the user's pending one for the same purpose.
fn request(pending: &mut Pending, user: Id, request_id: Id, purpose: Purpose, position: u64) {
    pending.retain(|_, r| r.user != user || r.purpose != purpose);
    pending.insert(
        request_id,
        Request {
            user,
            purpose,
            position,
        },
    );
}

/// Follows the requests `recorded` makes, sends or voids; the new requests still pending.
fn track(pending: &mut Pending, recorded: &Recorded) -> Vec<Id> {
    let Some(user) = recorded.commit.stream.id() else {
        return Vec::new();
    };
    let mut new = Vec::new();
    for event in &recorded.commit.events {
        let Event::User(event) = event else { continue };
        match event {
            UserEvent::VerificationRequested(e) => {
                request(pending, user, e.request_id, e.purpose, recorded.position);
                new.push(e.request_id);
            }
            UserEvent::CodeRequested(e) => {
                request(pending, user, e.request_id, e.purpose, recorded.position);
                new.push(e.request_id);
            }
            UserEvent::VerificationCleared(e) => {
                pending.retain(|_, r| r.user != user || r.purpose != e.purpose);
            }
            UserEvent::VerificationMailSent(e) => {
                pending.remove(&e.request_id);
            }
            UserEvent::Deleted(_) => pending.retain(|_, r| r.user != user),
            _ => {}
        }
    }
    new.retain(|id| pending.contains_key(id));
    new
}

fn meta(command: &str) -> CommandMeta {
    CommandMeta {
        command_id: ids::command_id(),
        correlation_id: command.to_owned(),
        causation_id: None,
        reason: None,
        actor: Actor::system(Via::Scheduler),
    }
}

impl Delivery {
    /// Delivers one request; it stays pending if it may be retried.
    async fn deliver(&self, pending: &mut Pending, request_id: Id) {
        let Some((user_id, purpose)) = pending.get(&request_id).map(|r| (r.user, r.purpose)) else {
            return;
        };
        match self.send(user_id, request_id, purpose).await {
            Ok(()) => {
                pending.remove(&request_id);
            }
            Err(Failure::Settled) => {
                pending.remove(&request_id);
            }
            Err(Failure::Later(reason)) => {
                tracing::warn!(%request_id, %reason, "a mail could not be delivered yet");
            }
        }
    }

    async fn send(&self, user_id: Id, request_id: Id, purpose: Purpose) -> Result<(), Failure> {
        let stream = StreamId::of(User::KIND, user_id);
        let (user, _) = self
            .bus
            .load::<User>(&stream)
            .await
            .map_err(|e| Failure::Later(e.to_string()))?;
        let Some(email) = user.email.clone().filter(|_| user.active()) else {
            return Err(Failure::Settled);
        };
        let mode = user.verification(purpose).mode;
        let (code, digest) = match mode {
            Mode::Hash => secrets::new_token(),
            Mode::PinCode => {
                let pin = secrets::new_pin();
                let digest = self.vault.pin_digest(user_id, &pin);
                (pin, digest)
            }
        };
        let issue = UserCommand::IssueCode {
            purpose,
            request_id,
            digest,
        };
        match self
            .bus
            .execute::<User>(&stream, &issue, &meta("mail.issue_code"))
            .await
        {
            Ok(_) => {}
            // Sent or superseded meanwhile.
            Err(CommandError::Domain(UserError::Verification(VerificationError::NotPending))) => {
                return Err(Failure::Settled);
            }
            // Another mailer (or this one, whose send failed) claimed it less than a minute ago:
            // its `mail_sent` will settle the request, or the claim lapses and this one retries.
            Err(CommandError::Domain(UserError::Verification(VerificationError::Claimed))) => {
                return Err(Failure::Later("claimed by a mailer a moment ago".into()));
            }
            Err(other) => return Err(Failure::Later(other.to_string())),
        }
        let to: Mailbox = email.as_str().parse().map_err(|_| Failure::Settled)?;
        let greeting = user
            .first_name
            .as_ref()
            .map_or_else(String::new, |name| format!(" {}", name.get()));
        let unlinked = user.unlink_request == Some(request_id);
        let (subject, body) = compose(purpose, mode, unlinked, &greeting, &code);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)
            .map_err(|e| Failure::Later(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| Failure::Later(e.to_string()))?;
        let sent = UserCommand::MarkMailSent {
            purpose,
            request_id,
        };
        self.bus
            .execute::<User>(&stream, &sent, &meta("mail.sent"))
            .await
            .map_err(|e| Failure::Later(e.to_string()))?;
        tracing::info!(%user_id, %request_id, ?purpose, "mail sent");
        Ok(())
    }
}

enum Failure {
    /// Nothing more to do for this request.
    Settled,
    /// Try again later.
    Later(String),
}

/// The built-in mail for `purpose`, with a code of `mode`; `unlinked`: the reset follows the
/// account's unlinking from its OIDC provider (the OIDC-unlink mail).
fn compose(
    purpose: Purpose,
    mode: Mode,
    unlinked: bool,
    greeting: &str,
    code: &str,
) -> (&'static str, String) {
    let (what, minutes) = match mode {
        Mode::Hash => ("code", 60),
        Mode::PinCode => ("pin code", 15),
    };
    match purpose {
        Purpose::PasswordReset if unlinked => (
            "Choose a password for your account",
            format!(
                "Hello{greeting},\n\nYour account no longer logs in through your identity \
                 provider. To choose a password for it, use this code within {minutes} \
                 minutes:\n\n{code}\n"
            ),
        ),
        Purpose::Activation => (
            "Activate your account",
            format!(
                "Hello{greeting},\n\nWelcome. To activate your account, use this activation \
                 {what} within {minutes} minutes:\n\n{code}\n\nIf you did not create an account, \
                 ignore this mail.\n"
            ),
        ),
        Purpose::PasswordReset => (
            "Reset your password",
            format!(
                "Hello{greeting},\n\nTo choose a new password, use this reset {what} within \
                 {minutes} minutes:\n\n{code}\n\nIf you did not ask for a new password, ignore \
                 this mail; your password stays as it is.\n"
            ),
        ),
    }
}
