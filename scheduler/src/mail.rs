//! Delivery of the identity mails (account activation, password reset) over SMTP.
//!
//! The outbox is the log: a `user.code_requested` (formerly `user.verification_requested`) event
//! is a mail to send. The mailer
//! follows the log; once it has caught up with the head it was started at, it delivers every
//! request still pending and then each new one as it arrives. Delivering means: draw a random code
//! (a 40-hex hash, or an 8-digit pin whose digest is keyed with the deployment's secrets key),
//! record its digest (`IssueCode`, which also claims the request for a minute against other nodes'
//! mailers), send the mail, record that it was sent. The code itself is only ever in the mail.
//! A failed send is retried with a new code once the claim has lapsed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::task::JoinHandle;
use vigil_commands::secrets::{self, Vault};
use vigil_commands::{CommandBus, CommandError, ids};
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::{CommandMeta, Recorded};
use vigil_domain::event::{Event, UserEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::EventLog;
use vigil_domain::users::user::{User, UserCommand, UserError};
use vigil_domain::users::verification::{Mode, Purpose, VerificationError};

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

/// A running mailer.
pub struct Mailer {
    task: JoinHandle<()>,
}

impl Mailer {
    /// Starts delivering the mails recorded in `log`.
    pub fn start(
        log: Arc<dyn EventLog>,
        config: &MailConfig,
        vault: Vault,
    ) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .build();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailError::From(config.from.clone()))?;
        let delivery = Delivery {
            bus: CommandBus::new(log.clone()),
            transport,
            from,
            vault,
        };
        Ok(Self {
            task: tokio::spawn(delivery.run(log)),
        })
    }

    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Delivery {
    bus: CommandBus,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    vault: Vault,
}

/// Requests not yet mailed: request id → (user, purpose).
type Pending = HashMap<Id, (Id, Purpose)>;

/// A new request supersedes the user's pending one for the same purpose.
fn request(pending: &mut Pending, user: Id, request_id: Id, purpose: Purpose) {
    pending.retain(|_, (owner, pending_for)| *owner != user || *pending_for != purpose);
    pending.insert(request_id, (user, purpose));
}

fn track(pending: &mut Pending, recorded: &Recorded) {
    let Some(user) = recorded.commit.stream.id() else {
        return;
    };
    for event in &recorded.commit.events {
        let Event::User(event) = event else { continue };
        match event {
            UserEvent::VerificationRequested(e) => request(pending, user, e.request_id, e.purpose),
            UserEvent::CodeRequested(e) => request(pending, user, e.request_id, e.purpose),
            UserEvent::VerificationCleared(e) => {
                pending.retain(|_, (owner, purpose)| *owner != user || *purpose != e.purpose);
            }
            UserEvent::VerificationMailSent(e) => {
                pending.remove(&e.request_id);
            }
            UserEvent::Deleted(_) => pending.retain(|_, (owner, _)| *owner != user),
            _ => {}
        }
    }
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
    async fn run(self, log: Arc<dyn EventLog>) {
        let mut pending = Pending::new();
        let mut position = 0;
        let mut caught_up = false;
        let mut retry = tokio::time::interval(RETRY_EVERY);
        loop {
            let start = match log.head().await {
                Ok(head) => head,
                Err(error) => {
                    tracing::warn!(%error, "the mailer cannot reach the log; retrying");
                    tokio::time::sleep(RETRY_EVERY).await;
                    continue;
                }
            };
            if start <= position && !caught_up {
                caught_up = true;
                self.deliver_all(&mut pending).await;
            }
            let mut commits = log.subscribe(position);
            loop {
                tokio::select! {
                    next = commits.next() => match next {
                        Some(Ok(recorded)) => {
                            position = recorded.position;
                            let before: Vec<Id> = pending.keys().copied().collect();
                            track(&mut pending, &recorded);
                            if !caught_up && position >= start {
                                caught_up = true;
                                self.deliver_all(&mut pending).await;
                            } else if caught_up {
                                let new: Vec<Id> = pending
                                    .keys()
                                    .filter(|id| !before.contains(id))
                                    .copied()
                                    .collect();
                                for request in new {
                                    self.deliver(&mut pending, request).await;
                                }
                            }
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%error, "the mailer lost the log; resuming");
                            break;
                        }
                        None => break,
                    },
                    _ = retry.tick(), if caught_up => self.deliver_all(&mut pending).await,
                }
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }

    async fn deliver_all(&self, pending: &mut Pending) {
        let requests: Vec<Id> = pending.keys().copied().collect();
        for request in requests {
            self.deliver(pending, request).await;
        }
    }

    /// Delivers one request; it stays pending if it may be retried.
    async fn deliver(&self, pending: &mut Pending, request_id: Id) {
        let Some(&(user_id, purpose)) = pending.get(&request_id) else {
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
