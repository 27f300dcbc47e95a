//! A real SMTP server on loopback for the tests: it speaks the protocol over TCP (greeting, EHLO,
//! MAIL, RCPT, DATA, QUIT) and hands every message it receives to the test.

use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A message as received: its recipients and its raw data (headers and body).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// The message with quoted-printable soft line breaks undone.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "")
    }

    /// The first 40-hex-digit code in the body.
    pub fn code(&self) -> Option<String> {
        self.standalone(40, u8::is_ascii_hexdigit)
    }

    /// The first 8-digit pin code in the body.
    pub fn pin(&self) -> Option<String> {
        self.standalone(8, u8::is_ascii_digit)
    }

    /// The first run of exactly `len` bytes that are all `kind`, in the body.
    fn standalone(&self, len: usize, kind: fn(&u8) -> bool) -> Option<String> {
        let text = self.text();
        let body = text
            .split_once("\r\n\r\n")
            .map_or(text.as_str(), |(_, body)| body);
        let bytes = body.as_bytes();
        (0..(bytes.len() + 1).saturating_sub(len)).find_map(|start| {
            let window = &bytes[start..start + len];
            let bounded = |i: Option<&u8>| i.is_none_or(|b| !kind(b));
            (window.iter().all(kind)
                && bounded(start.checked_sub(1).and_then(|i| bytes.get(i)))
                && bounded(bytes.get(start + len)))
            .then(|| String::from_utf8_lossy(window).into_owned())
        })
    }
}

pub struct TestSmtp {
    pub url: String,
    mails: mpsc::UnboundedReceiver<ReceivedMail>,
    task: JoinHandle<()>,
}

impl TestSmtp {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("smtp://{}", listener.local_addr()?);
        let (sender, mails) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    if let Err(error) = session(socket, sender).await {
                        eprintln!("test SMTP session failed: {error}");
                    }
                });
            }
        });
        Ok(Self { url, mails, task })
    }

    /// The next mail received, waiting up to `within`.
    pub async fn next_mail(&mut self, within: Duration) -> anyhow::Result<ReceivedMail> {
        tokio::time::timeout(within, self.mails.recv())
            .await
            .context("no mail arrived in time")?
            .context("the SMTP server stopped")
    }

    /// Whether no mail arrives within `within`.
    pub async fn no_mail(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.mails.recv())
            .await
            .is_err()
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    mails: mpsc::UnboundedSender<ReceivedMail>,
) -> anyhow::Result<()> {
    let (reader, mut writer) = socket.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer.write_all(b"220 vigil-test ESMTP\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-vigil-test\r\n250 8BITMIME\r\n",
            "MAIL" | "RSET" | "NOOP" => {
                if verb == "RSET" {
                    to.clear();
                }
                b"250 OK\r\n"
            }
            "RCPT" => {
                let address = line
                    .split_once(':')
                    .map(|(_, a)| a.trim().trim_matches(['<', '>']).to_owned())
                    .unwrap_or_default();
                to.push(address);
                b"250 OK\r\n"
            }
            "DATA" => {
                writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push_str("\r\n");
                }
                let _ = mails.send(ReceivedMail {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                writer.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        writer.write_all(reply).await?;
    }
    Ok(())
}
