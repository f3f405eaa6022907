//! A real SMTP server for the tests (mailin-embedded on 127.0.0.1), whose answers the test can switch:
//! accept, refuse temporarily (4xx) or permanently (5xx), or refuse once and then accept.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use mailin_embedded::{response, Handler, Response, Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SmtpMode {
    Accept = 0,
    Temporary = 1,
    Permanent = 2,
    /// 451 for the next recipient, then accept.
    TemporaryOnce = 3,
}

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// The message body with quoted-printable soft breaks and `=3D` undone.
    pub fn text(&self) -> String {
        self.data
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.data
            .lines()
            .find(|line| {
                line.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|line| line[name.len() + 1..].trim().to_owned())
    }

    /// The invitation token from the activation link.
    pub fn token(&self) -> String {
        let text = self.text();
        let start = text.find("?token=").expect("an activation link") + "?token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect()
    }
}

#[derive(Clone)]
struct Recorder {
    mode: Arc<AtomicU8>,
    /// The text of the 250 that accepts a message (providers name their queue id in it).
    accept_text: Arc<Mutex<Option<String>>>,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match self.mode.load(Ordering::SeqCst) {
            1 => Response::custom(451, "4.3.0 Try again later".into()),
            2 => Response::custom(550, "5.1.1 Mailbox does not exist".into()),
            3 => {
                self.mode.store(SmtpMode::Accept as u8, Ordering::SeqCst);
                Response::custom(451, "4.7.1 Greylisted".into())
            }
            _ => {
                self.to.push(to.to_owned());
                response::OK
            }
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.received.lock().unwrap().push(ReceivedMail {
            from: self.from.clone(),
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        });
        match self.accept_text.lock().unwrap().clone() {
            Some(text) => Response::custom(250, text),
            None => response::OK,
        }
    }
}

pub struct SmtpServer {
    pub url: String,
    mode: Arc<AtomicU8>,
    accept_text: Arc<Mutex<Option<String>>>,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(SmtpMode::Accept as u8));
        let received = Arc::new(Mutex::new(Vec::new()));
        let accept_text = Arc::new(Mutex::new(None));
        let handler = Recorder {
            mode: mode.clone(),
            accept_text: accept_text.clone(),
            received: received.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("test.smtp")
            .with_num_threads(4)
            .with_tcp_listener(listener);
        // The server runs until the test process ends; each test has its own port.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer {
            url: format!("smtp://127.0.0.1:{port}"),
            mode,
            accept_text,
            received,
        }
    }

    pub fn set_mode(&self, mode: SmtpMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Accepts messages with `250 <text>` (as a provider naming its queue id would) instead of `250 OK`.
    pub fn set_accept_text(&self, text: &str) {
        *self.accept_text.lock().unwrap() = Some(text.to_owned());
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }
}

/// An SMTP URL where nothing listens.
pub fn closed_smtp_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("smtp://127.0.0.1:{port}")
}
