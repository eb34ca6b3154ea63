//! A lean server side of one WebSocket over the raw TCP stream, after actix-web has answered
//! the handshake (`api::upgrade`). It keeps a small read buffer and a write buffer that holds
//! only what is waiting to go out, so an idle learner socket costs a few KiB rather than the
//! two 8 KiB buffers and two channels of a socket kept inside actix-http's dispatcher.
//!
//! Framing is actix-http's WebSocket codec (server mode: client frames must be masked).
//! Fragmented messages are joined here, up to the same size limit as a single frame.

use std::time::Duration;

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Read buffer headroom: a read asks for at least this much room. Learner messages are
/// ~150 bytes; pipelined ones arrive several per read.
const READ_ROOM: usize = 256;
const READ_RESERVE: usize = 1024;
/// Replies queued past this are written before more messages are read, so a peer that sends
/// without reading cannot make the write buffer grow without bound.
const MAX_QUEUED: usize = 64 * 1024;
/// How long a closing socket waits for the peer's close frame (or end of stream).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// One complete incoming message (text as received: the caller checks its UTF-8).
#[derive(Debug)]
pub enum Incoming {
    Text(Bytes),
    Binary,
    Ping(Bytes),
    Pong,
    Close(Option<CloseReason>),
}

/// Why the socket cannot go on, and the close code that names it.
#[derive(Debug)]
pub enum Failure {
    /// The peer went away or the stream failed: nothing can be sent.
    Io,
    /// The peer broke the protocol: close with this code and reason.
    Protocol(u16, String),
}

/// The server side of one WebSocket.
#[derive(Debug)]
pub struct Socket {
    io: TcpStream,
    codec: Codec,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// A fragmented message being joined: (is text, bytes so far).
    partial: Option<(bool, BytesMut)>,
    /// A text message the next deferred one replaces (`defer_text`), not yet encoded.
    deferred: Option<String>,
    max_message: usize,
}

impl Socket {
    /// Wraps an upgraded stream; `leftover` holds bytes the client sent after its handshake.
    pub fn new(io: TcpStream, leftover: &[u8], max_message: usize) -> Self {
        let _ = io.set_nodelay(true);
        Self {
            io,
            codec: Codec::new().max_size(max_message),
            rbuf: BytesMut::from(leftover),
            wbuf: BytesMut::new(),
            partial: None,
            deferred: None,
            max_message,
        }
    }

    /// Queues a text message (written by the next `recv` or `flush`).
    pub fn queue_text(&mut self, text: String) {
        self.encode(Message::Text(text.into()));
    }

    /// Queues a text message that a later deferred one replaces: only the last of a run of
    /// deferred messages is sent, ahead of anything queued after it, once the messages
    /// already read are answered (before the socket writes, waits for input, or closes). An
    /// acknowledgement covers every sequence number before its own, so a run of them as
    /// pipelined messages are answered goes out as its last one. Returns whether it replaced
    /// one (which is then never sent).
    pub fn defer_text(&mut self, text: String) -> bool {
        self.deferred.replace(text).is_some()
    }

    /// Encodes the deferred message, if any, behind what is already queued.
    fn encode_deferred(&mut self) {
        if let Some(text) = self.deferred.take()
            && let Err(e) = self
                .codec
                .encode(Message::Text(text.into()), &mut self.wbuf)
        {
            tracing::error!(error = %e, "Failed to encode a WebSocket message.");
        }
    }

    /// Queues a pong answering a ping.
    pub fn queue_pong(&mut self, payload: Bytes) {
        self.encode(Message::Pong(payload));
    }

    fn encode(&mut self, msg: Message) {
        self.encode_deferred();
        // The codec only fails on messages over its size limit, which the server never sends.
        if let Err(e) = self.codec.encode(msg, &mut self.wbuf) {
            tracing::error!(error = %e, "Failed to encode a WebSocket message.");
        }
    }

    /// Writes what is queued, then returns the next complete message (`None`: the peer closed
    /// the stream). Messages already buffered are returned before queued replies are written,
    /// so the replies to pipelined messages go out in one write. Cancel-safe: a cancelled call
    /// loses neither read nor queued bytes.
    pub async fn recv(&mut self) -> Result<Option<Incoming>, Failure> {
        loop {
            if self.wbuf.len() < MAX_QUEUED
                && let Some(msg) = self.decode()?
            {
                return Ok(Some(msg));
            }
            self.encode_deferred();
            if !self.wbuf.is_empty() {
                self.write_some().await?;
                continue;
            }
            // An idle socket holds no buffer: it waits for input first, and a read buffer
            // is allocated only for the read (and dropped again once its bytes are used).
            self.wbuf = BytesMut::new();
            if self.rbuf.is_empty() {
                self.rbuf = BytesMut::new();
            }
            if self.io.readable().await.is_err() {
                return Err(Failure::Io);
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_ROOM {
                self.rbuf.reserve(READ_RESERVE);
            }
            match self.io.try_read_buf(&mut self.rbuf) {
                Ok(0) if self.partial.is_none() && self.rbuf.is_empty() => return Ok(None),
                Ok(0) => return Err(Failure::Io),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Failure::Io),
            }
        }
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Failure> {
        self.encode_deferred();
        while !self.wbuf.is_empty() {
            self.write_some().await?;
        }
        Ok(())
    }

    async fn write_some(&mut self) -> Result<(), Failure> {
        match self.io.write(&self.wbuf).await {
            Ok(0) | Err(_) => Err(Failure::Io),
            Ok(n) => {
                self.wbuf.advance(n);
                Ok(())
            }
        }
    }

    /// One complete message from the read buffer, joining fragments.
    fn decode(&mut self) -> Result<Option<Incoming>, Failure> {
        loop {
            let frame = match self.codec.decode(&mut self.rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(None),
                Err(ProtocolError::Overflow) => {
                    return Err(Failure::Protocol(
                        1009,
                        format!("message exceeds {} bytes", self.max_message),
                    ));
                }
                Err(e) => return Err(Failure::Protocol(1002, format!("protocol error: {e}"))),
            };
            let done = match frame {
                Frame::Text(b) => Some((true, b)),
                Frame::Binary(_) => return Ok(Some(Incoming::Binary)),
                Frame::Ping(b) => return Ok(Some(Incoming::Ping(b))),
                Frame::Pong(_) => return Ok(Some(Incoming::Pong)),
                Frame::Close(r) => return Ok(Some(Incoming::Close(r))),
                Frame::Continuation(item) => self.join(item)?,
            };
            if let Some((text, bytes)) = done {
                if !text {
                    return Ok(Some(Incoming::Binary));
                }
                return Ok(Some(Incoming::Text(bytes)));
            }
        }
    }

    /// Adds a fragment; returns the whole message once its last fragment arrived.
    fn join(&mut self, item: Item) -> Result<Option<(bool, Bytes)>, Failure> {
        let (start, last, chunk) = match item {
            Item::FirstText(b) => (Some(true), false, b),
            Item::FirstBinary(b) => (Some(false), false, b),
            Item::Continue(b) => (None, false, b),
            Item::Last(b) => (None, true, b),
        };
        let too_big =
            || Failure::Protocol(1009, format!("message exceeds {} bytes", self.max_message));
        match (start, self.partial.as_mut()) {
            (Some(text), None) => {
                if chunk.len() > self.max_message {
                    return Err(too_big());
                }
                self.partial = Some((text, BytesMut::from(&chunk[..])));
                Ok(None)
            }
            (None, Some((_, buf))) => {
                if buf.len() + chunk.len() > self.max_message {
                    return Err(too_big());
                }
                buf.extend_from_slice(&chunk);
                if !last {
                    return Ok(None);
                }
                Ok(self.partial.take().map(|(text, buf)| (text, buf.freeze())))
            }
            (Some(_), Some(_)) | (None, None) => Err(Failure::Protocol(
                1002,
                "unexpected continuation frame".into(),
            )),
        }
    }

    /// Sends a close frame (if the stream still works). Unless the peer's close frame already
    /// came (`peer_closed`), then waits briefly for it or for the end of the stream, so the
    /// peer reads the close code before the connection goes away.
    pub async fn close(mut self, reason: Option<CloseReason>, peer_closed: bool) {
        self.encode(Message::Close(reason));
        if self.flush().await.is_err() || peer_closed {
            let _ = self.io.shutdown().await;
            return;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            loop {
                match self.recv().await {
                    Ok(Some(Incoming::Close(_))) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
        })
        .await;
        let _ = self.io.shutdown().await;
    }
}

/// A close reason with its description cut to what fits a close frame (123 bytes).
pub fn close_reason(code: u16, why: &str) -> CloseReason {
    let mut d = why.to_owned();
    while d.len() > 120 {
        d.pop();
    }
    CloseReason {
        code: CloseCode::from(code),
        description: Some(d),
    }
}
