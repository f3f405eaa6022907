//! Where an interaction's first response goes. Over the gateway it is POSTed to Discord's callback
//! endpoint; in http mode it is the body of the HTTP response to Discord's own request. Everything
//! after it (edits, follow-ups, escalation posts) goes through the REST API in both modes, so the
//! flow in [`super::Handler`] is written once against this.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serenity::all::{CreateInteractionResponse, Http, InteractionId};
use serenity::builder::Builder;
use tokio::sync::oneshot;

/// What answering one interaction needs: the REST client and where its first response goes.
pub struct Responder {
    /// The REST client (follow-ups, edits of the original response, channel posts).
    pub http: Arc<Http>,
    first: First,
    /// Enough other interactions are in flight that waiting for the engine before the first
    /// response would only queue this one behind them: answer "thinking…" at once.
    busy: bool,
}

enum First {
    /// Gateway mode: `POST /interactions/{id}/{token}/callback`.
    Callback,
    /// http mode: handed to the request handler, which writes it as its response body. Taken by
    /// the first response; a second one is an error, as Discord would say.
    Body(Mutex<Option<oneshot::Sender<CreateInteractionResponse>>>),
}

/// The HTTP request this interaction came in on is gone (its handler gave up waiting), or it was
/// answered already.
const NO_REQUEST: &str = "the interaction's HTTP request is no longer waiting for a response";

impl Responder {
    /// Gateway mode: the first response is POSTed back to Discord.
    pub fn callback(http: Arc<Http>) -> Self {
        Responder {
            http,
            first: First::Callback,
            busy: false,
        }
    }

    /// http mode: the first response arrives on the receiver, for the request's response body.
    /// `busy`: see [`Responder::is_busy`].
    pub fn body(
        http: Arc<Http>,
        busy: bool,
    ) -> (Self, oneshot::Receiver<CreateInteractionResponse>) {
        let (sender, receiver) = oneshot::channel();
        let responder = Responder {
            http,
            first: First::Body(Mutex::new(Some(sender))),
            busy,
        };
        (responder, receiver)
    }

    /// Defer at once rather than wait for the engine: the replica is in a burst.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Sends the interaction's first response (a message, a deferral, an acknowledgement or
    /// autocomplete choices). Over the gateway a 429 is retried once after `wait`.
    pub async fn respond(
        &self,
        wait: Duration,
        what: &str,
        id: InteractionId,
        token: &str,
        response: CreateInteractionResponse,
    ) -> serenity::Result<()> {
        match &self.first {
            First::Callback => {
                super::with_retry(wait, what, || {
                    response.clone().execute(&*self.http, (id, token))
                })
                .await
            }
            First::Body(slot) => {
                let sender = slot.lock().ok().and_then(|mut slot| slot.take());
                match sender {
                    Some(sender) => sender
                        .send(response)
                        .map_err(|_| serenity::Error::Other(NO_REQUEST)),
                    None => Err(serenity::Error::Other(NO_REQUEST)),
                }
            }
        }
    }
}
